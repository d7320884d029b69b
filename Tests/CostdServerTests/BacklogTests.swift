import CostdCore
import Testing

@testable import CostdServer

@Suite struct BacklogTests {
    func record(_ id: String, day: String = "2026-11-30", nanos: Int64, cached: Bool = false) -> SpendRecord {
        SpendRecord(recordId: id, unixMillis: 0, day: day, model: "m", cost: Money(nanos: nanos), cached: cached)
    }

    @Test func keepsOrderReservationsAndOneEntryPerRecordId() {
        var backlog = Backlog()
        let addedA = backlog.add(record("a", nanos: 1), reservation: "rsv-1")
        let addedB = backlog.add(record("b", nanos: 2), reservation: nil)
        let addedAgain = backlog.add(record("a", nanos: 1), reservation: "rsv-1")
        #expect(addedA && addedB)
        #expect(!addedAgain, "a retried record id waits once")
        let pending = backlog.pending()
        #expect(pending.map(\.record.recordId) == ["a", "b"])
        #expect(pending.map(\.reservation) == ["rsv-1", nil])
        #expect(backlog.pending(limit: 1).map(\.record.recordId) == ["a"])
        #expect(backlog.count == 2)
    }

    @Test func runningTotalsEqualTheSumOfWhatWaitsPerDayAndMonth() {
        var backlog = Backlog()
        backlog.add(record("a", day: "2026-11-29", nanos: 100), reservation: nil)
        backlog.add(record("b", day: "2026-11-30", nanos: 20), reservation: nil)
        backlog.add(record("c", day: "2026-11-30", nanos: 3), reservation: nil)
        backlog.add(record("d", day: "2026-11-30", nanos: 999, cached: true), reservation: nil)
        backlog.add(record("e", day: "2026-12-01", nanos: 7), reservation: nil)
        #expect(backlog.spend(.day, period: "2026-11-30") == Money(nanos: 23), "a cached record is no spend")
        #expect(backlog.spend(.day, period: "2026-11-29") == Money(nanos: 100))
        #expect(backlog.spend(.month, period: "2026-11") == Money(nanos: 123))
        #expect(backlog.spend(.month, period: "2026-12") == Money(nanos: 7))
        backlog.remove(["b", "a", "unknown"])
        #expect(backlog.spend(.day, period: "2026-11-30") == Money(nanos: 3))
        #expect(backlog.spend(.day, period: "2026-11-29") == .zero)
        #expect(backlog.spend(.month, period: "2026-11") == Money(nanos: 3))
        #expect(backlog.pending().map(\.record.recordId) == ["c", "d", "e"])
    }

    @Test func replayFromTheFrontLeavesTheRestInOrderAcrossCompaction() {
        var backlog = Backlog()
        for index in 0..<5_000 { backlog.add(record("r\(index)", nanos: 1), reservation: nil) }
        // Replayed in batches from the front, with one record out of order in the middle.
        backlog.remove(["r4000"])
        for start in stride(from: 0, to: 3_000, by: 256) {
            backlog.remove((start..<min(start + 256, 3_000)).map { "r\($0)" })
        }
        #expect(backlog.count == 1_999)
        let pending = backlog.pending()
        #expect(pending.first?.record.recordId == "r3000")
        #expect(pending.count == 1_999)
        #expect(!pending.contains { $0.record.recordId == "r4000" })
        #expect(backlog.spend(.day, period: "2026-11-30") == Money(nanos: 1_999))
        backlog.remove(pending.map(\.record.recordId))
        #expect(backlog.count == 0)
        #expect(backlog.pending().isEmpty)
        #expect(backlog.spend(.month, period: "2026-11") == .zero)
    }
}
