import CostdCore
import Testing

@testable import CostdRedis

/// The typed script calls: named keys and arguments in the order their Lua reads them, and
/// replies parsed in one place.
@Suite("Redis script calls")
struct RedisScriptCallTests {
    static let keys = RedisKeys(prefix: "p:")
    static let settings = RedisSettings(endpoint: RedisEndpoint(address: .unix(path: "/r.sock")))

    static func text(_ command: RedisCommand) -> [String] { command.map { String(decoding: $0, as: UTF8.self) } }

    @Test func aBatchOfRecordsIsOneEvalshaWithKeysAndArgumentsInTheScriptsOrder() {
        let ann = SpendScope([.user: "ann"])
        let budget = BudgetSettings(daily: .dollars(10), scoped: [ScopedBudget(scope: ann, daily: .dollars(2))])
        let first = SpendRecord(
            recordId: "r1", unixMillis: 0, day: "2026-11-30", model: "gpt-4o", user: "ann", feature: nil, unit: "etl.service",
            cost: Money(nanos: 7_500_000), inputTokens: 1_000, outputTokens: 500, routingSaved: Money(nanos: 42), budgets: [ann.key]
        )
        let second = SpendRecord(recordId: "r2", unixMillis: 0, day: "2026-11-30", model: "m", cost: Money(nanos: 5), cached: true)
        let call = RecordBatchScript(records: [
            .init(record: first, reservation: "rsv-1", budget: budget, epoch: "e1", settings: Self.settings, keys: Self.keys),
            .init(record: second, reservation: nil, budget: budget, epoch: "e1", settings: Self.settings, keys: Self.keys),
        ])
        let command = Self.text(call.command)
        #expect(Array(command[0...2]) == ["EVALSHA", RecordBatchScript.script.sha1, "15"])
        #expect(Array(command[3...17]) == [
            "p:{s}:d:2026-11-30", "p:{s}:m:2026-11",
            "p:{s}:a:day:2026-11-30:warning", "p:{s}:a:day:2026-11-30:exceeded",
            "p:{s}:a:month:2026-11:warning", "p:{s}:a:month:2026-11:exceeded",
            "p:{s}:rsv:amt", "p:{s}:rsv:exp", "p:{s}:rsv:tot", "p:{s}:epoch", "p:{s}:ab:2026-11-30", "p:{s}:ab:2026-11",
            "p:{s}:alerts", "p:{s}:rec:r1", "p:{s}:rec:r2",
        ])
        let annField = "b\u{1F}{\"user\":\"ann\"}"
        #expect(Array(command[18...]) == [
            "604800", "e1", "8000000000", "10000000000", "-1", "-1",
            "7500000", "0", "rsv-1", "1000", "500", "0", "42", "4", "1", "0",
            "m\u{1F}gpt-4o", "u\u{1F}ann", "x\u{1F}etl.service", annField,
            annField + "\u{1F}cost", "{\"user\":\"ann\"}\u{1F}warning", "{\"user\":\"ann\"}\u{1F}exceeded",
            "1600000000", "2000000000", "-1", "-1", "{\"user\":\"ann\"}",
            "5", "1", "", "0", "0", "0", "0", "1", "0", "0", "m\u{1F}m",
        ])
    }

    @Test func recordBatchesKeepOrderAndSplitAtADayABudgetOrACanaryToken() {
        func record(_ id: String, _ day: String, daily: Int64 = 10, epoch: String = "e1") -> RecordBatchScript.Record {
            .init(
                record: SpendRecord(recordId: id, unixMillis: 0, day: day, model: "m", cost: .zero), reservation: nil,
                budget: BudgetSettings(daily: .dollars(daily)), epoch: epoch, settings: Self.settings, keys: Self.keys)
        }
        let records = [
            record("a", "2026-11-30"), record("b", "2026-11-30"), record("c", "2026-12-01"), record("d", "2026-12-01", daily: 20),
            record("e", "2026-12-01", daily: 20, epoch: "e2"),
        ]
        let batches = RecordBatchScript.batches(of: records) { $0 }
        #expect(batches.map { $0.map(\.recordId) } == [["a", "b"], ["c"], ["d"], ["e"]])
    }

    @Test func recordRepliesAreParsed() throws {
        let replies = try RecordBatchScript.parse(.array([
            .array([.integer(0), .string(Array("7500000|8100000000|9000000000|day:warning,month:exceeded".utf8))]),
            .array([.integer(1), .string(Array("1|2|3|".utf8))]),
        ]))
        #expect(replies.count == 2)
        let fresh = replies[0]
        #expect(!fresh.duplicate)
        #expect(fresh.cost == Money(nanos: 7_500_000))
        #expect(fresh.daySpent == Money(usd: "8.1"))
        #expect(fresh.alerts.map { "\($0.0.rawValue):\($0.1.rawValue)" } == ["day:warning", "month:exceeded"])
        #expect(replies[1].duplicate)
        #expect(throws: RedisScriptError.self) { try RecordBatchScript.parse(.error("ERR boom")) }
        #expect(throws: RedisScriptError.self) { try RecordBatchScript.parse(.array([.array([.integer(0), .string(Array("1|2".utf8))])])) }
    }

    @Test func reserveRepliesAreGrantsOrRefusals() throws {
        let granted = try ReserveScript.parse(.array([.integer(1), .string(Array("1".utf8)), .string(Array("2".utf8)), .string(Array("3".utf8)), .string(Array("4".utf8))]))
        #expect(granted == .granted(daySpent: Money(nanos: 1), dayReserved: Money(nanos: 2), monthSpent: Money(nanos: 3), monthReserved: Money(nanos: 4)))
        let refused = try ReserveScript.parse(.array([.integer(0), .string(Array("month".utf8)), .string(Array("5".utf8)), .string(Array("6".utf8))]))
        #expect(refused == .refused(scope: .month, spent: Money(nanos: 5), reserved: Money(nanos: 6), budget: nil))
        let scoped = try ReserveScript.parse(
            .array([.integer(0), .string(Array("day".utf8)), .string(Array("5".utf8)), .string(Array("6".utf8)), .integer(2)]))
        #expect(scoped == .refused(scope: .day, spent: Money(nanos: 5), reserved: Money(nanos: 6), budget: 1))
        #expect(throws: RedisScriptError.self) { try ReserveScript.parse(.array([.integer(0), .string(Array("week".utf8))])) }
    }

    @Test func aRestoreSendsEachHashsIncrementsThenTheAlertFlags() throws {
        let call = RestoreSpendScript(
            knownEpoch: nil, newEpoch: "new", daemonId: "d1",
            hashes: [
                .init(key: Self.keys.day("2026-11-30"), fields: [("spent", 5), ("n", 1)]),
                .init(key: Self.keys.month("2026-11"), fields: [("spent", 5)]),
            ],
            alertKeys: [Self.keys.alert(.day, "2026-11-30", .warning)], keys: Self.keys
        )
        #expect(Self.text(call.command) == [
            "EVALSHA", RestoreSpendScript.script.sha1, "5",
            "p:{s}:epoch", "p:{s}:restored", "p:{s}:d:2026-11-30", "p:{s}:m:2026-11", "p:{s}:a:day:2026-11-30:warning",
            "", "new", "d1", "2", "2", "spent", "5", "n", "1", "1", "spent", "5",
        ])
        #expect(try RestoreSpendScript.parse(.array([.string(Array("tok".utf8)), .integer(1)])) == .init(epoch: "tok", restored: true))
        #expect(throws: RedisScriptError.self) { try RestoreSpendScript.parse(.error("ERR boom")) }
    }

    @Test func scriptsThatCountSpendRefuseAnotherCanaryToken() {
        for source in [RecordBatchScript.script.source, ReserveScript.script.source] {
            #expect(source.contains("redis.error_reply('\(RecordBatchScript.epochChanged)"))
        }
        // Spend keys carry no TTL: an eviction policy of volatile-* must never pick them.
        #expect(!RecordBatchScript.script.source.contains("EXPIRE"))
        #expect(!RecordBatchScript.script.source.contains("'NX', 'EX'"))
    }

    @Test func leaseRepliesAreParsed() throws {
        #expect(try AcquireLeaseScript.parse(.array([.integer(1), .string([1, 2]), .integer(500), .string([])])) == .hit(value: [1, 2], pttl: 500, answerCost: .zero))
        #expect(
            try AcquireLeaseScript.parse(.array([.integer(1), .string([1, 2]), .integer(500), .string(Array("2500".utf8))]))
                == .hit(value: [1, 2], pttl: 500, answerCost: Money(nanos: 2_500)))
        #expect(try AcquireLeaseScript.parse(.array([.integer(2)])) == .granted)
        #expect(try AcquireLeaseScript.parse(.array([.integer(3), .integer(10)])) == .held)
        #expect(try FillLeaseScript.parse(.integer(1)))
        #expect(try !ReleaseLeaseScript.parse(.integer(0)))
        #expect(try ReleaseReservationScript.parse(.integer(1)))
    }

    @Test func theSettleLuaIsOneCopySharedByTheScriptsThatEndReservations() {
        for source in [RecordBatchScript.script.source, ReserveScript.script.source, ReleaseReservationScript.script.source] {
            #expect(source.hasPrefix(ReservationLua.giveBack))
            #expect(source.components(separatedBy: "HDEL").count == 2, "the reservation is deleted in giveBack only")
        }
    }

    @Test func theRecordScriptIncrementsTheSchemasFields() {
        let source = RecordBatchScript.script.source
        for total in SpendSchema.totals { #expect(source.contains("'\(total.name)'"), "record script lacks total \(total.name)") }
        for field in SpendSchema.breakdownFields { #expect(source.contains("'\(field.name)'"), "record script lacks breakdown \(field.name)") }
    }
}
