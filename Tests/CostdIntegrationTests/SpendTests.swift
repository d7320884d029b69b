import CostdClient
import CostdCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Exact money, alerts, prices and the durability of the ledger, against real daemons.
@Suite(.timeLimit(.minutes(3))) struct SpendTests {
    @Test func moneyIsExact() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            // 3 input tokens of gpt-4o-mini cost $0.00000045; a thousand of them exactly $0.00045.
            for _ in 0..<1_000 {
                _ = try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 3, "outputTokens": 0])
            }
            try connection.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"report"}"#.utf8))
            let raw = String(decoding: try #require(try connection.receiveFrame()), as: UTF8.self)
            #expect(raw.contains(#""totalCostUsd":0.00045,"#), "\(raw)")
        }
    }

    @Test func alertsFireOncePerPeriodAndSurviveARestart() throws {
        let daemon = TestDaemon(arguments: ["--daily-budget", "1"])
        defer { daemon.cleanUp() }
        try daemon.start()
        func spend(_ usd: String) throws -> [String] {
            let result = try daemon.call("record", ["model": "x", "costUsd": .number(JSONNumber(validatedLiteral: usd))])
            return (result["alerts"]?.arrayValue ?? []).map { "\($0["scope"]?.stringValue ?? "")/\($0["level"]?.stringValue ?? "")" }
        }
        #expect(try spend("0.5") == [])
        #expect(try spend("0.35") == ["day/warning"])
        #expect(try spend("0.1") == [])
        #expect(try spend("0.05") == ["day/exceeded"])
        #expect(try spend("0.5") == [])
        // The alerts are logged too.
        #expect(daemon.log.contains("Budget warning"))
        #expect(daemon.log.contains("Budget exceeded"))
        daemon.killHard()
        try daemon.start()
        #expect(try spend("1") == [], "alerts fired before the restart must not fire again")
        let alert = try daemon.call("record", ["model": "x", "costUsd": 0])
        #expect(alert["day"]?["spentUsd"]?.money == Money(usd: "2.5"))
    }

    @Test func monthlyAlertsToo() throws {
        try withDaemon(["--monthly-budget", "2"]) { daemon in
            let result = try daemon.call("record", ["model": "x", "costUsd": 3])
            let alerts = try #require(result["alerts"]?.arrayValue)
            #expect(alerts.map { $0["level"] } == ["warning", "exceeded"])
            #expect(alerts.allSatisfy { $0["scope"] == "month" })
            #expect(alerts.first?["budgetUsd"]?.money == .dollars(2))
            #expect(alerts.first?["spentUsd"]?.money == .dollars(3))
        }
    }

    @Test func aLiteLLMPriceFileOverridesBuiltInPrices() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let file = daemon.writeFile(
            "prices.json",
            #"""
            {"sample_spec": {"input_cost_per_token": 1},
             "gpt-4o": {"input_cost_per_token": 5e-06, "output_cost_per_token": 1.5e-05, "litellm_provider": "openai"},
             "acme-7b": {"input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07,
                         "input_cost_per_token_batches": 5e-08, "output_cost_per_token_batches": 1e-07,
                         "cache_read_input_token_cost": 1e-08}}
            """#
        )
        try daemon.start(extraArguments: ["--prices", file])
        let connection = try daemon.connect()
        #expect(try connection.call("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 1_000])["costUsd"]?.money == Money(usd: "0.02"))
        #expect(try connection.call("record", ["model": "acme-7b", "inputTokens": 1_000_000, "outputTokens": 1_000_000])["costUsd"]?.money == Money(usd: "0.3"))
        #expect(try connection.call("record", ["model": "acme-7b", "inputTokens": 1_000_000, "outputTokens": 1_000_000, "batch": true])["costUsd"]?.money == Money(usd: "0.15"))
        #expect(try connection.call("record", ["model": "acme-7b", "inputTokens": 1_000_000, "outputTokens": 0, "cachedInputTokens": 1_000_000])["costUsd"]?.money == Money(usd: "0.01"))
        // Models the file does not name keep their built-in prices.
        #expect(try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000_000, "outputTokens": 0])["costUsd"]?.money == Money(usd: "0.15"))
    }

    @Test func aBrokenPriceFileStopsTheStartWithAReason() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let file = daemon.writeFile("prices.json", #"{"m": {"input_cost_per_token": "free"}}"#)
        let (status, output) = try daemon.startExpectingFailure(extraArguments: ["--prices", file])
        #expect(status != 0)
        #expect(output.contains("input_cost_per_token"))
    }

    @Test func everyAcknowledgedRecordSurvivesKill9() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start()
        // Phase 1: records from four connections, all acknowledged.
        let unit = Money(usd: "0.001")!
        let workers = 4
        let perWorker = 250
        let acknowledged = Counter()
        try runConcurrently(workers) { _ in
            let connection = try daemon.connect()
            for _ in 0..<perWorker {
                _ = try connection.call("record", ["model": "x", "costUsd": .number(JSONNumber(validatedLiteral: "0.001"))])
                acknowledged.add(1)
            }
        }
        #expect(acknowledged.value == workers * perWorker)
        daemon.killHard()
        try daemon.start()
        #expect(try daemon.call("report")["totalCostUsd"]?.money == unit * Int64(workers * perWorker))

        // Phase 2: kill -9 while records are in flight. Every acknowledged one must be there;
        // some sent but not acknowledged may be there too, never more than were sent.
        let sent = Counter()
        let acknowledgedInFlight = Counter()
        let pipeline = try daemon.connect()
        let reader = Thread {
            while (try? pipeline.receiveJSON()) != nil { acknowledgedInFlight.add(1) }
        }
        for _ in 0..<200 {
            try pipeline.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"model":"x","costUsd":0.001}}"#.utf8))
            sent.add(1)
        }
        reader.start()
        #expect(eventually { acknowledgedInFlight.value >= 50 })
        daemon.killHard()
        try daemon.start()
        let total = try #require(try daemon.call("report")["totalCostUsd"]?.money)
        let floor = unit * Int64(workers * perWorker + acknowledgedInFlight.value)
        let ceiling = unit * Int64(workers * perWorker + sent.value)
        #expect(total >= floor)
        #expect(total <= ceiling)
    }

    @Test func aRecordIdCountsOnceAcrossRetriesAndRestarts() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start()
        let params: JSONValue = ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 0, "recordId": "job-42"]
        let first = try daemon.call("record", params)
        #expect(first["recordId"] == "job-42")
        #expect(first["duplicate"] == nil)
        let second = try daemon.call("record", params)
        #expect(second["duplicate"] == true)
        #expect(second["costUsd"] == first["costUsd"])
        daemon.killHard()
        try daemon.start()
        #expect(try daemon.call("record", params)["duplicate"] == true)
        let report = try daemon.call("report")
        #expect(report["requests"]?.int == 1)
        #expect(report["totalCostUsd"]?.money == Money(usd: "0.0025"))
    }

    @Test func rememberedRecordIdsAreBoundedOldestForgottenFirst() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        // Room for three ids; a small compaction threshold so snapshots carry them too.
        let config = daemon.writeFile("costd.toml", "[ledger]\nrecord_id_capacity = 3\ncompact_after_bytes = 400\n")
        try daemon.start(extraArguments: ["--config", config])
        func record(_ id: String) throws -> Bool {
            let answer = try daemon.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000, "outputTokens": 0, "recordId": .string(id)])
            return answer["duplicate"] == true
        }
        for id in ["r1", "r2", "r3", "r4", "r5"] { #expect(try record(id) == false) }
        #expect(try record("r5") == true)
        #expect(try record("r1") == false, "the oldest id was forgotten and counts again")
        daemon.killHard()
        try daemon.start(extraArguments: ["--config", config])
        // Recovery remembers the same three: r4, r5 and the second r1.
        #expect(try record("r4") == true)
        #expect(try record("r1") == true)
        #expect(try record("r3") == false)
        #expect(try daemon.call("report")["requests"]?.int == 7)
        #expect(daemon.log.contains("forgotten early"))
    }

    @Test func theLedgerCompactsAndStillRecoversEverything() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        // A tiny compaction threshold: many snapshots and log generations in one run.
        let config = daemon.writeFile("costd.toml", "[ledger]\ncompact_after_bytes = 2000\n")
        try daemon.start(extraArguments: ["--config", config])
        let connection = try daemon.connect()
        for index in 0..<300 {
            _ = try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000, "outputTokens": 0, "user": .string("u\(index % 3)"), "recordId": .string("r\(index)")])
        }
        daemon.killHard()
        let files = try FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory)
        #expect(files.contains("snapshot.json"))
        #expect(files.filter { $0.hasPrefix("ledger-") }.count <= 2, "old logs are deleted: \(files)")
        try daemon.start(extraArguments: ["--config", config])
        let report = try daemon.call("report")
        #expect(report["requests"]?.int == 300)
        #expect(report["totalCostUsd"]?.money == Money(usd: "0.045"))
        #expect(report["byUser"]?["u0"]?["requests"]?.int == 100)
        // Record ids from before the snapshot are still remembered.
        #expect(try daemon.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000, "outputTokens": 0, "recordId": "r7"])["duplicate"] == true)
    }

    @Test func aTornLastEntryIsCutOff() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start()
        _ = try daemon.call("record", ["model": "x", "costUsd": 1])
        daemon.killHard()
        // Half an entry at the end, as a crash in the middle of a write would leave.
        let log = try #require(try FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory).first { $0.hasPrefix("ledger-") })
        let handle = try #require(FileHandle(forWritingAtPath: daemon.stateDirectory + "/" + log))
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 0, 200, 1, 2, 3, 4, 0x7B]))
        handle.closeFile()
        try daemon.start()
        #expect(try daemon.call("report")["totalCostUsd"]?.money == .dollars(1))
        _ = try daemon.call("record", ["model": "x", "costUsd": 1])
        daemon.killHard()
        try daemon.start()
        #expect(try daemon.call("report")["totalCostUsd"]?.money == .dollars(2))
        #expect(daemon.log.contains("Cut a torn entry"))
    }
}

/// A thread-safe counter for tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ value: Int) { lock.lock(); count += value; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Runs `body` on `count` threads at once and rethrows the first error.
func runConcurrently(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let group = DispatchGroup()
    let firstError = ErrorBox()
    for index in 0..<count {
        group.enter()
        Thread {
            defer { group.leave() }
            do { try body(index) } catch { firstError.set(error) }
        }.start()
    }
    group.wait()
    if let error = firstError.error { throw error }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: (any Error)?
    func set(_ error: any Error) {
        lock.lock()
        if self.error == nil { self.error = error }
        lock.unlock()
    }
}
