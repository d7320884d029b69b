import ArgumentParser
import CostdCore
import CostdPOSIX
import CostdServer
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

@main
struct Costd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "costd",
        abstract: "The local LLM cost-control daemon: routing, caching, pricing and budgets over a Unix socket.",
        version: CostdEngine.version
    )

    @Option(help: "Unix socket to listen on (default: $COSTD_SOCKET, $XDG_RUNTIME_DIR/costd.sock, /run/costd/costd.sock).")
    var socket: String?

    @Option(name: .customLong("state-dir"), help: "Directory of the ledger (default: $STATE_DIRECTORY, $XDG_STATE_HOME/costd, /var/lib/costd).")
    var stateDirectory: String?

    @Option(name: .customLong("data-dir"), help: "Data files (tokenizer vocabularies); default: $COSTD_DATA_DIR, the install's share/costd.")
    var dataDirectory: String?

    @Option(help: "Config file (TOML); default: $COSTD_CONFIG, else $XDG_CONFIG_HOME/costd/costd.toml, else /etc/costd/costd.toml, the first that exists.")
    var config: String?

    @Option(help: "Price file in the LiteLLM format (model_prices_and_context_window.json); overrides built-in prices.")
    var prices: String?

    @Option(name: .customLong("daily-budget"), help: "Daily budget in USD.")
    var dailyBudget: String?

    @Option(name: .customLong("monthly-budget"), help: "Monthly budget in USD.")
    var monthlyBudget: String?

    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted, in bytes (default 4 MiB).")
    var maxFrameBytes: Int?

    @Option(name: .customLong("ledger-fsync"), help: "When a record is acknowledged: batched (once written to the ledger, synced just behind; the default) or always (once synced).")
    var ledgerFsync: String?
    @Option(name: .customLong("cache-bytes"), help: "Bound of the in-memory L1 cache, in bytes (default 256 MiB).")
    var cacheBytes: Int?

    @Option(help: "Redis behind the L1 cache and for shared budgets: redis://[:password@]host:port/db or unix:///path/redis.sock?db=N.")
    var redis: String?

    @Option(name: .customLong("redis-spend"), help: "A Redis of its own for spend and budgets (a noeviction one), beside --redis for the cache.")
    var redisSpend: String?

    @Option(name: .customLong("redis-password-file"), help: "File holding the Redis password (or set $COSTD_REDIS_PASSWORD).")
    var redisPasswordFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("threads"), help: "Event-loop threads (default: half the cores, at least one).")
    var threads: Int?

    @Option(name: .customLong("log-format"), help: "text, or journal (syslog priority prefixes); default: journal under systemd.")
    var logFormat: String?

    @Option(name: .customLong("socket-mode"), help: "Permissions of the socket costd creates, in octal (default 0660).")
    var socketMode: String = "0660"

    @Option(name: .customLong("metrics-listen"), help: "Serve Prometheus metrics at http://HOST:PORT/metrics or on a Unix socket, unix:PATH (off by default), e.g. 127.0.0.1:9464.")
    var metricsListen: String?

    @Option(name: .customLong("http-socket"), help: "Unix socket of the OpenAI-compatible HTTP endpoint (default: $COSTD_HTTP_SOCKET, beside --socket, $XDG_RUNTIME_DIR/costd-http.sock, /run/costd/http.sock).")
    var httpSocket: String?

    @Option(name: .customLong("http-listen"), help: "Also serve the HTTP endpoint on TCP HOST:PORT (loopback only unless http.allow_remote), e.g. 127.0.0.1:8787.")
    var httpListen: String?

    @Flag(name: .customLong("no-http"), help: "Do not serve the HTTP endpoint.")
    var noHTTP = false

    @Option(name: .customLong("upstream"), help: "An upstream of the HTTP endpoint, NAME=URL (repeatable), e.g. openai=http://127.0.0.1:8000/v1.")
    var upstreams: [String] = []

    func validate() throws {
        if let logFormat, logFormat != "text", logFormat != "journal" {
            throw ValidationError("--log-format must be text or journal, not '\(logFormat)'")
        }
    }

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        let environment = ProcessInfo.processInfo.environment
        let journal = (logFormat ?? (environment["JOURNAL_STREAM"] != nil ? "journal" : "text")) == "journal"
        LoggingSystem.bootstrap { label in
            if journal { return JournalLogHandler(logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "costd")
        guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("--socket-mode must be octal permissions like 0660")
        }
        let notifier = SystemdNotifier(environment: environment)
        let inherited = try SocketActivation.inheritedSockets()

        let configuration: Configuration
        let rules: Rules
        do {
            configuration = try loadConfiguration()
            rules = try Rules.load(configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        let socketPath = configuration.socketPath ?? DefaultPaths.socket(environment: environment)
        let stateDirectory = configuration.stateDirectory ?? DefaultPaths.stateDirectory(environment: environment)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? Configuration.defaultEventLoops(cores: System.coreCount))
        let ledger = try SpendLedger(directory: stateDirectory, settings: configuration.ledger, logger: logger)
        let redis = configuration.redis.map { RedisConnector(settings: $0, group: group, logger: logger) }
        // A socket systemd passes (costd-metrics.socket) is where metrics go, whatever the config says.
        let metricsAddress = inherited.metrics.map { MetricsServer.Address.inherited(fd: $0) }
            ?? configuration.metricsListen.map { MetricsServer.Address.configured($0) }
        let metrics = metricsAddress.map { _ in DaemonMetrics(withRedis: configuration.redis != nil) }
        let executable = Executable.currentPath()
        let dataDirectory = configuration.dataDirectory
            ?? DefaultPaths.dataDirectory(environment: environment, executablePath: executable) { FileManager.default.fileExists(atPath: $0) }
        let tokenizers = Tokenizers(dataDirectory: dataDirectory, logger: logger)
        let engine = try CostdEngine(
            rules: rules, ledger: ledger, redis: redis?.client, spendRedis: redis?.spendClient, tokenizers: tokenizers, metrics: metrics,
            logger: logger
        )
        if let redis, let settings = configuration.redis {
            if !redis.start(engine: engine, waitMillis: max(1_000, settings.connectTimeoutMillis * 2)) {
                logger.warning("Starting without Redis: cache calls use L1 only and records go to the local backlog until it is reachable")
            }
        }

        let address: ListenAddress = inherited.rpc.map { .inherited(fd: $0, name: "systemd socket") } ?? .unixSocket(socketPath, mode: mode)
        let server = SocketServer(
            configuration: .init(address: address, limits: configuration.limits),
            engine: engine,
            group: group,
            logger: logger,
            onReady: {
                logger.info("Ready", metadata: ["socket": "\(address)", "state": "\(stateDirectory)", "store": "\(engine.store.status.kind.rawValue)"])
                notifier.ready(status: engine.statusLine())
            }
        )
        let reloadConfiguration = self
        // Services stop in reverse order: STOPPING=1 first, the stores last.
        var services: [any Service] = [
            StoreService(engine: engine, logger: logger),
            MaintenanceService(engine: engine, eventLoop: group.next()),
            ReloadService(engine: engine, notifier: notifier, logger: logger) {
                try Rules.load(try reloadConfiguration.loadConfiguration())
            },
            server,
        ]
        if let metrics, let metricsAddress {
            // Bound here, before the socket server reports ready: a taken port fails the start.
            services.append(
                try await MetricsServer.bind(address: metricsAddress, group: group, logger: logger) {
                    engine.refreshMetrics(connections: server.connectionCount)
                    return metrics.render()
                }
            )
        }
        var upstreamClient: UpstreamClient? = nil
        if configuration.http.enabled {
            let settings = configuration.http
            let client = try UpstreamClient(settings: settings, group: group, logger: logger)
            upstreamClient = client
            let gateway = HTTPGateway(engine: engine, upstreams: client, settings: settings, logger: logger)
            var addresses: [ListenAddress] = []
            if let fd = inherited.http {
                addresses.append(.inherited(fd: fd, name: "systemd http socket"))
            } else if inherited.rpc != nil, settings.socketPath == nil, environment["COSTD_HTTP_SOCKET"] == nil {
                // Under systemd the endpoint is an opt-in: costd-http.socket passes its socket,
                // together with the network drop-in it needs to reach upstreams.
                logger.info("No HTTP socket was passed (costd-http.socket is not enabled): the HTTP endpoint is off")
            } else {
                addresses.append(
                    .unixSocket(settings.socketPath ?? DefaultPaths.httpSocket(environment: environment, rpcSocket: configuration.socketPath), mode: mode))
            }
            if let tcp = try settings.listenAddress() { addresses.append(.tcp(host: tcp.host, port: tcp.port)) }
            for httpAddress in addresses {
                services.append(
                    SocketServer(
                        configuration: .init(address: httpAddress, limits: configuration.limits), group: group, logger: logger,
                        onReady: { logger.info("HTTP endpoint ready", metadata: ["address": "\(httpAddress)"]) },
                        refuse: { HTTPGateway.refuse($0, reason: $1) },
                        setUpConnection: { try gateway.setUpConnection($0, caller: $1) }
                    )
                )
            }
        }
        services.append(SystemdService(notifier: notifier, group: group, engine: engine))
        let serviceGroup = ServiceGroup(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        do {
            try await serviceGroup.run()
        } catch {
            await upstreamClient?.shutdown()
            redis?.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        // The stores are closed by now (StoreService stops last); Redis goes before its loops.
        await upstreamClient?.shutdown()
        redis?.stop()
        try await group.shutdownGracefully()
        logger.info("Stopped")
    }

    /// The config file, then the flags over it.
    func loadConfiguration() throws -> Configuration {
        var configuration = Configuration()
        let environment = ProcessInfo.processInfo.environment
        if let config = config ?? DefaultPaths.configFile(environment: environment, exists: { FileManager.default.fileExists(atPath: $0) }) {
            guard let data = FileManager.default.contents(atPath: config) else {
                throw ConfigError("cannot read config file \(config)")
            }
            let text = String(decoding: data, as: UTF8.self)
            do {
                configuration = config.hasSuffix(".json")
                    ? try Configuration(document: JSONParser.parse(Array(data)))
                    : try Configuration(toml: text)
            } catch let error as ConfigError {
                throw ConfigError("\(config): \(error.message)")
            } catch {
                throw ConfigError("\(config): \(error)")
            }
        }
        if let socket { configuration.socketPath = socket }
        if let stateDirectory { configuration.stateDirectory = stateDirectory }
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        if let prices { configuration.pricesFile = prices }
        if let dailyBudget {
            guard let money = Money(usd: dailyBudget), money.nanos >= 0 else {
                throw ConfigError("--daily-budget must be an amount of USD, like 25 or 12.50")
            }
            configuration.budget.daily = money
        }
        if let monthlyBudget {
            guard let money = Money(usd: monthlyBudget), money.nanos >= 0 else {
                throw ConfigError("--monthly-budget must be an amount of USD, like 500")
            }
            configuration.budget.monthly = money
        }
        if let maxFrameBytes { configuration.limits.maxFrameBytes = maxFrameBytes }
        if let cacheBytes { configuration.cache.maxBytes = cacheBytes }
        if let ledgerFsync {
            guard let mode = LedgerSettings.Fsync(rawValue: ledgerFsync) else {
                throw ConfigError("--ledger-fsync must be batched or always, not '\(ledgerFsync)'")
            }
            configuration.ledger.fsync = mode
        }
        if let redis {
            configuration.redis = RedisSettings(endpoint: try RedisEndpoint(url: redis))
            if configuration.redis?.endpoint.password != nil {
                FileHandle.standardError.write(Data("costd: warning: a password in --redis is visible to every user in the process list; use --redis-password-file or $COSTD_REDIS_PASSWORD\n".utf8))
            }
        }
        if let metricsListen { configuration.metricsListen = try MetricsListenAddress(parsing: metricsListen) }
        if let redisSpend {
            guard configuration.redis != nil else { throw ConfigError("--redis-spend needs --redis (or [redis] url) for the cache") }
            configuration.redis?.spendEndpoint = try RedisEndpoint(url: redisSpend)
        }
        if let redisPasswordFile { configuration.redisPasswordFile = redisPasswordFile }
        if noHTTP { configuration.http.enabled = false }
        if let httpSocket { configuration.http.socketPath = httpSocket }
        if let httpListen { configuration.http.listen = httpListen }
        for upstream in upstreams {
            guard let equals = upstream.firstIndex(of: "="), equals != upstream.startIndex else {
                throw ConfigError("--upstream must be NAME=URL, like openai=http://127.0.0.1:8000/v1")
            }
            let name = String(upstream[..<equals])
            let known = configuration.http.upstreams[name]
            configuration.http.upstreams[name] = HTTPSettings.Upstream(
                url: String(upstream[upstream.index(after: equals)...]), keyFile: known?.keyFile, auth: known?.auth ?? (name == "anthropic" ? .xAPIKey : .bearer))
        }
        if configuration.redis != nil {
            if let file = configuration.redisPasswordFile {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw ConfigError("cannot read the Redis password file \(file)")
                }
                let password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                configuration.redis?.endpoint.password = password
            } else if let password = ProcessInfo.processInfo.environment["COSTD_REDIS_PASSWORD"], !password.isEmpty {
                configuration.redis?.endpoint.password = password
            }
            // One password for both Redis servers, unless spend's URL carries its own.
            if configuration.redis?.spendEndpoint != nil, configuration.redis?.spendEndpoint?.password == nil {
                let password = configuration.redis?.endpoint.password
                configuration.redis?.spendEndpoint?.password = password
            }
        }
        try configuration.validate()
        return configuration
    }
}
