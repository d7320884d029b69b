/// Spend of one key (a model, a user, a feature, a unit) in a period.
public struct SpendBreakdown: Sendable, Equatable {
    public var cost = Money.zero
    public var requests: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    /// Calls a cache hit avoided, and what they would have cost.
    public var cachedRequests: Int64 = 0
    public var saved = Money.zero

    public init() {}

    mutating func add(_ record: SpendRecord) {
        if record.cached {
            cachedRequests += 1
            saved += record.cost
        } else {
            requests += 1
            cost += record.cost
            inputTokens += record.inputTokens
            outputTokens += record.outputTokens
        }
    }

    mutating func merge(_ other: SpendBreakdown) {
        for field in SpendSchema.breakdownFields { self[keyPath: field.value] += other[keyPath: field.value] }
    }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("costUsd", cost)
        writer.field("requests", requests)
        writer.field("inputTokens", inputTokens)
        writer.field("outputTokens", outputTokens)
        writer.field("cachedRequests", cachedRequests)
        writer.field("savedUsd", saved)
        writer.endObject()
    }

    init(json: JSONValue) {
        for field in SpendSchema.breakdownFields { self[keyPath: field.value] = json[field.name]?.numberValue?.int64 ?? 0 }
    }

    func writeSnapshot(to writer: inout JSONWriter) {
        writer.beginObject()
        for field in SpendSchema.breakdownFields {
            let value = self[keyPath: field.value]
            writer.field(field.name) { $0.int(value) }
        }
        writer.endObject()
    }
}

/// Everything counted in one period (a day, or a month as the sum of its days).
public struct PeriodTotals: Sendable, Equatable {
    public var spent = Money.zero
    public var requests: Int64 = 0
    public var cachedRequests: Int64 = 0
    public var savedByCache = Money.zero
    public var savedByRouting = Money.zero
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var cachedInputTokens: Int64 = 0
    public var byModel: [String: SpendBreakdown] = [:]
    public var byUser: [String: SpendBreakdown] = [:]
    public var byFeature: [String: SpendBreakdown] = [:]
    public var byUnit: [String: SpendBreakdown] = [:]
    public var byUnixUser: [String: SpendBreakdown] = [:]
    /// By scoped budget (``SpendScope/key``).
    public var byBudget: [String: SpendBreakdown] = [:]
    public var cache = CacheCounterSet()

    public init() {}

    mutating func add(_ record: SpendRecord) {
        if record.cached {
            cachedRequests += 1
            savedByCache += record.cost
        } else {
            spent += record.cost
            requests += 1
            inputTokens += record.inputTokens
            outputTokens += record.outputTokens
            cachedInputTokens += record.cachedInputTokens
            savedByRouting += record.routingSaved
        }
        for kind in SpendSchema.kinds {
            for name in kind.names(record) { self[keyPath: kind.map][name, default: SpendBreakdown()].add(record) }
        }
    }

    public mutating func merge(_ other: PeriodTotals) {
        for total in SpendSchema.totals { self[keyPath: total.value] += other[keyPath: total.value] }
        for kind in SpendSchema.kinds {
            for (key, value) in other[keyPath: kind.map] { self[keyPath: kind.map][key, default: SpendBreakdown()].merge(value) }
        }
        cache.add(other.cache)
    }
}

/// The spend of every period, the alerts already fired, and the record ids already counted.
///
/// This is the state the ledger rebuilds on start (snapshot, then log) and that `report` reads.
/// It is pure data: whoever owns it decides about locking and persistence.
public struct SpendBook: Sendable {
    public private(set) var days: [String: PeriodTotals] = [:]
    private var monthSpent: [String: Money] = [:]
    /// Spend of each scoped budget by month (its days' are in their `byBudget`).
    private var monthBudgetSpent: [String: [String: Money]] = [:]
    private var firedAlerts: Set<String> = []

    public init() {}

    public mutating func apply(_ record: SpendRecord) {
        days[record.day, default: PeriodTotals()].add(record)
        if !record.cached {
            let month = PeriodCalendar.monthKey(ofDay: record.day)
            monthSpent[month, default: .zero] += record.cost
            for key in record.budgets { monthBudgetSpent[month, default: [:]][key, default: .zero] += record.cost }
        }
    }

    public mutating func addCacheCounters(_ counters: CacheCounterSet, day: String) {
        days[day, default: PeriodTotals()].cache.add(counters)
    }

    public func spent(_ scope: BudgetScope, period: String) -> Money {
        switch scope {
        case .day: days[period]?.spent ?? .zero
        case .month: monthSpent[period] ?? .zero
        }
    }

    /// Spend of a scoped budget (by its key) in a day or month; the host's for nil.
    public func spent(_ scope: BudgetScope, period: String, budget key: String?) -> Money {
        guard let key else { return spent(scope, period: period) }
        switch scope {
        case .day: return days[period]?.byBudget[key]?.cost ?? .zero
        case .month: return monthBudgetSpent[period]?[key] ?? .zero
        }
    }

    public func totals(day: String) -> PeriodTotals {
        days[day] ?? PeriodTotals()
    }

    public func totals(month: String) -> PeriodTotals {
        var totals = PeriodTotals()
        for (day, dayTotals) in days where day.hasPrefix(month) {
            totals.merge(dayTotals)
        }
        return totals
    }

    /// The spend of each scoped budget in `month`, by key.
    public func budgetSpent(month: String) -> [String: Money] {
        monthBudgetSpent[month] ?? [:]
    }

    /// The scoped budgets' alerts fired in a period: which budget, which level.
    public func firedScopedAlerts(_ scope: BudgetScope, period: String) -> [(budget: String, level: AlertLevel)] {
        let prefix = "\(scope.rawValue)/\(period)/"
        return firedAlerts.compactMap { mark in
            guard mark.hasPrefix(prefix) else { return nil }
            let rest = mark.dropFirst(prefix.count)
            guard let slash = rest.firstIndex(of: "/"), let level = AlertLevel(rawValue: String(rest[..<slash])) else { return nil }
            return (String(rest[rest.index(after: slash)...]), level)
        }.sorted { ($0.budget, $0.level.rawValue) < ($1.budget, $1.level.rawValue) }
    }

    /// `day/2026-11-29/warning`, and for a scoped budget `…/warning/<scope key>`.
    private static func alertMark(_ scope: BudgetScope, _ period: String, _ level: AlertLevel, _ budget: String?) -> String {
        "\(scope.rawValue)/\(period)/\(level.rawValue)" + (budget.map { "/" + $0 } ?? "")
    }

    public func hasFired(_ scope: BudgetScope, period: String, level: AlertLevel, budget: String? = nil) -> Bool {
        firedAlerts.contains(SpendBook.alertMark(scope, period, level, budget))
    }

    public mutating func markFired(_ scope: BudgetScope, period: String, level: AlertLevel, budget: String? = nil) {
        firedAlerts.insert(SpendBook.alertMark(scope, period, level, budget))
    }

    /// Drops days older than `oldestDay` (history kept for reports has a horizon).
    public mutating func forgetDays(before oldestDay: String) {
        for day in days.keys where day < oldestDay {
            days.removeValue(forKey: day)
        }
        let oldestMonth = PeriodCalendar.monthKey(ofDay: oldestDay)
        for month in monthSpent.keys where month < oldestMonth {
            monthSpent.removeValue(forKey: month)
        }
        for month in monthBudgetSpent.keys where month < oldestMonth {
            monthBudgetSpent.removeValue(forKey: month)
        }
        firedAlerts = firedAlerts.filter { mark in
            let period = mark.split(separator: "/").dropFirst().first.map(String.init) ?? ""
            return period >= oldestMonth
        }
    }

    // MARK: - Snapshot

    /// Everything as one JSON document, for the ledger's snapshot file.
    public func writeSnapshot(to writer: inout JSONWriter) {
        func writeMap(_ map: [String: SpendBreakdown], _ writer: inout JSONWriter) {
            writer.beginObject()
            for (key, value) in map.sorted(by: { $0.key < $1.key }) {
                writer.field(key) { value.writeSnapshot(to: &$0) }
            }
            writer.endObject()
        }
        writer.beginObject()
        writer.field("days") { writer in
            writer.beginObject()
            for (day, totals) in days.sorted(by: { $0.key < $1.key }) {
                writer.field(day) { writer in
                    writer.beginObject()
                    for total in SpendSchema.totals {
                        let value = totals[keyPath: total.value]
                        writer.field(total.name) { $0.int(value) }
                    }
                    for kind in SpendSchema.kinds {
                        let map = totals[keyPath: kind.map]
                        writer.field(kind.snapshotName) { writeMap(map, &$0) }
                    }
                    writer.field("cache") { totals.cache.writeCompact(to: &$0) }
                    writer.endObject()
                }
            }
            writer.endObject()
        }
        writer.field("alerts") { writer in
            writer.beginArray()
            for mark in firedAlerts.sorted() {
                writer.string(mark)
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
    }

    public init(snapshot json: JSONValue) throws(SnapshotError) {
        guard let daysObject = json["days"]?.objectValue else { throw SnapshotError("snapshot has no days") }
        func readMap(_ value: JSONValue?) -> [String: SpendBreakdown] {
            var map: [String: SpendBreakdown] = [:]
            for member in value?.objectValue?.members ?? [] {
                map[member.key] = SpendBreakdown(json: member.value)
            }
            return map
        }
        for member in daysObject.members {
            let value = member.value
            var totals = PeriodTotals()
            for total in SpendSchema.totals { totals[keyPath: total.value] = value[total.name]?.numberValue?.int64 ?? 0 }
            for kind in SpendSchema.kinds { totals[keyPath: kind.map] = readMap(value[kind.snapshotName]) }
            totals.cache = CacheCounterSet(compact: value["cache"] ?? .null)
            days[member.key] = totals
            let month = PeriodCalendar.monthKey(ofDay: member.key)
            monthSpent[month, default: .zero] += totals.spent
            for (key, breakdown) in totals.byBudget { monthBudgetSpent[month, default: [:]][key, default: .zero] += breakdown.cost }
        }
        for mark in json["alerts"]?.arrayValue ?? [] {
            if let mark = mark.stringValue { firedAlerts.insert(mark) }
        }
    }
}

public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
