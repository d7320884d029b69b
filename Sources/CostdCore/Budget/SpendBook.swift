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
        cost += other.cost
        requests += other.requests
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        cachedRequests += other.cachedRequests
        saved += other.saved
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
        cost = Money(nanos: json["cost"]?.numberValue?.int64 ?? 0)
        requests = json["n"]?.numberValue?.int64 ?? 0
        inputTokens = json["in"]?.numberValue?.int64 ?? 0
        outputTokens = json["out"]?.numberValue?.int64 ?? 0
        cachedRequests = json["cn"]?.numberValue?.int64 ?? 0
        saved = Money(nanos: json["saved"]?.numberValue?.int64 ?? 0)
    }

    func writeSnapshot(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("cost", cost.nanos)
        writer.field("n", requests)
        writer.field("in", inputTokens)
        writer.field("out", outputTokens)
        writer.field("cn", cachedRequests)
        writer.field("saved", saved.nanos)
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
        byModel[record.model, default: SpendBreakdown()].add(record)
        if let user = record.user { byUser[user, default: SpendBreakdown()].add(record) }
        if let feature = record.feature { byFeature[feature, default: SpendBreakdown()].add(record) }
        if let unit = record.unit { byUnit[unit, default: SpendBreakdown()].add(record) }
        if let unixUser = record.unixUser { byUnixUser[unixUser, default: SpendBreakdown()].add(record) }
    }

    public mutating func merge(_ other: PeriodTotals) {
        spent += other.spent
        requests += other.requests
        cachedRequests += other.cachedRequests
        savedByCache += other.savedByCache
        savedByRouting += other.savedByRouting
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        cachedInputTokens += other.cachedInputTokens
        for (key, value) in other.byModel { byModel[key, default: SpendBreakdown()].merge(value) }
        for (key, value) in other.byUser { byUser[key, default: SpendBreakdown()].merge(value) }
        for (key, value) in other.byFeature { byFeature[key, default: SpendBreakdown()].merge(value) }
        for (key, value) in other.byUnit { byUnit[key, default: SpendBreakdown()].merge(value) }
        for (key, value) in other.byUnixUser { byUnixUser[key, default: SpendBreakdown()].merge(value) }
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
    private var firedAlerts: Set<String> = []

    public init() {}

    public mutating func apply(_ record: SpendRecord) {
        days[record.day, default: PeriodTotals()].add(record)
        if !record.cached {
            monthSpent[PeriodCalendar.monthKey(ofDay: record.day), default: .zero] += record.cost
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

    private static func alertMark(_ scope: BudgetScope, _ period: String, _ level: AlertLevel) -> String {
        "\(scope.rawValue)/\(period)/\(level.rawValue)"
    }

    public func hasFired(_ scope: BudgetScope, period: String, level: AlertLevel) -> Bool {
        firedAlerts.contains(SpendBook.alertMark(scope, period, level))
    }

    public mutating func markFired(_ scope: BudgetScope, period: String, level: AlertLevel) {
        firedAlerts.insert(SpendBook.alertMark(scope, period, level))
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
                    writer.field("spent", totals.spent.nanos)
                    writer.field("n", totals.requests)
                    writer.field("cn", totals.cachedRequests)
                    writer.field("savedCache", totals.savedByCache.nanos)
                    writer.field("savedRouting", totals.savedByRouting.nanos)
                    writer.field("in", totals.inputTokens)
                    writer.field("out", totals.outputTokens)
                    writer.field("cin", totals.cachedInputTokens)
                    writer.field("models") { writeMap(totals.byModel, &$0) }
                    writer.field("users") { writeMap(totals.byUser, &$0) }
                    writer.field("features") { writeMap(totals.byFeature, &$0) }
                    writer.field("units") { writeMap(totals.byUnit, &$0) }
                    writer.field("unixUsers") { writeMap(totals.byUnixUser, &$0) }
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
            totals.spent = Money(nanos: value["spent"]?.numberValue?.int64 ?? 0)
            totals.requests = value["n"]?.numberValue?.int64 ?? 0
            totals.cachedRequests = value["cn"]?.numberValue?.int64 ?? 0
            totals.savedByCache = Money(nanos: value["savedCache"]?.numberValue?.int64 ?? 0)
            totals.savedByRouting = Money(nanos: value["savedRouting"]?.numberValue?.int64 ?? 0)
            totals.inputTokens = value["in"]?.numberValue?.int64 ?? 0
            totals.outputTokens = value["out"]?.numberValue?.int64 ?? 0
            totals.cachedInputTokens = value["cin"]?.numberValue?.int64 ?? 0
            totals.byModel = readMap(value["models"])
            totals.byUser = readMap(value["users"])
            totals.byFeature = readMap(value["features"])
            totals.byUnit = readMap(value["units"])
            totals.byUnixUser = readMap(value["unixUsers"])
            totals.cache = CacheCounterSet(compact: value["cache"] ?? .null)
            days[member.key] = totals
            monthSpent[PeriodCalendar.monthKey(ofDay: member.key), default: .zero] += totals.spent
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
