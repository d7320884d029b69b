import ArgumentParser
import CostdClient
import CostdCore
import CostdPOSIX
import Foundation

#if canImport(Glibc)
import Glibc
#endif

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "costd-bench",
        abstract: "Measures costd beside redis-server and an echo floor, with one client for all.",
        subcommands: [Run.self, Micro.self, BacklogBench.self, EchoServer.self, FakeUpstream.self, Flood.self],
        defaultSubcommand: Run.self
    )
}

struct EchoServer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo-server", abstract: "A length-prefix echo server (used by run).")
    @Option var socket: String
    @Option(help: "nio, poll, or sink (reads and drops)") var kind: String = "poll"
    @Option var threads: Int = 2

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        if kind == "nio" { try EchoServers.runNIO(path: socket, threads: threads) }
        try EchoServers.runPoll(path: socket, reply: kind != "sink")
    }
}

/// One measured figure: a scenario at some concurrency, the median of its rounds.
struct Figure {
    var scenario: String
    var server: String
    var connections: Int
    var inFlight: Int
    var opsPerSecond: Double
    var p50: Double
    var p99: Double
    var p999: Double
    var cpuMicrosPerOp: Double
    var errors: UInt64
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the comparison (A B A B ..., medians).")

    @Option(help: "Seconds measured per round.") var duration: Double = 3
    @Option(help: "Seconds of warm-up per round.") var warmup: Double = 1
    @Option(help: "Rounds per figure (alternating with its anchor).") var rounds: Int = 3
    @Option(help: "Bytes of each cached value.") var valueBytes: Int = 1024
    @Option(help: "Connection counts to measure, comma-separated.") var connections: String = "1,50"
    @Option(help: "Requests in flight per connection.") var inFlight: Int = 1
    @Option(help: "Client threads.") var threads: Int = 2
    @Option(help: "Only these scenarios (comma-separated names).") var only: String?
    @Flag(help: "A short smoke run: tiny durations, one round (for CI; numbers mean nothing).") var quick = false
    @Option(help: "The costd binary (default: next to costd-bench).") var costd: String?
    @Option(help: "The redis-server binary.") var redisServer: String = "/usr/bin/redis-server"
    @Option(name: .customLong("costd-threads"), help: "Event-loop threads of the costd under test (default: its own default, half the cores).")
    var costdThreads: Int?
    @Option(name: .customLong("flood-mix"), help: "The flood scenario's frames: mixed, malformed or heavy.")
    var floodMix: String = "mixed"
    @Option(name: .customLong("redis-pool"), help: "redis.pool_size of the costd on Redis (default: its own default).")
    var redisPool: Int?

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let benchPath = URL(fileURLWithPath: Executable.currentPath())
        let binaryDirectory = benchPath.deletingLastPathComponent().path
        let costdBinary = costd ?? binaryDirectory + "/costd"
        let duration = quick ? 0.3 : self.duration
        let warmup = quick ? 0.1 : self.warmup
        let rounds = quick ? 1 : self.rounds
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var servers: [ServerProcess] = []
        defer { servers.forEach { $0.stop() } }
        func start(_ name: String, _ executable: String, _ arguments: [String], socket: String) throws -> ServerProcess {
            let server = try ServerProcess(name: name, executable: executable, arguments: arguments, socketPath: socket, log: "\(directory)/\(name).log")
            servers.append(server)
            try server.waitUntilReady()
            return server
        }

        print("# costd-bench  \(Date())  \(ProcessInfo.processInfo.activeProcessorCount) cores  value \(valueBytes) B  \(rounds) round(s) of \(duration) s")
        let redis = try start("redis", redisServer, ["--port", "0", "--unixsocket", "\(directory)/redis.sock", "--save", "", "--appendonly", "no", "--dir", directory], socket: "\(directory)/redis.sock")
        let threadArguments = costdThreads.map { ["--threads", "\($0)"] } ?? []
        let upstream = try start("upstream", benchPath.path, ["fake-upstream", "--socket", "\(directory)/upstream.sock"], socket: "\(directory)/upstream.sock")
        let upstreamURL = "http+unix://" + upstream.socketPath.replacingOccurrences(of: "/", with: "%2F") + "/v1"
        let embedded = try start(
            "costd", costdBinary,
            ["--socket", "\(directory)/costd.sock", "--state-dir", "\(directory)/state", "--log-level", "warning",
             "--http-socket", "\(directory)/costd-http.sock", "--upstream", "openai=\(upstreamURL)"] + threadArguments,
            socket: "\(directory)/costd.sock")
        let always = try start(
            "costd-always", costdBinary,
            ["--socket", "\(directory)/costd-always.sock", "--state-dir", "\(directory)/state-always", "--log-level", "warning",
             "--ledger-fsync", "always", "--no-http"] + threadArguments,
            socket: "\(directory)/costd-always.sock")
        let http = ServerProcess(name: "costd-http", sharing: embedded, socketPath: "\(directory)/costd-http.sock")
        try http.waitUntilReady()
        let idleRSS = embedded.residentBytes
        var poolArguments: [String] = []
        if let redisPool {
            let config = "\(directory)/costd-l2.toml"
            FileManager.default.createFile(atPath: config, contents: Data("[redis]\nurl = \"unix://\(directory)/redis.sock\"\npool_size = \(redisPool)\n".utf8))
            poolArguments = ["--config", config]
        }
        let shared = try start(
            "costd-l2", costdBinary,
            ["--socket", "\(directory)/costd-l2.sock", "--state-dir", "\(directory)/state-l2", "--redis", "unix://\(directory)/redis.sock", "--cache-bytes", "0", "--log-level", "warning"] + threadArguments + poolArguments,
            socket: "\(directory)/costd-l2.sock"
        )
        let echo = try start("echo-poll", benchPath.path, ["echo-server", "--kind", "poll", "--socket", "\(directory)/echo.sock"], socket: "\(directory)/echo.sock")
        let nioEcho = try start("echo-nio", benchPath.path, ["echo-server", "--kind", "nio", "--socket", "\(directory)/echo-nio.sock"], socket: "\(directory)/echo-nio.sock")
        let sink = try start("sink", benchPath.path, ["echo-server", "--kind", "sink", "--socket", "\(directory)/sink.sock"], socket: "\(directory)/sink.sock")

        let workloads = Workloads(valueBytes: valueBytes)
        try workloads.populate(costdSocket: embedded.socketPath, sharedSocket: shared.socketPath, redisSocket: redis.socketPath)
        let httpWorkloads = HTTPWorkloads()
        try httpWorkloads.populate(httpSocket: http.socketPath)

        struct Pair {
            var name: String
            var server: ServerProcess
            var workload: Workload
            var anchor: (ServerProcess, Workload)?
        }
        let pairs: [Pair] = [
            Pair(name: "echo (NIO)", server: nioEcho, workload: workloads.echo, anchor: (echo, workloads.echo)),
            Pair(name: "ping", server: embedded, workload: workloads.ping, anchor: (echo, workloads.echo)),
            Pair(name: "cacheGet L1 hit", server: embedded, workload: workloads.cacheGetHit, anchor: (redis, workloads.redisGet)),
            Pair(name: "cacheGet L2 hit", server: shared, workload: workloads.cacheGetHit, anchor: (redis, workloads.redisGet)),
            Pair(name: "cacheGet miss", server: embedded, workload: workloads.cacheGetMiss, anchor: (redis, workloads.redisGetMiss)),
            Pair(name: "cacheSet", server: embedded, workload: workloads.cacheSet, anchor: (redis, workloads.redisSet)),
            Pair(name: "record (ledger)", server: embedded, workload: workloads.record, anchor: (redis, workloads.redisGet)),
            Pair(name: "record (always)", server: always, workload: workloads.record, anchor: (redis, workloads.redisGet)),
            Pair(name: "record (Redis)", server: shared, workload: workloads.record, anchor: (redis, workloads.redisGet)),
            Pair(name: "route", server: embedded, workload: workloads.route, anchor: (echo, workloads.echo)),
            Pair(name: "route+get+record", server: embedded, workload: workloads.sequence, anchor: (echo, workloads.echo3)),
            Pair(name: "http miss", server: http, workload: httpWorkloads.missThroughCostd, anchor: (upstream, httpWorkloads.direct)),
            Pair(name: "http cache hit", server: http, workload: httpWorkloads.hit, anchor: (embedded, workloads.cacheGetHit)),
        ]
        let selected = only.map { Set($0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }) }
        let connectionCounts = connections.split(separator: ",").compactMap { Int($0) }

        print("")
        print("| scenario | conns | server | ops/s | p50 µs | p99 µs | p99.9 µs | CPU µs/op | anchor | anchor ops/s | anchor p50 | anchor p99 | ops ratio | p99 ratio |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        var figures: [String: (Figure, Figure?)] = [:]
        for pair in pairs where selected?.contains(pair.name) ?? true {
            for connectionCount in connectionCounts {
                var mine: [Figure] = []
                var theirs: [Figure] = []
                for _ in 0..<rounds {
                    mine.append(try measure(pair.name, pair.server, pair.workload, connectionCount, duration: duration, warmup: warmup))
                    if let (anchorServer, anchorWorkload) = pair.anchor {
                        theirs.append(try measure(anchorWorkload.name, anchorServer, anchorWorkload, connectionCount, duration: duration, warmup: warmup))
                    }
                }
                let figure = median(mine)
                let anchor = theirs.isEmpty ? nil : median(theirs)
                figures["\(pair.name)@\(connectionCount)"] = (figure, anchor)
                var row = "| \(pair.name) | \(connectionCount) | \(pair.server.name) | \(format(figure.opsPerSecond)) | \(format(figure.p50)) | \(format(figure.p99)) | \(format(figure.p999)) | \(format(figure.cpuMicrosPerOp, digits: 1)) |"
                if let anchor {
                    row += " \(anchor.scenario) (\(anchor.server)) | \(format(anchor.opsPerSecond)) | \(format(anchor.p50)) | \(format(anchor.p99)) | \(format(figure.opsPerSecond / anchor.opsPerSecond, digits: 2))x | \(format(figure.p99 / anchor.p99, digits: 2))x |"
                } else {
                    row += " | | | | | |"
                }
                if figure.errors > 0 { row += " (\(figure.errors) errors)" }
                print(row)
                fflush(nil)
            }
        }

        // What a power loss could have lost while the records above ran: each ledger's sync window.
        if selected.map({ !$0.isDisjoint(with: ["record (ledger)", "record (always)"]) }) ?? true {
            print("")
            for server in [embedded, always] {
                let durability = try CostdConnection(path: server.socketPath).call("report", [:])["durability"]
                func text(_ value: JSONValue?) -> String { value?.numberValue?.description ?? value?.stringValue ?? "?" }
                let window = durability?["syncWindowMs"]
                print("ledger sync window (\(server.name), fsync \(text(durability?["fsync"]))): p50 \(text(window?["p50"])) ms, p99 \(text(window?["p99"])) ms, max \(text(window?["max"])) ms over \(text(durability?["syncs"])) syncs")
            }
        }

        // A good client during a flood from 8 hostile processes, against the same flood sent to a
        // byte sink (the same CPU taken from the machine, none of it from costd), alternating.
        var flood: (costd: Figure, sink: Figure)? = nil
        if selected?.contains("flood") ?? true {
            var floodingCostd: [Figure] = []
            var floodingSink: [Figure] = []
            for _ in 0..<rounds {
                for (target, into) in [(embedded, 0), (sink, 1)] {
                    let flooders = try Flooders(bench: benchPath.path, socket: target.socketPath, count: 8, seconds: duration + warmup + 5, mix: floodMix)
                    defer { flooders.stop() }
                    usleep(200_000)
                    let figure = try measure("good client during a flood", embedded, workloads.cacheGetHit, 1, duration: duration, warmup: warmup)
                    if into == 0 { floodingCostd.append(figure) } else { floodingSink.append(figure) }
                }
            }
            let (costdFigure, sinkFigure) = (median(floodingCostd), median(floodingSink))
            print("")
            print("good client (cacheGet L1 hit, 1 conn) while 8 processes flood costd: p50 \(format(costdFigure.p50)) µs p99 \(format(costdFigure.p99)) µs; while they flood a byte sink: p50 \(format(sinkFigure.p50)) µs p99 \(format(sinkFigure.p99)) µs")
            flood = (costdFigure, sinkFigure)
        }

        // The first event of a stream, through costd and straight from the upstream, alternating.
        var firstChunk: (direct: [Double], costd: [Double])? = nil
        if selected?.contains("sse first chunk") ?? true {
            var direct: [Double] = []
            var throughCostd: [Double] = []
            for _ in 0..<rounds {
                direct += try HTTPResponses.firstChunkMicros(socket: upstream.socketPath, request: httpWorkloads.streamed, count: quick ? 5 : 200)
                throughCostd += try HTTPResponses.firstChunkMicros(socket: http.socketPath, request: httpWorkloads.streamed, count: quick ? 5 : 200)
            }
            func percentile(_ samples: [Double], _ p: Double) -> Double { samples.sorted()[min(samples.count - 1, Int(Double(samples.count) * p / 100))] }
            print("")
            print("SSE first event: upstream directly p50 \(format(percentile(direct, 50))) µs p99 \(format(percentile(direct, 99))) µs; through costd p50 \(format(percentile(throughCostd, 50))) µs p99 \(format(percentile(throughCostd, 99))) µs")
            firstChunk = (direct, throughCostd)
        }

        // Memory and start-up.
        print("")
        let memory = try Memory.measure(costdBinary: costdBinary, directory: directory, valueBytes: valueBytes, entries: quick ? 2_000 : 100_000)
        print("idle RSS (fresh costd, embedded): \(idleRSS / 1024) KiB")
        print("L1 memory: \(memory.entries) entries of \(valueBytes) B: RSS grew \(memory.rssGrowth / 1024) KiB for \(memory.payload / 1024) KiB of values: \(format(memory.ratio, digits: 3))x")
        let readyTimes = try (0..<(quick ? 1 : 5)).map { index -> Double in
            let fresh = try ServerProcess(
                name: "costd-start-\(index)", executable: costdBinary,
                arguments: ["--socket", "\(directory)/start\(index).sock", "--state-dir", "\(directory)/start\(index)", "--log-level", "warning"],
                socketPath: "\(directory)/start\(index).sock", log: "\(directory)/start\(index).log"
            )
            defer { fresh.stop() }
            return try fresh.waitUntilReady()
        }
        print("ready (socket accepting) after start: median \(format(readyTimes.sorted()[readyTimes.count / 2], digits: 1)) ms of \(readyTimes.map { format($0, digits: 1) }.joined(separator: ", "))")

        Targets.print(figures: figures, idleRSS: idleRSS, memory: memory, readyMillis: readyTimes.sorted()[readyTimes.count / 2], firstChunk: firstChunk, flood: flood)
    }

    func measure(_ name: String, _ server: ServerProcess, _ workload: Workload, _ connections: Int, duration: Double, warmup: Double) throws -> Figure {
        // Operations of several steps, and HTTP/1.1 (one request at a time per connection), one in flight.
        let inFlight = workload.name == "route+get+record" || workload.framing == .http ? 1 : self.inFlight
        let cpuBefore = server.cpuSeconds
        let result = try LoadGenerator.run(
            socketPath: server.socketPath, workload: workload, connections: connections, inFlight: inFlight,
            threads: threads, warmup: warmup, duration: duration
        )
        let cpu = server.cpuSeconds - cpuBefore
        // CPU is measured over warm-up and run; ops over the run only: scale ops to the whole time.
        let totalOps = result.operationsPerSecond * (duration + warmup)
        return Figure(
            scenario: name, server: server.name, connections: connections, inFlight: inFlight,
            opsPerSecond: result.operationsPerSecond, p50: result.percentile(50), p99: result.percentile(99),
            p999: result.percentile(99.9), cpuMicrosPerOp: totalOps > 0 ? cpu / totalOps * 1e6 : 0, errors: result.errors
        )
    }

    func median(_ figures: [Figure]) -> Figure {
        func mid(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var figure = figures[0]
        figure.opsPerSecond = mid(figures.map(\.opsPerSecond))
        figure.p50 = mid(figures.map(\.p50))
        figure.p99 = mid(figures.map(\.p99))
        figure.p999 = mid(figures.map(\.p999))
        figure.cpuMicrosPerOp = mid(figures.map(\.cpuMicrosPerOp))
        figure.errors = figures.reduce(0) { $0 + $1.errors }
        return figure
    }
}

func format(_ value: Double, digits: Int = 0) -> String {
    guard value.isFinite else { return "-" }
    return String(format: "%.\(digits)f", value)
}
