import CostdCore

/// Records acknowledged while Redis could not take them, oldest first, each with the
/// reservation it settles, until they are replayed into Redis.
///
/// Acknowledging a record during an outage costs O(1) however long the outage: the spend
/// waiting per period is kept as running totals (a receipt needs it), and replay takes records
/// from the front without scanning the rest.
struct Backlog: Sendable {
    struct Entry: Sendable {
        var record: SpendRecord
        /// The reservation (from `reserve` or `route`) that the record settles, if any.
        var reservation: String?
    }

    private var entries: [String: Entry] = [:]
    /// Record ids in arrival order; ids before `head`, and ids no longer in `entries`, are done.
    private var order: [String] = []
    private var head = 0
    /// Spend waiting per period (`d:<day>`, `m:<month>`).
    private var spendByPeriod: [String: Money] = [:]

    var count: Int { entries.count }

    /// Adds a record; a record id already waiting is not added twice. Returns whether it was added.
    @discardableResult
    mutating func add(_ record: SpendRecord, reservation: String?) -> Bool {
        guard entries[record.recordId] == nil else { return false }
        entries[record.recordId] = Entry(record: record, reservation: reservation)
        order.append(record.recordId)
        for key in Backlog.periodKeys(of: record) { spendByPeriod[key, default: .zero] += record.spend }
        return true
    }

    /// Removes records that reached Redis.
    mutating func remove(_ recordIds: some Sequence<String>) {
        for id in recordIds {
            guard let entry = entries.removeValue(forKey: id) else { continue }
            for key in Backlog.periodKeys(of: entry.record) {
                let left = (spendByPeriod[key] ?? .zero) - entry.record.spend
                spendByPeriod[key] = left == .zero ? nil : left
            }
        }
        // Replay removes from the front: skip what is done, and drop it once it is half the array.
        while head < order.count, entries[order[head]] == nil { head += 1 }
        if head > 1_024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        if entries.isEmpty {
            order.removeAll()
            head = 0
        }
    }

    /// Up to `limit` records still waiting, oldest first.
    func pending(limit: Int = .max) -> [Entry] {
        var found: [Entry] = []
        var index = head
        while index < order.count && found.count < limit {
            if let entry = entries[order[index]] { found.append(entry) }
            index += 1
        }
        return found
    }

    /// Spend waiting for a day or a month.
    func spend(_ scope: BudgetScope, period: String) -> Money {
        spendByPeriod[SpendSchema.periodKey(scope, period)] ?? .zero
    }

    private static func periodKeys(of record: SpendRecord) -> [String] {
        [SpendSchema.periodKey(.day, record.day), SpendSchema.periodKey(.month, PeriodCalendar.monthKey(ofDay: record.day))]
    }
}
