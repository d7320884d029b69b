import CostdClient
import CostdCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if try condition() { return true }
        usleep(20_000)
    } while Date() < deadline
    return false
}

/// Daemons sharing a real redis-server: one cache, one budget.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RedisTests {
    /// Starts `count` daemons on `redis`, each with its own socket and ledger.
    func daemons(_ count: Int, on redis: TestRedis, config: String? = nil, arguments: [String] = []) throws -> [TestDaemon] {
        var started: [TestDaemon] = []
        for _ in 0..<count {
            let daemon = TestDaemon(arguments: ["--redis", redis.url] + arguments)
            started.append(daemon)
            var extra: [String] = []
            if let config { extra = ["--config", daemon.writeFile("costd.toml", config)] }
            try daemon.start(extraArguments: extra)
        }
        return started
    }

    @Test func twoDaemonsShareCacheEntriesAndOneBudget() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis, arguments: ["--daily-budget", "10"])
            defer { pair.forEach { $0.cleanUp() } }
            let (a, b) = (try pair[0].connect(), try pair[1].connect())
            #expect(try a.call("ping")["store"] == "redis")
            #expect(try a.call("ping")["redis"]?["state"] == "up")
            _ = try a.call("cacheSet", ["model": "gpt-4o", "prompt": ["q": "shared?"], "value": ["text": "yes"]])
            let fromB = try b.call("cacheGet", ["model": "gpt-4o", "prompt": ["q": "shared?"]])
            #expect(fromB["hit"] == true)
            #expect(fromB["layer"] == "l2")
            #expect(fromB["value"] == ["text": "yes"])
            #expect(try b.call("cacheGet", ["model": "gpt-4o", "prompt": ["q": "shared?"]])["layer"] == "l1")

            _ = try a.call("record", ["model": "gpt-4o", "inputTokens": 1_000_000, "outputTokens": 0, "user": "ann"])
            let second = try b.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000_000, "outputTokens": 0, "user": "bob"])
            #expect(second["day"]?["spentUsd"]?.money == Money(usd: "2.65"))
            for connection in [a, b] {
                let report = try connection.call("report")
                #expect(report["totalCostUsd"]?.money == Money(usd: "2.65"))
                #expect(report["requests"]?.int == 2)
                #expect(report["byUser"]?["ann"]?["costUsd"]?.money == Money(usd: "2.5"))
                #expect(report["byModel"]?["gpt-4o-mini"]?["costUsd"]?.money == Money(usd: "0.15"))
                #expect(report["redis"]?["state"] == "up")
            }
            // Both daemons' lookups add up in the fleet counters.
            #expect(try eventually { try a.call("report")["cache"]?["fleet"]?["hits"]?.int == 2 })
            #expect(try a.call("report")["cache"]?["fleet"]?["byModel"]?["gpt-4o"]?["l2Hits"]?.int == 1)
            // This daemon's own counters: none of the hits were A's.
            #expect(try a.call("report")["cache"]?["hits"]?.int == 0)
            #expect(try b.call("report")["cache"]?["hits"]?.int == 2)
        }
    }

    @Test func eachAlertFiresExactlyOnceAcrossDaemonsUnderLoad() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis, arguments: ["--daily-budget", "1", "--monthly-budget", "1000"])
            defer { pair.forEach { $0.cleanUp() } }
            let alerts = Collector<String>()
            // 8 clients, 4 per daemon, 25 records of $0.01 each: $2 in all, past both thresholds.
            try runConcurrently(8) { index in
                let connection = try pair[index % 2].connect()
                for _ in 0..<25 {
                    let result = try connection.call("record", ["model": "x", "costUsd": .number(JSONNumber(validatedLiteral: "0.01"))])
                    for alert in result["alerts"]?.arrayValue ?? [] {
                        alerts.add("\(alert["scope"]?.stringValue ?? "")/\(alert["level"]?.stringValue ?? "")")
                    }
                }
            }
            #expect(alerts.values.sorted() == ["day/exceeded", "day/warning"])
            #expect(try pair[0].call("report")["totalCostUsd"]?.money == .dollars(2))
            #expect(pair.map(\.log).joined().components(separatedBy: "Budget warning").count - 1 == 1)
        }
    }

    @Test func aHardBudgetHoldsAgainstEightConcurrentClients() throws {
        try withRedis { redis in
            let config = "[budget]\ndaily = 1\nhard_daily = true\n"
            let pair = try daemons(2, on: redis, config: config)
            defer { pair.forEach { $0.cleanUp() } }
            let refused = Counter()
            let granted = Counter()
            try runConcurrently(8) { index in
                let connection = try pair[index % 2].connect()
                while true {
                    // Worst case: 10k in + 2k out of gpt-4o = $0.045; the call really uses 1k out ($0.035).
                    do {
                        let grant = try connection.call("reserve", ["model": "gpt-4o", "inputTokens": 10_000, "maxOutputTokens": 2_000])
                        granted.add(1)
                        _ = try connection.call(
                            "record",
                            ["model": "gpt-4o", "inputTokens": 10_000, "outputTokens": 1_000, "reservation": try #require(grant["reservation"])]
                        )
                    } catch ClientError.rpc(let code, _, _) where code == -32000 {
                        refused.add(1)
                        return
                    }
                }
            }
            let total = try #require(try pair[0].call("report")["totalCostUsd"]?.money)
            #expect(total <= .dollars(1))
            #expect(total == Money(usd: "0.035")! * Int64(granted.value))
            #expect(refused.value == 8)
            // Nearly all of the budget was usable: at most one worst case short of the limit.
            #expect(total > .dollars(1) - Money(usd: "0.045")! - Money(usd: "0.035")!)
            // route takes reservations too, and refuses once nothing fits.
            let code = rpcErrorCode { try pair[1].call("route", ["task": "reasoning", "inputTokens": 10_000_000]) }
            #expect(code == -32000)
        }
    }

    @Test func redisStoppedMidLoadLosesNoRecordAndCountsNoneTwice() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let acknowledged = Counter()
            let backlogged = Counter()
            let stop = Counter()
            let finished = Counter()
            let writers = Thread {
                defer { finished.add(1) }
                try? runConcurrently(4) { index in
                    let connection = try pair[index % 2].connect()
                    while stop.value == 0 {
                        let result = try connection.call("record", ["model": "x", "costUsd": .number(JSONNumber(validatedLiteral: "0.001"))])
                        acknowledged.add(1)
                        if result["backlogged"] == true { backlogged.add(1) }
                    }
                }
            }
            writers.start()
            #expect(eventually { acknowledged.value > 200 })
            redis.killHard()
            #expect(eventually { backlogged.value > 50 })
            try redis.start()
            let before = acknowledged.value
            #expect(eventually { acknowledged.value > before + 200 })
            stop.add(1)
            #expect(eventually { finished.value == 1 })
            let expected = Money(usd: "0.001")! * Int64(acknowledged.value)
            #expect(try eventually(20) {
                try pair.allSatisfy { try $0.call("ping")["redis"]?["backlog"]?.int == 0 }
            })
            let total = try pair[1].call("report")["totalCostUsd"]?.money
            #expect(total == expected, "acknowledged \(acknowledged.value) records, \(backlogged.value) through the backlog")
        }
    }

    @Test func aReservationRecordedIntoTheBacklogIsSettledWhenReplayed() throws {
        try withRedis { redis in
            let daemon = try daemons(1, on: redis, config: "[budget]\ndaily = 10\nhard_daily = true\n")[0]
            defer { daemon.cleanUp() }
            let connection = try daemon.connect()
            // Worst case: 10k in + 2k out of gpt-4o = $0.045 held; the call really uses 1k out ($0.035).
            let grant = try connection.call("reserve", ["model": "gpt-4o", "inputTokens": 10_000, "maxOutputTokens": 2_000])
            #expect(try connection.call("report")["reservedUsd"]?.money == Money(usd: "0.045"))
            redis.killHard()
            let recorded = try connection.call(
                "record", ["model": "gpt-4o", "inputTokens": 10_000, "outputTokens": 1_000, "reservation": try #require(grant["reservation"])]
            )
            #expect(recorded["backlogged"] == true)
            try redis.start()
            #expect(try eventually(20) { try connection.call("ping")["redis"]?["backlog"]?.int == 0 })
            let report = try connection.call("report")
            #expect(report["reservedUsd"] == nil, "the reservation is settled, not left to expire")
            #expect(report["totalCostUsd"]?.money == Money(usd: "0.035"))
            #expect(report["requests"]?.int == 1)
            // Settled means gone from Redis too: a second settle finds nothing to release.
            let released = try connection.call("releaseReservation", ["reservation": try #require(grant["reservation"])])
            #expect(released["released"] == false)
        }
    }

    /// AUTH and SELECT go out on every connection Redis accepts; a refused password leaves Redis
    /// down with the reason, and the daemon on its backlog.
    @Test func aPasswordAndADatabaseAreAppliedOnEveryConnection() throws {
        let redis = TestRedis()
        redis.extraArguments = ["--requirepass", "s3cret"]
        defer { redis.cleanUp() }
        try redis.start()
        let daemon = TestDaemon(arguments: ["--redis", redis.url + "?db=2"])
        daemon.environment = ["COSTD_REDIS_PASSWORD": "s3cret"]
        defer { daemon.cleanUp() }
        try daemon.start()
        #expect(try eventually { try daemon.call("ping")["redis"]?["state"] == "up" })
        #expect(try daemon.call("record", ["model": "m", "costUsd": 1])["backlogged"] == nil)
        #expect(try redis.cli("-a", "s3cret", "--no-auth-warning", "-n", "2", "EXISTS", "costd:{s}:m:" + PeriodCalendar.monthKey(ofDay: try #require(daemon.call("report")["date"]?.stringValue))).hasPrefix("1"))
        #expect(try redis.cli("-a", "s3cret", "--no-auth-warning", "-n", "0", "DBSIZE").hasPrefix("0"), "nothing in db 0")

        let refused = TestDaemon(arguments: ["--redis", redis.url])
        refused.environment = ["COSTD_REDIS_PASSWORD": "wrong"]
        defer { refused.cleanUp() }
        try refused.start()
        let status = try refused.call("ping")["redis"]
        #expect(status?["state"] == "down")
        let reason = status?["lastError"]?.stringValue ?? ""
        #expect(reason.contains("WRONGPASS") || reason.contains("invalid password"), "\(reason)")
        #expect(try refused.call("record", ["model": "m", "costUsd": 1])["backlogged"] == true)
    }

    @Test func cacheCallsKeepAnsweringFromL1WhileRedisIsDown() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let (a, b) = (try pair[0].connect(), try pair[1].connect())
            _ = try a.call("cacheSet", ["model": "m", "prompt": "p", "value": "v"])
            redis.killHard()
            #expect(try a.call("cacheGet", ["model": "m", "prompt": "p"])["layer"] == "l1")
            #expect(try b.call("cacheGet", ["model": "m", "prompt": "p"])["hit"] == false)
            let stored = try b.call("cacheSet", ["model": "m", "prompt": "q", "value": "w"])
            #expect(stored["stored"] == true)
            #expect(stored["shared"] == false)
            #expect(try b.call("cacheGet", ["model": "m", "prompt": "q"])["layer"] == "l1")
            #expect(try b.call("ping")["redis"]?["state"] == "down")
            // Paused rather than dead: calls still answer instead of hanging.
            try redis.start()
            #expect(try eventually { try b.call("ping")["redis"]?["state"] == "up" })
            redis.pause()
            defer { redis.resume() }
            let started = Date()
            for index in 0..<20 {
                let answer = try b.call("cacheGet", ["model": "m", "prompt": .int(index)])
                #expect(answer["hit"] == false)
            }
            #expect(Date().timeIntervalSince(started) < 10, "cache calls must not hang on a paused Redis")
            #expect(try b.call("ping")["pong"] == true)
        }
    }

    @Test func aFlushOrDeleteOnOneDaemonDropsTheEntryFromTheOthersL1() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let (a, b) = (try pair[0].connect(), try pair[1].connect())
            for prompt in ["p1", "p2"] {
                _ = try a.call("cacheSet", ["model": "m", "prompt": .string(prompt), "value": "v", "namespace": "ns"])
                _ = try b.call("cacheGet", ["model": "m", "prompt": .string(prompt), "namespace": "ns"])
                #expect(try b.call("cacheGet", ["model": "m", "prompt": .string(prompt), "namespace": "ns"])["layer"] == "l1")
            }
            #expect(try a.call("cacheDelete", ["model": "m", "prompt": "p1", "namespace": "ns"])["deleted"] == true)
            #expect(try eventually(1) { try b.call("cacheGet", ["model": "m", "prompt": "p1", "namespace": "ns"])["hit"] == false })
            let flushed = try a.call("cacheFlush", ["namespace": "ns"])
            #expect(flushed["flushed"]?.int == 1)
            #expect(try eventually(1) { try b.call("cacheGet", ["model": "m", "prompt": "p2", "namespace": "ns"])["hit"] == false })
        }
    }

    @Test func l1NeverOutlivesTheRedisTTL() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let (a, b) = (try pair[0].connect(), try pair[1].connect())
            _ = try a.call("cacheSet", ["model": "m", "prompt": "p", "value": "v", "ttl": .number(JSONNumber(validatedLiteral: "0.8"))])
            #expect(try b.call("cacheGet", ["model": "m", "prompt": "p"])["layer"] == "l2")
            #expect(try b.call("cacheGet", ["model": "m", "prompt": "p"])["layer"] == "l1")
            // Redis expires the key on its own clock: wait for it (and for b's L1, which was
            // given the key's remaining TTL).
            #expect(try eventually(5) { try b.call("cacheGet", ["model": "m", "prompt": "p"])["hit"] == false })
            #expect(try a.call("cacheGet", ["model": "m", "prompt": "p"])["hit"] == false)
        }
    }

    @Test func singleFlightAcrossDaemons() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let holder = try pair[0].connect()
            let first = try holder.call("cacheGet", ["model": "m", "prompt": "expensive", "lease": true])
            #expect(first["hit"] == false)
            let lease = try #require(first["lease"])
            // Three callers on the other daemon wait for the leaseholder instead of calling the LLM.
            let answers = Collector<JSONValue>()
            let waiters = Thread {
                try? runConcurrently(3) { _ in
                    let connection = try pair[1].connect()
                    answers.add(try connection.call("cacheGet", ["model": "m", "prompt": "expensive", "lease": true, "waitMs": 10_000]))
                }
            }
            waiters.start()
            #expect(try eventually { try pair[1].call("report")["cache"]?["waiting"]?.int == 3 })
            let filled = try holder.call("cacheSet", ["model": "m", "prompt": "expensive", "value": "answer", "lease": lease])
            #expect(filled["leaseHeld"] == true)
            #expect(eventually { answers.values.count == 3 })
            for answer in answers.values {
                #expect(answer["hit"] == true)
                #expect(answer["layer"] == "fill")
                #expect(answer["value"] == "answer")
            }
            #expect(try eventually { try pair[1].call("report")["cache"]?["savedCalls"]?.int == 3 })
        }
    }

    @Test func aReleasedOrExpiredLeaseDoesNotBlockOthers() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis, config: "[cache]\nlease_ttl = 1\n")
            defer { pair.forEach { $0.cleanUp() } }
            let (a, b) = (try pair[0].connect(), try pair[1].connect())
            let lease = try #require(try a.call("cacheGet", ["model": "m", "prompt": "x", "lease": true])["lease"])
            // Released: the waiter takes the lease at once.
            let waiter = Collector<JSONValue>()
            let thread = Thread { waiter.add((try? b.call("cacheGet", ["model": "m", "prompt": "x", "lease": true, "waitMs": 20_000])) ?? nil) }
            thread.start()
            #expect(try eventually { try pair[1].call("report")["cache"]?["waiting"]?.int == 1 })
            #expect(try a.call("cacheRelease", ["model": "m", "prompt": "x", "lease": lease])["released"] == true)
            #expect(eventually(5) { waiter.values.count == 1 })
            #expect(waiter.values.first?["lease"]?.stringValue != nil)
            // Expired (the holder crashed): after the lease TTL a waiter gets it.
            _ = try a.call("cacheGet", ["model": "m", "prompt": "y", "lease": true])
            let late = try b.call("cacheGet", ["model": "m", "prompt": "y", "lease": true, "waitMs": 2_500])
            #expect(late["lease"]?.stringValue != nil)
        }
    }

    @Test func aRecordIdCountsOnceWithRedis() throws {
        try withRedis { redis in
            let pair = try daemons(2, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            let params: JSONValue = ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 0, "recordId": "same"]
            #expect(try pair[0].call("record", params)["duplicate"] == nil)
            #expect(try pair[1].call("record", params)["duplicate"] == true)
            #expect(try pair[0].call("record", params)["duplicate"] == true)
            let report = try pair[0].call("report")
            #expect(report["requests"]?.int == 1)
            #expect(report["totalCostUsd"]?.money == Money(usd: "0.0025"))
        }
    }

    @Test func monthAndPastReportsReadRedis() throws {
        try withRedis { redis in
            let pair = try daemons(1, on: redis)
            defer { pair.forEach { $0.cleanUp() } }
            _ = try pair[0].call("record", ["model": "x", "costUsd": 2])
            let month = try pair[0].call("report", ["period": "month", "days": 5])
            #expect(month["totalCostUsd"]?.money == .dollars(2))
            #expect(month["daily"]?.arrayValue?.last?["costUsd"]?.money == .dollars(2))
            #expect(try pair[0].call("report", ["date": "2021-03-04"])["totalCostUsd"]?.money == .zero)
        }
    }
}

/// Collects values from several threads.
final class Collector<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Value] = []
    func add(_ value: Value) { lock.lock(); items.append(value); lock.unlock() }
    var values: [Value] { lock.lock(); defer { lock.unlock() }; return items }
}
