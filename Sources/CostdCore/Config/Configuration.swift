/// A config file, a price file or a flag that cannot be used, and why.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Limits on what one client may make the daemon hold or do. Every default is here, once.
public struct ServerLimits: Sendable, Equatable {
    /// The longest frame accepted; checked from the 4-byte header, before any body is buffered.
    public var maxFrameBytes = 4 << 20
    /// How deep, how long and how many: bounds on what a request's JSON can make the parser build.
    public var json = JSONParser.Limits()
    /// Requests of one connection being worked on at once; past this the daemon stops reading
    /// from that connection until answers have gone out (back-pressure, no unbounded buffering).
    public var maxInFlightPerConnection = 128
    /// Open connections in all, and per Unix user (by SO_PEERCRED uid).
    public var maxConnections = 4_096
    public var maxConnectionsPerUser = 1_024
    /// A connection that sends nothing for this long is closed (seconds; 0 disables).
    public var idleTimeoutSeconds: Int64 = 300
    /// A connection that leaves a frame half-sent for this long is closed (seconds).
    public var partialFrameTimeoutSeconds: Int64 = 10
    /// Requests in one batch.
    public var maxBatchRequests = 1_000
    /// The part of an event loop's time that its heavy connections (each using more than a tenth
    /// of it) share while lighter ones are busy on it (parts per million). A connection past its
    /// part (after a burst of ``connectionCPUBurstMillis``) is not read from until its part has
    /// caught up, so a flood of heavy calls leaves the loop free for the others. With no light
    /// connection busy, heavy ones share the whole loop; light ones are never held back.
    public var connectionCPUSharePPM: Int64 = 500_000
    /// Loop time a connection may use at once before its share applies.
    public var connectionCPUBurstMillis: Int64 = 2

    public init() {}
}

public struct CacheSettings: Sendable, Equatable {
    /// The L1 cache's bound in bytes (values, namespaces and per-entry bookkeeping).
    public var maxBytes = 256 << 20
    /// TTL of an entry when `cacheSet` gives none, in seconds.
    public var defaultTTLSeconds: Int64 = 3_600
    /// The longest TTL a client may ask for, in seconds (30 days).
    public var maxTTLSeconds: Int64 = 30 * 86_400
    /// How often expired entries are swept out of L1, in seconds.
    public var sweepIntervalSeconds: Int64 = 10
    /// How long a single-flight lease lives unless filled or released, in seconds.
    public var leaseTTLSeconds: Int64 = 30
    /// How long `cacheGet` with `lease:true` waits for another caller's fill when it gives no `waitMs`.
    public var defaultLeaseWaitMillis: Int64 = 10_000
    /// The longest `waitMs` a client may ask for.
    public var maxLeaseWaitMillis: Int64 = 120_000
    /// The namespace of calls that name none; `@me` makes each user's entries private by default.
    public var defaultNamespace = ""

    public init() {}
}

public struct LedgerSettings: Sendable, Equatable {
    /// When a record is acknowledged.
    public enum Fsync: String, Sendable, CaseIterable {
        /// Once its entry is synced to disk (`fdatasync`): survives a power loss.
        case always
        /// Once its entry is written to the log (`write(2)` returned): survives `kill -9` and any
        /// crash of costd; a power loss or kernel crash can lose the entries of one sync window,
        /// the syncs running continuously behind.
        case batched
    }

    public var fsync = Fsync.batched
    /// Compact (snapshot and start a new log) once the log has grown past this many bytes.
    public var compactAfterBytes: Int64 = 64 << 20
    /// Days of history kept for reports.
    public var historyDays = 400
    /// How long a client's `recordId` is remembered, so that a retry counts once (seconds).
    public var recordIdWindowSeconds: Int64 = 86_400
    /// At most this many record ids are remembered at once (about 150 bytes each); past it the
    /// oldest are forgotten before their window ends.
    public var recordIdCapacity = 250_000

    public init() {}
}

/// Everything the daemon can be told, from the config file and then from flags.
public struct Configuration: Sendable, Equatable {
    /// `metrics_listen` (`--metrics-listen`): where to serve `GET /metrics`; nil serves none.
    public var metricsListen: MetricsListenAddress?
    public var socketPath: String?
    public var stateDirectory: String?
    /// Where data files live (tokenizer vocabularies in `tokenizers/`).
    public var dataDirectory: String?
    /// A LiteLLM-format price file that overrides the built-in prices.
    public var pricesFile: String?
    /// The time zone of budget periods (IANA name); UTC when nil.
    public var timeZone: String?
    /// The model every request would have used without routing: what routing savings are measured against.
    public var baselineModel = "gpt-4o"
    public var limits = ServerLimits()
    public var cache = CacheSettings()
    public var budget = BudgetSettings()
    public var routing = RoutingRules.default
    /// `[prices]` entries of the config, over the price file and the built-in table.
    public var prices = PriceTable()
    public var ledger = LedgerSettings()
    /// Redis behind the L1 cache, and the shared budget; nil runs on the embedded default.
    public var redis: RedisSettings?
    /// A file holding the Redis password (read at start and on reload, never logged).
    public var redisPasswordFile: String?
    /// The OpenAI-compatible HTTP endpoint and its upstreams.
    public var http = HTTPSettings()
    public var access = AccessSettings()

    public init() {}

    /// Event loops when `--threads` is not given: half the cores, at least one. costd's clients
    /// run on the same host, and a loop per core left them none: on 2 cores, one loop served L1
    /// hits at 50 connections with a p99 of 1.05x redis's (two loops: 1.9–7x) and records at the
    /// same rate with a third less CPU, for 20% fewer hits a second (docs/PERFORMANCE.md).
    public static func defaultEventLoops(cores: Int) -> Int {
        max(1, cores / 2)
    }

    public func validate() throws(ConfigError) {
        try routing.validate()
        try budget.validate()
        guard limits.maxFrameBytes >= 64 else { throw ConfigError("limits.max_frame_bytes must be at least 64") }
        guard limits.json.maxDepth >= 2 else { throw ConfigError("limits.max_json_depth must be at least 2") }
        guard limits.maxInFlightPerConnection >= 1, limits.maxConnections >= 1, limits.maxConnectionsPerUser >= 1 else {
            throw ConfigError("limits: connection and in-flight limits must be at least 1")
        }
        guard cache.defaultTTLSeconds > 0, cache.maxTTLSeconds >= cache.defaultTTLSeconds else {
            throw ConfigError("cache: default_ttl must be positive and at most max_ttl")
        }
        guard cache.maxBytes >= 0 else { throw ConfigError("cache.max_bytes must not be negative") }
        guard cache.leaseTTLSeconds > 0, cache.sweepIntervalSeconds > 0 else {
            throw ConfigError("cache: lease_ttl and sweep_interval must be positive")
        }
        _ = try PeriodCalendar(timeZoneIdentifier: timeZone)
        try redis?.validate()
        try http.validate()
    }
}

extension Configuration {
    /// Reads a config document (TOML, or JSON: both become the same tree). Unknown keys are
    /// errors, so a misspelt setting is found at start rather than silently ignored.
    public init(document: JSONValue) throws(ConfigError) {
        self.init()
        var root = try Section(document, path: "")
        socketPath = try root.string("socket")
        stateDirectory = try root.string("state_dir")
        dataDirectory = try root.string("data_dir")
        timeZone = try root.string("time_zone")
        baselineModel = try root.string("baseline_model") ?? baselineModel
        metricsListen = try root.string("metrics_listen").map { text throws(ConfigError) in try MetricsListenAddress(parsing: text) }

        if var section = try root.section("limits") {
            limits.maxFrameBytes = try section.int("max_frame_bytes") ?? limits.maxFrameBytes
            limits.json.maxDepth = try section.int("max_json_depth") ?? limits.json.maxDepth
            limits.json.maxStringBytes = try section.int("max_string_bytes") ?? limits.json.maxStringBytes
            limits.json.maxElements = try section.int("max_array_elements") ?? limits.json.maxElements
            limits.maxInFlightPerConnection = try section.int("max_in_flight_per_connection") ?? limits.maxInFlightPerConnection
            limits.maxConnections = try section.int("max_connections") ?? limits.maxConnections
            limits.maxConnectionsPerUser = try section.int("max_connections_per_user") ?? limits.maxConnectionsPerUser
            limits.idleTimeoutSeconds = try section.int64("idle_timeout") ?? limits.idleTimeoutSeconds
            limits.partialFrameTimeoutSeconds = try section.int64("partial_frame_timeout") ?? limits.partialFrameTimeoutSeconds
            limits.maxBatchRequests = try section.int("max_batch_requests") ?? limits.maxBatchRequests
            limits.connectionCPUSharePPM = try section.fractionPPM("connection_cpu_share") ?? limits.connectionCPUSharePPM
            limits.connectionCPUBurstMillis = try section.int64("connection_cpu_burst_ms") ?? limits.connectionCPUBurstMillis
            try section.finish()
            guard limits.connectionCPUSharePPM > 0, limits.connectionCPUBurstMillis >= 0 else {
                throw ConfigError("limits.connection_cpu_share must be more than 0 and connection_cpu_burst_ms not negative")
            }
        }
        if var section = try root.section("cache") {
            cache.maxBytes = try section.int("max_bytes") ?? cache.maxBytes
            cache.defaultTTLSeconds = try section.int64("default_ttl") ?? cache.defaultTTLSeconds
            cache.maxTTLSeconds = try section.int64("max_ttl") ?? cache.maxTTLSeconds
            cache.sweepIntervalSeconds = try section.int64("sweep_interval") ?? cache.sweepIntervalSeconds
            cache.leaseTTLSeconds = try section.int64("lease_ttl") ?? cache.leaseTTLSeconds
            cache.defaultLeaseWaitMillis = try section.int64("lease_wait_ms") ?? cache.defaultLeaseWaitMillis
            cache.maxLeaseWaitMillis = try section.int64("max_lease_wait_ms") ?? cache.maxLeaseWaitMillis
            cache.defaultNamespace = try section.string("default_namespace") ?? cache.defaultNamespace
            try section.finish()
            do {
                _ = try CacheNamespace.resolve(cache.defaultNamespace, defaultNamespace: "", callerUID: 0)
            } catch {
                throw ConfigError("cache.default_namespace: names starting with '@' are reserved; '@me' is each caller's own")
            }
        }
        if var section = try root.section("access") {
            access.adminUsers = try section.strings("admin_users") ?? []
            access.adminGroups = try section.strings("admin_groups") ?? []
            try section.finish()
        }
        if var section = try root.section("budget") {
            budget.daily = try section.money("daily")
            budget.monthly = try section.money("monthly")
            budget.warningFractionPPM = try section.fractionPPM("warning_fraction") ?? budget.warningFractionPPM
            budget.hardDaily = try section.bool("hard_daily") ?? false
            budget.hardMonthly = try section.bool("hard_monthly") ?? false
            try section.finish()
        }
        if let entries = try root.array("budgets") {
            for (index, entry) in entries.enumerated() {
                var section = try Section(entry, path: "budgets[\(index)]")
                var values: [SpendScope.Dimension: String] = [:]
                for dimension in SpendScope.Dimension.allCases {
                    if let value = try section.string(dimension.rawValue) {
                        guard !value.isEmpty, !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                            throw ConfigError("budgets[\(index)].\(dimension.rawValue) must be a name without control characters")
                        }
                        values[dimension] = value
                    }
                }
                budget.scoped.append(
                    ScopedBudget(
                        scope: SpendScope(values), daily: try section.money("daily"), monthly: try section.money("monthly"),
                        hard: try section.bool("hard") ?? false,
                        warningFractionPPM: try section.fractionPPM("warning_fraction") ?? budget.warningFractionPPM))
                try section.finish()
            }
        }
        if var section = try root.section("routing") {
            routing = try RoutingRules(section: &section, defaults: routing)
            try section.finish()
        }
        // `prices = "file.json"` names a LiteLLM price file; a `[prices]` table may name one as
        // `file` and list models of its own.
        switch root.value("prices") {
        case nil: break
        case .string(let path)?: pricesFile = path
        case .object(var entries)?:
            if let file = entries["file"] {
                guard let path = file.stringValue else { throw ConfigError("prices.file must be a string") }
                pricesFile = path
                entries.members.removeAll { $0.key == "file" }
            }
            do {
                self.prices = try PriceTable.fromConfig(entries)
            } catch {
                throw ConfigError(error.message)
            }
        default:
            throw ConfigError("prices must be the path of a price file or a table of model prices")
        }
        if var section = try root.section("ledger") {
            if let fsync = try section.string("fsync") {
                guard let mode = LedgerSettings.Fsync(rawValue: fsync) else {
                    throw ConfigError("ledger.fsync must be \"always\" or \"batched\"")
                }
                ledger.fsync = mode
            }
            ledger.compactAfterBytes = try section.int64("compact_after_bytes") ?? ledger.compactAfterBytes
            ledger.historyDays = try section.int("history_days") ?? ledger.historyDays
            ledger.recordIdWindowSeconds = try section.int64("record_id_window") ?? ledger.recordIdWindowSeconds
            ledger.recordIdCapacity = try section.int("record_id_capacity") ?? ledger.recordIdCapacity
            try section.finish()
            guard ledger.recordIdWindowSeconds > 0, ledger.recordIdCapacity > 0 else {
                throw ConfigError("ledger.record_id_window and ledger.record_id_capacity must be positive")
            }
        }
        if var section = try root.section("redis") {
            guard let url = try section.string("url") else { throw ConfigError("redis.url is required in [redis]") }
            var redis = RedisSettings(endpoint: try RedisEndpoint(url: url))
            redis.spendEndpoint = try section.string("spend_url").map { url throws(ConfigError) in try RedisEndpoint(url: url) }
            redisPasswordFile = try section.string("password_file")
            redis.keyPrefix = try section.string("key_prefix") ?? redis.keyPrefix
            redis.poolSize = try section.int("pool_size") ?? redis.poolSize
            redis.connectTimeoutMillis = try section.int64("connect_timeout_ms") ?? redis.connectTimeoutMillis
            redis.cacheTimeoutMillis = try section.int64("cache_timeout_ms") ?? redis.cacheTimeoutMillis
            redis.recordTimeoutMillis = try section.int64("record_timeout_ms") ?? redis.recordTimeoutMillis
            redis.recordIdWindowSeconds = try section.int64("record_id_window") ?? redis.recordIdWindowSeconds
            redis.dayKeyTTLDays = try section.int64("day_key_ttl_days") ?? redis.dayKeyTTLDays
            redis.monthKeyTTLDays = try section.int64("month_key_ttl_days") ?? redis.monthKeyTTLDays
            redis.maxReplyBytes = try section.int("max_reply_bytes") ?? redis.maxReplyBytes
            try section.finish()
            self.redis = redis
        }
        if var section = try root.section("http") {
            http.enabled = try section.bool("enabled") ?? http.enabled
            http.socketPath = try section.string("socket")
            http.listen = try section.string("listen")
            http.allowRemote = try section.bool("allow_remote") ?? http.allowRemote
            if let mode = try section.string("cache") {
                guard let parsed = GatewayCachePolicy.Mode(rawValue: mode) else {
                    throw ConfigError("http.cache must be deterministic, all or off, not '\(mode)'")
                }
                http.cache = parsed
            }
            http.maxBodyBytes = try section.int("max_body_bytes") ?? http.maxBodyBytes
            http.maxResponseBytes = try section.int("max_response_bytes") ?? http.maxResponseBytes
            http.requestTimeoutSeconds = try section.int64("request_timeout") ?? http.requestTimeoutSeconds
            http.idleTimeoutSeconds = try section.int64("idle_timeout") ?? http.idleTimeoutSeconds
            http.connectTimeoutMillis = try section.int64("connect_timeout_ms") ?? http.connectTimeoutMillis
            http.readTimeoutMillis = try section.int64("read_timeout_ms") ?? http.readTimeoutMillis
            http.defaultMaxOutputTokens = try section.int64("default_max_output_tokens") ?? http.defaultMaxOutputTokens
            http.cacheTTLSeconds = try section.int64("cache_ttl")
            try section.finish()
        }
        if let upstreams = try root.table("upstreams") {
            for member in upstreams.members {
                var section = try Section(member.value, path: "upstreams.\(member.key)")
                let known = http.upstreams[member.key]
                guard let url = try section.string("url") ?? known?.url else {
                    throw ConfigError("upstreams.\(member.key).url is required")
                }
                var upstream = HTTPSettings.Upstream(url: url, keyFile: try section.string("key_file"), auth: known?.auth ?? .bearer)
                if let auth = try section.string("auth") {
                    guard let parsed = HTTPSettings.Upstream.Auth(rawValue: auth) else {
                        throw ConfigError("upstreams.\(member.key).auth must be bearer or x-api-key")
                    }
                    upstream.auth = parsed
                }
                try section.finish()
                http.upstreams[member.key] = upstream
            }
        }
        try root.finish()
        try validate()
    }

    public init(toml text: String) throws(ConfigError) {
        try self.init(document: TOMLParser.parse(text))
    }
}

extension RoutingRules {
    fileprivate init(section: inout Section, defaults: RoutingRules) throws(ConfigError) {
        self = defaults
        if let tiers = try section.array("tiers") {
            self.tiers = []
            for (offset, element) in tiers.enumerated() {
                var tier = try Section(element, path: "routing.tiers[\(offset)]")
                guard let name = try tier.string("name"), let model = try tier.string("model") else {
                    throw ConfigError("routing.tiers[\(offset)] needs a name and a model")
                }
                try tier.finish()
                self.tiers.append(Tier(name: name, model: model))
            }
        }
        defaultTier = try section.string("default_tier") ?? defaultTier
        if let threshold = section.has("prompt_token_threshold") ? try section.int64("prompt_token_threshold") : promptTokenThreshold {
            promptTokenThreshold = threshold > 0 ? threshold : nil
        }
        if section.has("budget_downgrade_fraction") {
            let fraction = try section.fractionPPM("budget_downgrade_fraction") ?? 0
            budgetDowngradeFractionPPM = fraction > 0 ? fraction : nil
        }
        downgradeTier = try section.string("budget_downgrade_to") ?? downgradeTier
        if let tasks = try section.table("tasks") {
            taskTiers = [:]
            for member in tasks.members {
                guard let tier = member.value.stringValue else {
                    throw ConfigError("routing.tasks.\(member.key) must be the name of a tier")
                }
                taskTiers[member.key] = tier
            }
        }
        if let maxTokens = try section.table("max_tokens") {
            for member in maxTokens.members {
                guard let value = member.value.numberValue?.int64 else {
                    throw ConfigError("routing.max_tokens.\(member.key) must be an integer")
                }
                if member.key == "default" { defaultMaxTokens = value } else { taskMaxTokens[member.key] = value }
            }
        }
    }
}

/// Reads one table of the config, remembering which keys were used so that the rest can be
/// reported as unknown.
private struct Section {
    let object: JSONObject
    let path: String
    var used: Set<String> = []

    init(_ value: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = value else {
            throw ConfigError("\(path.isEmpty ? "the config" : path) must be a table")
        }
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { object[key] != nil }

    mutating func value(_ key: String) -> JSONValue? {
        used.insert(key)
        return object[key]
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw ConfigError("\(name(key)) must be a string") }
        return string
    }

    mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw ConfigError("\(name(key)) must be true or false") }
        return bool
    }

    mutating func int64(_ key: String) throws(ConfigError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard let int = value.numberValue?.int64, int >= 0 else {
            throw ConfigError("\(name(key)) must be a non-negative integer")
        }
        return int
    }

    mutating func int(_ key: String) throws(ConfigError) -> Int? {
        try int64(key).map { Int($0) }
    }

    mutating func money(_ key: String) throws(ConfigError) -> Money? {
        guard let value = value(key) else { return nil }
        guard let number = value.numberValue, let money = Money(usd: number), money.nanos >= 0 else {
            throw ConfigError("\(name(key)) must be a non-negative amount of USD")
        }
        return money
    }

    mutating func fractionPPM(_ key: String) throws(ConfigError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard let ppm = value.numberValue?.scaled(byPowerOfTen: 6), ppm >= 0, ppm <= 1_000_000 else {
            throw ConfigError("\(name(key)) must be a fraction between 0 and 1")
        }
        return ppm
    }

    mutating func array(_ key: String) throws(ConfigError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let array = value.arrayValue else { throw ConfigError("\(name(key)) must be an array") }
        return array
    }

    mutating func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let array = try array(key) else { return nil }
        var strings: [String] = []
        for element in array {
            guard let string = element.stringValue, !string.isEmpty else { throw ConfigError("\(name(key)) must be a list of names") }
            strings.append(string)
        }
        return strings
    }

    mutating func table(_ key: String) throws(ConfigError) -> JSONObject? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else { throw ConfigError("\(name(key)) must be a table") }
        return object
    }

    mutating func section(_ key: String) throws(ConfigError) -> Section? {
        guard let value = value(key) else { return nil }
        return try Section(value, path: name(key))
    }

    func finish() throws(ConfigError) {
        if let unknown = object.members.first(where: { !used.contains($0.key) }) {
            throw ConfigError("unknown setting '\(name(unknown.key))'")
        }
    }
}
