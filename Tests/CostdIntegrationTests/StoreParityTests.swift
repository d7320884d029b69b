import CostdCore
import CostdProtocol
import CostdRedis
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import CostdServer

/// The two stores of spend are two implementations of one contract: every scenario here runs
/// against the embedded store and against Redis (a real `redis-server`), through the engine
/// in-process on a manual clock, and must come out the same.
@Suite(.serialized, .timeLimit(.minutes(2))) struct StoreParityTests {
    enum Store: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case embedded
        case redis
        var testDescription: String { rawValue }
    }

    /// An engine on one store, with its clock in the test's hand.
    final class Subject {
        let time = ManualClock(wallMillis: 1_796_000_000_000)  // 2026-11-30 08:53:20 UTC
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let engine: CostdEngine
        let redis: TestRedis?
        let client: RedisClient?
        let directory = TestDaemon.makeTemporaryDirectory()
        let decoder = RPCMessageDecoder(limits: JSONParser.Limits(), maxBatchRequests: 10)

        init(_ store: Store, budget: BudgetSettings = BudgetSettings(), configure: (inout Configuration) -> Void = { _ in }) throws {
            var configuration = Configuration()
            configuration.budget = budget
            configure(&configuration)
            let logger = Logger(label: "parity")
            let ledger = try SpendLedger(directory: directory + "/state", settings: LedgerSettings(), clock: time.clock, logger: logger)
            if store == .redis {
                let redis = TestRedis()
                try redis.start()
                let client = RedisClient(settings: RedisSettings(endpoint: try RedisEndpoint(url: redis.url)), group: group, logger: logger)
                client.start()
                guard client.waitUntilAvailable(timeoutMillis: 5_000) else { throw TestDaemonError.notReady(log: redis.log) }
                (self.redis, self.client) = (redis, client)
            } else {
                (self.redis, self.client) = (nil, nil)
            }
            engine = try CostdEngine(
                rules: try Rules.load(configuration), ledger: ledger, redis: client,
                tokenizers: Tokenizers(dataDirectory: nil, logger: logger), clock: time.clock, logger: logger
            )
            if client != nil {
                // As the daemon's Redis connector does: spend goes to Redis once its policy and canary are checked.
                engine.redisBecameAvailable(on: group.next())
                guard engine.store.waitUntilReady(timeoutMillis: 5_000) else { throw TestDaemonError.notReady(log: redis?.log ?? "") }
            }
        }

        deinit {
            engine.close()
            try? group.syncShutdownGracefully()
            redis?.cleanUp()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// Calls a method on the engine's event loop; the whole answer (result or error).
        func call(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("jsonrpc", "2.0")
            writer.field("id", 1)
            writer.field("method", method)
            writer.field("params", params)
            writer.endObject()
            return try answer(decoder.decode(frame: ByteBuffer(bytes: writer.bytes)))
        }

        /// Sends calls as one JSON-RPC batch (one frame, so one event-loop turn); the answers by id.
        func batch(_ calls: [String]) throws -> [JSONValue] {
            let answers = try answer(decoder.decode(frame: ByteBuffer(string: "[" + calls.joined(separator: ",") + "]"))).arrayValue ?? []
            return answers.sorted { ($0["id"]?.int ?? 0) < ($1["id"]?.int ?? 0) }
        }

        /// Hands a decoded frame to the engine on its event loop, as the connection handler does,
        /// and waits for the answer.
        private func answer(_ message: RPCMessage) throws -> JSONValue {
            let loop = group.next()
            let engine = self.engine
            let body = try loop.submit { () -> EventLoopFuture<[UInt8]> in
                var writer = JSONWriter()
                // The caller a socket connection from this process would be (the daemon's own user).
                let caller = CallerIdentity(uid: geteuid(), pid: getpid(), userName: nil, unit: nil, gid: getegid())
                guard let deferred = engine.handle(message, caller: caller, on: loop, into: &writer) else {
                    return loop.makeSucceededFuture(writer.bytes)
                }
                let answer = loop.makePromise(of: [UInt8].self)
                deferred.result.whenComplete { answer.succeed(deferred.body(for: $0, logger: Logger(label: "parity"))) }
                return answer.futureResult
            }.flatMap { $0 }.wait()
            return try JSONParser.parse(body)
        }

        func result(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
            let answer = try call(method, params)
            return try #require(answer["result"], "\(method) failed: \(answer)")
        }

        func maintain() {
            let engine = self.engine
            let loop = group.next()
            try? loop.submit { engine.maintain(on: loop) }.wait()
        }
    }

    static func usd(_ text: String) -> JSONValue { .number(JSONNumber(validatedLiteral: text)) }

    static func alerts(_ receipt: JSONValue) -> [String] {
        (receipt["alerts"]?.arrayValue ?? []).compactMap { alert in
            guard let scope = alert["scope"]?.stringValue, let level = alert["level"]?.stringValue else { return nil }
            return scope + ":" + level
        }
    }

    @Test(arguments: Store.allCases) func eachAlertFiresOncePerPeriodAndLevel(_ store: Store) throws {
        let subject = try Subject(store, budget: BudgetSettings(daily: .dollars(1), monthly: .dollars(100)))
        let spends = ["0.5", "0.3", "0.1", "0.15", "0.1"]
        var fired: [[String]] = []
        for spend in spends {
            fired.append(Self.alerts(try subject.result("record", ["model": "m", "costUsd": Self.usd(spend)])))
        }
        #expect(fired == [[], ["day:warning"], [], ["day:exceeded"], []])
        // The next day is a new period: its warning fires again.
        subject.time.advance(millis: 86_400_000)
        #expect(Self.alerts(try subject.result("record", ["model": "m", "costUsd": Self.usd("0.9")])) == ["day:warning"])
    }

    @Test(arguments: Store.allCases) func aDuplicateRecordIdCountsOnceAndAnswersAsTheFirst(_ store: Store) throws {
        let subject = try Subject(store)
        let first = try subject.result("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500, "recordId": "job-7"])
        let again = try subject.result("record", ["model": "gpt-4o", "inputTokens": 9_999, "outputTokens": 9_999, "recordId": "job-7"])
        #expect(first["duplicate"] == nil)
        #expect(again["duplicate"] == true)
        #expect(again["costUsd"]?.money == first["costUsd"]?.money)
        let report = try subject.result("report")
        #expect(report["requests"]?.int == 1)
        #expect(report["totalCostUsd"]?.money == Money(usd: "0.0075"))
    }

    @Test(arguments: Store.allCases) func reservationsAreSettledReleasedAndExpired(_ store: Store) throws {
        let subject = try Subject(store, budget: BudgetSettings(daily: .dollars(1), hardDaily: true))
        // gpt-4o: 100k in + 50k out at most = $0.75 held.
        let worstCase: JSONValue = ["model": "gpt-4o", "inputTokens": 100_000, "maxOutputTokens": 50_000, "ttl": 60]
        let held = try subject.result("reserve", worstCase)
        #expect(held["amountUsd"]?.money == Money(usd: "0.75"))
        #expect(try subject.result("report")["reservedUsd"]?.money == Money(usd: "0.75"))
        #expect(try subject.call("reserve", worstCase).errorCode == -32000, "$0.75 more does not fit in $1")
        // Settled: the call used 100k in + 25k out = $0.50.
        _ = try subject.result(
            "record", ["model": "gpt-4o", "inputTokens": 100_000, "outputTokens": 25_000, "reservation": try #require(held["reservation"])])
        #expect(try subject.result("report")["reservedUsd"] == nil)
        // Released: the money comes back at once. gpt-4o: 40k in + 10k out = $0.20.
        let small: JSONValue = ["model": "gpt-4o", "inputTokens": 40_000, "maxOutputTokens": 10_000, "ttl": 60]
        let second = try subject.result("reserve", small)
        #expect(try subject.result("report")["reservedUsd"]?.money == Money(usd: "0.2"))
        let released = try subject.result("releaseReservation", ["reservation": try #require(second["reservation"])])
        let releasedAgain = try subject.result("releaseReservation", ["reservation": try #require(second["reservation"])])
        #expect(released["released"] == true)
        #expect(releasedAgain["released"] == false)
        #expect(try subject.result("report")["reservedUsd"] == nil)
        // Expired: after its TTL the money is free again.
        let third = try subject.result("reserve", ["model": "gpt-4o", "inputTokens": 100_000, "maxOutputTokens": 25_000, "ttl": 60])
        #expect(third["amountUsd"]?.money == Money(usd: "0.5"))
        #expect(try subject.call("reserve", small).errorCode == -32000, "$0.50 spent + $0.50 held: nothing fits")
        subject.time.advance(millis: 60_001)
        #expect(try subject.call("reserve", small)["result"]?["reservation"] != nil, "the expired reservation gave its money back")
    }

    @Test(arguments: Store.allCases) func budgetPressureRoutesDown(_ store: Store) throws {
        let subject = try Subject(store, budget: BudgetSettings(daily: Money(usd: "0.01")))
        _ = try subject.result("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500])
        #expect(try subject.result("route", ["task": "summarization"])["reason"] == "default", "75 % of the budget")
        _ = try subject.result("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500])
        let routed = try subject.result("route", ["task": "summarization"])
        #expect(routed["reason"] == "budget")
        #expect(routed["tier"] == "simple")
    }

    @Test(arguments: Store.allCases) func reportsAddUpWithTheirBreakdowns(_ store: Store) throws {
        let subject = try Subject(store)
        _ = try subject.result("record", ["model": "gpt-4o", "inputTokens": 1_000_000, "outputTokens": 0, "user": "ann", "feature": "search"])
        _ = try subject.result("record", ["model": "gpt-4o-mini", "inputTokens": 1_000_000, "outputTokens": 1_000, "user": "bob", "feature": "search"])
        _ = try subject.result("record", ["model": "gpt-4o", "costUsd": Self.usd("0.01"), "cached": true, "user": "ann"])
        let report = try subject.result("report")
        #expect(report["totalCostUsd"]?.money == Money(usd: "2.6506"))
        #expect(report["requests"]?.int == 2)
        #expect(report["cachedRequests"]?.int == 1)
        #expect(report["inputTokens"]?.int == 2_000_000)
        #expect(report["outputTokens"]?.int == 1_000)
        #expect(report["byUser"]?["ann"]?["costUsd"]?.money == Money(usd: "2.5"))
        #expect(report["byUser"]?["bob"]?["costUsd"]?.money == Money(usd: "0.1506"))
        #expect(report["byFeature"]?["search"]?["requests"]?.int == 2)
        #expect(report["byModel"]?["gpt-4o-mini"]?["inputTokens"]?.int == 1_000_000)
        #expect(report["cache"]?["savedUsd"]?.money == Money(usd: "0.01"))
        // The month holds the day.
        #expect(try subject.result("report", ["period": "month"])["totalCostUsd"]?.money == Money(usd: "2.6506"))
    }

    @Test(arguments: Store.allCases) func recordsAreDatedByTheEnginesClockAcrossADayBoundary(_ store: Store) throws {
        let subject = try Subject(store)
        // 2026-11-30 23:59:59.500 UTC.
        subject.time.advance(millis: 1_796_083_199_500 - subject.time.clock.nowMillis)
        let first = try subject.result("record", ["model": "gpt-4o", "costUsd": 1])
        subject.time.advance(millis: 500)
        let second = try subject.result("record", ["model": "gpt-4o", "costUsd": 2])
        #expect(first["day"]?["spentUsd"]?.money == .dollars(1))
        #expect(second["day"]?["spentUsd"]?.money == .dollars(2), "a new day starts from zero")
        #expect(second["month"]?["spentUsd"]?.money == .dollars(2), "and so does December")
        #expect(try subject.result("report", ["date": "2026-11-30"])["totalCostUsd"]?.money == .dollars(1))
        #expect(try subject.result("report", ["period": "month"])["totalCostUsd"]?.money == .dollars(2))
    }

    /// A JSON-RPC batch lands in one event-loop turn: with Redis its records go in one script run.
    /// Counted the same as one by one: a repeated id once, each alert at the record that crossed.
    @Test(arguments: Store.allCases) func recordsOfOneTurnCountAsOneByOne(_ store: Store) throws {
        let subject = try Subject(store, budget: BudgetSettings(daily: .dollars(1)))
        var calls: [String] = []
        for (index, spend) in ["0.5", "0.3", "0.3", "0.1", "0.2"].enumerated() {
            let id = index == 2 ? "twice" : (index == 1 ? "twice" : "r\(index)")
            calls.append(#"{"jsonrpc":"2.0","id":\#(index),"method":"record","params":{"model":"m","costUsd":\#(spend),"recordId":"\#(id)","user":"u\#(index % 2)"}}"#)
        }
        let answers = try subject.batch(calls)
        #expect(answers.count == 5)
        let receipts = answers.compactMap { $0["result"] }
        #expect(receipts.count == 5)
        // A duplicate answers as the first, alerts included (they are not fired again).
        #expect(receipts.map { Self.alerts($0) } == [[], ["day:warning"], ["day:warning"], [], ["day:exceeded"]])
        #expect(receipts[2]["duplicate"] == true, "the same id again in the same turn")
        #expect(receipts.map { $0["day"]?["spentUsd"]?.money } == ["0.5", "0.8", "0.8", "0.9", "1.1"].map { Money(usd: $0) })
        let report = try subject.result("report")
        #expect(report["totalCostUsd"]?.money == Money(usd: "1.1"))
        #expect(report["requests"]?.int == 4)
        #expect(report["byUser"]?["u0"]?["costUsd"]?.money == Money(usd: "0.7"))
    }

    /// Spend keys carry no TTL, so no eviction policy can pick them; periods past the horizons
    /// (400 days, 800 for months) are deleted by name, hourly.
    @Test func spendKeysCarryNoTTLAndOldPeriodsAreDeletedHourly() throws {
        let subject = try Subject(.redis, budget: BudgetSettings(daily: .dollars(1)))
        let redis = subject.redis!
        func cli(_ arguments: String...) throws -> String {
            try redis.cli(arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try subject.result("record", ["model": "m", "costUsd": Self.usd("0.9")])
        for key in ["costd:{s}:d:2026-11-30", "costd:{s}:m:2026-11", "costd:{s}:a:day:2026-11-30:warning", "costd:{s}:epoch"] {
            #expect(try cli("TTL", key) == "-1", "\(key) carries no TTL")
        }
        // Today is 2026-11-30: 2025-10-20 is 406 days back, 2025-12-01 364; August 2024 ended over
        // 800 days back, September 2024 did not.
        let old = ["costd:{s}:d:2025-10-20", "costd:{s}:a:day:2025-10-20:exceeded", "costd:{s}:m:2024-08", "costd:{s}:a:month:2024-08:warning"]
        let kept = ["costd:{s}:d:2025-12-01", "costd:{s}:m:2024-09"]
        func plant() throws { for key in old + kept { _ = try cli("SET", key, "1") } }
        func exists(_ keys: [String]) throws -> Int { try keys.reduce(0) { try $0 + (Int(cli("EXISTS", $1)) ?? 0) } }
        try plant()
        subject.maintain()
        #expect(try eventually { try exists(old) == 0 })
        #expect(try exists(kept) == kept.count)
        try plant()
        subject.time.advance(millis: 3_599_000)
        subject.maintain()
        subject.maintain()
        // One event loop, one connection: once a report has come back through it, any UNLINK the
        // upkeep sent before has run.
        _ = try subject.result("report")
        #expect(try exists(old) == old.count, "not again within the hour")
        subject.time.advance(millis: 1_000)
        subject.maintain()
        #expect(try eventually { try exists(old) == 0 })
        #expect(try exists(kept) == kept.count)
    }

    /// Only Redis has a backlog: records acknowledged while it is down, replayed when it is back,
    /// each counted once.
    @Test func theBacklogIsReplayedExactlyOnce() throws {
        let subject = try Subject(.redis)
        _ = try subject.result("record", ["model": "m", "costUsd": Self.usd("1"), "recordId": "before"])
        subject.redis!.killHard()
        #expect(try subject.result("record", ["model": "m", "costUsd": Self.usd("2"), "recordId": "during"])["backlogged"] == true)
        #expect(try subject.result("record", ["model": "m", "costUsd": Self.usd("2"), "recordId": "during"])["backlogged"] == true)
        try subject.redis!.start()
        #expect(subject.client!.waitUntilAvailable(timeoutMillis: 10_000))
        #expect(eventually {
            subject.maintain()
            return subject.engine.store.status.backlog == 0
        })
        let report = try subject.result("report")
        #expect(report["totalCostUsd"]?.money == .dollars(3))
        #expect(report["requests"]?.int == 2)
    }
}
