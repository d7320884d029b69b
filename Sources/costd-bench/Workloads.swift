import CostdClient
import CostdCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The requests of every scenario, built once (the client must not be what is measured).
struct Workloads {
    static let keyCount = 1_000

    let valueBytes: Int
    let value: String
    let ping: Workload
    let cacheGetHit: Workload
    let cacheGetMiss: Workload
    let cacheSet: Workload
    let record: Workload
    let route: Workload
    let sequence: Workload
    let echo: Workload
    let echo3: Workload
    let redisGet: Workload
    let redisGetMiss: Workload
    let redisSet: Workload

    static func prompt(_ index: Int) -> String { "bench prompt number \(index)" }

    init(valueBytes: Int) {
        self.valueBytes = valueBytes
        // A JSON string of exactly valueBytes bytes, quotes included.
        let value = "\"" + String(repeating: "x", count: max(0, valueBytes - 2)) + "\""
        self.value = value
        let pingFrame = Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        ping = Workload(name: "ping", framing: .lengthPrefixed) { _, _ in [pingFrame] }
        let getFrames = (0..<Workloads.keyCount).map {
            Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"gpt-4o-mini","prompt":"\#(Workloads.prompt($0))"}}"#)
        }
        cacheGetHit = Workload(name: "cacheGet", framing: .lengthPrefixed) { connection, sequence in
            [getFrames[(connection &* 7919 &+ sequence) % Workloads.keyCount]]
        }
        cacheGetMiss = Workload(name: "cacheGet miss", framing: .lengthPrefixed) { connection, sequence in
            [Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"gpt-4o-mini","prompt":"never stored \#(connection) \#(sequence)"}}"#)]
        }
        let setFrames = (0..<Workloads.keyCount).map {
            Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"cacheSet","params":{"model":"gpt-4o-mini","prompt":"\#(Workloads.prompt($0))","value":\#(value)}}"#)
        }
        cacheSet = Workload(name: "cacheSet", framing: .lengthPrefixed) { connection, sequence in
            [setFrames[(connection &* 7919 &+ sequence) % Workloads.keyCount]]
        }
        let recordFrame = Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"gpt-4o-mini","inputTokens":420,"outputTokens":80,"feature":"bench"}}"#)
        record = Workload(name: "record", framing: .lengthPrefixed) { _, _ in [recordFrame] }
        let routeFrame = Requests.frame(#"{"jsonrpc":"2.0","id":1,"method":"route","params":{"task":"classification","inputTokens":420}}"#)
        route = Workload(name: "route", framing: .lengthPrefixed) { _, _ in [routeFrame] }
        sequence = Workload(name: "route+get+record", framing: .lengthPrefixed) { connection, sequence in
            [routeFrame, getFrames[(connection &* 7919 &+ sequence) % Workloads.keyCount], recordFrame]
        }
        // The echo floor sends a frame the size of a cacheGet hit's answer round trip.
        let echoFrame = Requests.frame(#"{"jsonrpc":"2.0","id":1,"result":{"hit":true,"value":\#(value),"layer":"l1"}}"#)
        echo = Workload(name: "echo", framing: .lengthPrefixed) { _, _ in [echoFrame] }
        echo3 = Workload(name: "echo x3", framing: .lengthPrefixed) { _, _ in [echoFrame, echoFrame, echoFrame] }
        let redisGets = (0..<Workloads.keyCount).map { Requests.resp([Array("GET".utf8), Array("bench:\($0)".utf8)]) }
        redisGet = Workload(name: "GET", framing: .resp) { connection, sequence in
            [redisGets[(connection &* 7919 &+ sequence) % Workloads.keyCount]]
        }
        redisGetMiss = Workload(name: "GET miss", framing: .resp) { connection, sequence in
            [Requests.resp([Array("GET".utf8), Array("never:\(connection):\(sequence)".utf8)])]
        }
        let redisSets = (0..<Workloads.keyCount).map { Requests.resp([Array("SET".utf8), Array("bench:\($0)".utf8), Array(value.utf8)]) }
        redisSet = Workload(name: "SET", framing: .resp) { connection, sequence in
            [redisSets[(connection &* 7919 &+ sequence) % Workloads.keyCount]]
        }
    }

    /// Stores every key in both daemons (the second one's L1 is off, so its entries live in
    /// Redis) and in Redis under the anchor's names.
    func populate(costdSocket: String, sharedSocket: String, redisSocket: String) throws {
        let valueJSON = try JSONParser.parse(value)
        for socket in [costdSocket, sharedSocket] {
            let connection = try CostdConnection(path: socket)
            for index in 0..<Workloads.keyCount {
                _ = try connection.call("cacheSet", ["model": "gpt-4o-mini", "prompt": .string(Workloads.prompt(index)), "value": valueJSON])
            }
        }
        let fd = try LoadGenerator.connect(redisSocket)
        defer { close(fd) }
        var commands: [UInt8] = []
        for index in 0..<Workloads.keyCount {
            commands += Requests.resp([Array("SET".utf8), Array("bench:\(index)".utf8), Array(value.utf8)])
        }
        _ = commands.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // Read the +OK replies back.
        var expected = Workloads.keyCount * 5
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while expected > 0 {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            expected -= count
        }
    }
}

/// What the L1 cache costs in memory: RSS before and after storing `entries` values.
struct Memory {
    var entries: Int
    var payload: Int
    var rssGrowth: Int
    var ratio: Double { Double(rssGrowth) / Double(payload) }

    static func measure(costdBinary: String, directory: String, valueBytes: Int, entries: Int) throws -> Memory {
        let server = try ServerProcess(
            name: "costd-memory", executable: costdBinary,
            arguments: ["--socket", "\(directory)/memory.sock", "--state-dir", "\(directory)/memory", "--log-level", "warning", "--cache-bytes", "\(1 << 30)"],
            socketPath: "\(directory)/memory.sock", log: "\(directory)/memory.log"
        )
        defer { server.stop() }
        try server.waitUntilReady()
        let value = "\"" + String(repeating: "y", count: valueBytes - 2) + "\""
        // Warm the process up (first requests allocate buffers) before the baseline.
        let connection = try CostdConnection(path: server.socketPath)
        _ = try connection.call("ping")
        usleep(200_000)
        let before = server.residentBytes
        var sent = 0
        while sent < entries {
            let batch = min(500, entries - sent)
            for index in sent..<(sent + batch) {
                try connection.send(Array(#"{"jsonrpc":"2.0","id":\#(index),"method":"cacheSet","params":{"model":"m","prompt":"memory \#(index)","value":\#(value)}}"#.utf8))
            }
            for _ in 0..<batch { _ = try connection.receiveFrame() }
            sent += batch
        }
        usleep(200_000)
        let after = server.residentBytes
        return Memory(entries: entries, payload: entries * valueBytes, rssGrowth: after - before)
    }
}

/// The targets of the performance issue, each with its measured value.
enum Targets {
    static func print(
        figures: [String: (Figure, Figure?)], idleRSS: Int, memory: Memory, readyMillis: Double, firstChunk: (direct: [Double], costd: [Double])?,
        flood: (costd: Figure, sink: Figure)?
    ) {
        Swift.print("")
        Swift.print("| target | wanted | measured | met |")
        Swift.print("| --- | --- | --- | --- |")
        func row(_ name: String, _ wanted: String, _ measured: String, _ met: Bool?) {
            Swift.print("| \(name) | \(wanted) | \(measured) | \(met.map { $0 ? "yes" : "NO" } ?? "-") |")
        }
        if let (l1, redis) = figures["cacheGet L1 hit@50"], let redis {
            let ratio = l1.opsPerSecond / redis.opsPerSecond
            row("cacheGet L1 hit, 50 conns, ops/s vs redis GET", ">= 0.9x", "\(format(ratio, digits: 2))x (\(format(l1.opsPerSecond)) vs \(format(redis.opsPerSecond)))", ratio >= 0.9)
            let p99 = l1.p99 / redis.p99
            row("cacheGet L1 hit, 50 conns, p99 vs redis", "<= 2x", "\(format(p99, digits: 2))x (\(format(l1.p99)) vs \(format(redis.p99)) µs)", p99 <= 2)
            let cpu = l1.cpuMicrosPerOp / redis.cpuMicrosPerOp
            row("server CPU per L1 hit vs redis GET", "<= 1.3x", "\(format(cpu, digits: 2))x (\(format(l1.cpuMicrosPerOp, digits: 1)) vs \(format(redis.cpuMicrosPerOp, digits: 1)) µs)", cpu <= 1.3)
        }
        if let (l1, redis) = figures["cacheGet L1 hit@1"], let redis {
            let ratio = l1.p50 / redis.p50
            row("cacheGet L1 hit, 1 conn, p50 vs redis GET", "<= 1.15x", "\(format(ratio, digits: 2))x (\(format(l1.p50)) vs \(format(redis.p50)) µs)", ratio <= 1.15)
        }
        for connections in [1, 50] {
            if let (ping, _) = figures["ping@\(connections)"], let (echo, _) = figures["echo (NIO)@\(connections)"] {
                let added = ping.cpuMicrosPerOp - echo.cpuMicrosPerOp
                row("ping CPU over a bare NIO echo, \(connections) conn(s)", "<= +1.5 µs", "+\(format(added, digits: 1)) µs (\(format(ping.cpuMicrosPerOp, digits: 1)) vs \(format(echo.cpuMicrosPerOp, digits: 1)))", added <= 1.5)
            }
        }
        if let (l2, redis) = figures["cacheGet L2 hit@50"], let redis {
            let ratio = l2.opsPerSecond / redis.opsPerSecond
            row("cacheGet L2 hit, 50 conns, ops/s vs redis GET", ">= 0.5x", "\(format(ratio, digits: 2))x", ratio >= 0.5)
        }
        if let (sequence, _) = figures["route+get+record@1"] {
            row("route → cacheGet → record, 1 conn, p99 (batched)", "<= 250 µs", "\(format(sequence.p99)) µs", sequence.p99 <= 250)
        }
        if let (record, _) = figures["record (Redis)@50"] {
            row("record through Redis, 50 conns", ">= 25000/s", "\(format(record.opsPerSecond))/s", record.opsPerSecond >= 25_000)
        }
        for (scenario, wanted) in [("record (ledger)", 0.4), ("record (always)", 0.25)] {
            if let (record, redis) = figures["\(scenario)@50"], let redis {
                let ratio = record.opsPerSecond / redis.opsPerSecond
                row("durable \(scenario), 50 conns, ops/s vs redis GET", ">= \(wanted)x", "\(format(ratio, digits: 2))x (\(format(record.opsPerSecond)) vs \(format(redis.opsPerSecond)))", ratio >= wanted)
            }
        }
        if let flood {
            let ratio = flood.costd.p99 / flood.sink.p99
            row("good client's p99 during a flood vs the flood sent to a byte sink", "<= 1.5x", "\(format(ratio, digits: 2))x (\(format(flood.costd.p99)) vs \(format(flood.sink.p99)) µs)", ratio <= 1.5)
        }
        if let (miss, upstream) = figures["http miss@1"], let upstream {
            let added = miss.p50 - upstream.p50
            row("HTTP miss, 1 conn, p50 added over the upstream alone", "<= 100 µs", "\(format(added)) µs (\(format(miss.p50)) vs \(format(upstream.p50)) µs)", added <= 100)
        }
        if let (hit, rpc) = figures["http cache hit@50"], let rpc {
            let ratio = hit.opsPerSecond / rpc.opsPerSecond
            row("HTTP cache hit, 50 conns, ops/s vs RPC cacheGet L1 hit", ">= 0.5x", "\(format(ratio, digits: 2))x (\(format(hit.opsPerSecond)) vs \(format(rpc.opsPerSecond)))", ratio >= 0.5)
        }
        if let firstChunk, !firstChunk.direct.isEmpty {
            let median = { (samples: [Double]) in samples.sorted()[samples.count / 2] }
            let added = median(firstChunk.costd) - median(firstChunk.direct)
            row("SSE first event, p50 added over the upstream alone", "<= 1000 µs", "\(format(added)) µs", added <= 1000)
        }
        row("L1 memory at \(memory.entries) entries", "<= 1.25x payload", "\(format(memory.ratio, digits: 3))x", memory.ratio <= 1.25)
        row("idle RSS", "<= 25 MB", "\(format(Double(idleRSS) / 1_048_576, digits: 1)) MiB", idleRSS <= 25 << 20)
        row("ready after start", "<= 100 ms", "\(format(readyMillis, digits: 1)) ms", readyMillis <= 100)
    }
}
