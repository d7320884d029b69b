import CostdCore
import Foundation
import Logging
import Testing

@testable import CostdServer

/// What a daemon keeps of its own spend in Redis, to put it back if Redis loses it: it survives a
/// restart (log replay) and a compaction (snapshot).
@Suite("Ledger: this daemon's spend in Redis")
struct SpendLedgerRedisCopyTests {
    static let ann = SpendScope([.user: "ann"])

    static func record(_ id: String, _ day: String, _ dollars: String) -> SpendRecord {
        SpendRecord(
            recordId: id, unixMillis: 0, day: day, model: "gpt-4o", user: "ann", cost: Money(usd: dollars)!, inputTokens: 10,
            budgets: [ann.key])
    }

    static func expectKept(_ ledger: SpendLedger, epoch: String, daemonId: String) {
        #expect(ledger.redisIdentity.epoch == epoch)
        #expect(ledger.redisIdentity.daemonId == daemonId)
        let november = ledger.countedInRedis(month: "2026-11")
        #expect(november.days.map(\.day) == ["2026-11-29", "2026-11-30"])
        #expect(november.days.map(\.totals.spent) == [Money(usd: "1.5")!, Money(usd: "0.25")!])
        #expect(november.days[0].totals.byUser["ann"]?.requests == 3)
        #expect(november.monthSpent == Money(usd: "1.75")!, "October's record is not November's")
        #expect(november.fired.map { "\($0.scope.rawValue)/\($0.period)/\($0.level.rawValue)/\($0.budget ?? "host")" }.sorted() == [
            "day/2026-11-29/exceeded/\(ann.key)", "day/2026-11-29/warning/host", "month/2026-11/exceeded/host",
            "month/2026-11/warning/\(ann.key)",
        ])
        #expect(november.monthBudgetSpent == [ann.key: Money(usd: "1.75")!])
        #expect(ledger.countedInRedis(month: "2026-10").monthSpent == Money(usd: "9")!)
    }

    @Test func ownSpendEpochAndDaemonIdSurviveARestartAndACompaction() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-redis-copy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "test")

        var ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), logger: logger)
        let daemonId = ledger.redisIdentity.daemonId
        #expect(!daemonId.isEmpty)
        #expect(ledger.redisIdentity.epoch == nil)
        let warning = BudgetAlert(scope: .day, level: .warning, period: "2026-11-29", spent: .dollars(1), budget: .dollars(1))
        ledger.keepCounted([
            (Self.record("a", "2026-11-29", "1"), [warning]), (Self.record("b", "2026-11-29", "0.5"), []),
            (Self.record("old", "2026-10-31", "9"), []),
        ])
        ledger.keepCounted([(Self.record("c", "2026-11-30", "0.25"), [])])
        ledger.noteFiredInRedis([
            .init(scope: .month, period: "2026-11", level: .exceeded), .init(scope: .day, period: "2026-11-29", level: .warning),
            .init(scope: .month, period: "2026-11", level: .warning, budget: Self.ann.key),
        ])
        let annExceeded = BudgetAlert(
            scope: .day, level: .exceeded, period: "2026-11-29", spent: .dollars(1), budget: .dollars(1), budgetScope: Self.ann)
        ledger.keepCounted([(Self.record("d", "2026-11-29", "0"), [annExceeded])])
        ledger.adoptRedisEpoch("e1")
        Self.expectKept(ledger, epoch: "e1", daemonId: daemonId)
        ledger.close()

        ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), logger: logger)
        Self.expectKept(ledger, epoch: "e1", daemonId: daemonId)

        // A compaction (the next entry past a one-byte limit; in Redis mode there may be no
        // embedded record to start one) writes it all into the snapshot.
        ledger.close()
        var settings = LedgerSettings()
        settings.compactAfterBytes = 1
        ledger = try SpendLedger(directory: directory, settings: settings, logger: logger)
        ledger.keepCounted([(Self.record("september", "2026-09-01", "3"), [])])
        ledger.close()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.contains("snapshot.json"))
        ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), logger: logger)
        Self.expectKept(ledger, epoch: "e1", daemonId: daemonId)
        ledger.close()
    }
}
