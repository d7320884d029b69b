/// An alert as it is delivered: to `subscribe`rs (the params of an `alert` notification), to
/// `costctl alerts` (one JSON line each) and to `--exec` commands (on stdin), always as the same
/// seven fields: `{"id", "scope", "period", "level", "spentUsd", "budgetUsd", "at"}`.
///
/// Ids are `<unix ms>-<n>` and grow with time: with Redis they are the ids of the alert stream
/// every daemon shares; without it, the ledger's. `since` an id means every alert after it.
public struct AlertEvent: Sendable, Equatable {
    public var id: AlertId
    /// Whose budget: `{}` for the host's, `{"feature": "etl"}` for a `[[budgets]]` entry.
    public var scope: SpendScope
    public var period: BudgetScope
    public var level: AlertLevel
    public var spent: Money
    public var budget: Money
    /// When it fired, in Unix milliseconds.
    public var at: Int64

    public init(id: AlertId, alert: BudgetAlert, at: Int64) {
        self.init(id: id, scope: alert.budgetScope, period: alert.scope, level: alert.level, spent: alert.spent, budget: alert.budget, at: at)
    }

    public init(id: AlertId, scope: SpendScope, period: BudgetScope, level: AlertLevel, spent: Money, budget: Money, at: Int64) {
        self.id = id
        self.scope = scope
        self.period = period
        self.level = level
        self.spent = spent
        self.budget = budget
        self.at = at
    }

    /// The notification's params (without `id` where the id is kept beside them, as Redis's
    /// stream does).
    public func writeParams(to writer: inout JSONWriter, withId: Bool = true) {
        writer.beginObject()
        if withId { writer.field("id", id.description) }
        writer.field("scope") { scope.write(to: &$0) }
        writer.field("period", period.rawValue)
        writer.field("level", level.rawValue)
        writer.field("spentUsd", spent)
        writer.field("budgetUsd", budget)
        writer.field("at", at)
        writer.endObject()
    }

    /// `{"jsonrpc": "2.0", "method": "alert", "params": {...}}`.
    public func writeNotification(to writer: inout JSONWriter) {
        writer.raw("{\"jsonrpc\":\"2.0\",\"method\":\"alert\",\"params\":")
        writeParams(to: &writer)
        writer.raw("}")
    }

    /// Reads the params back (the ledger and Redis's stream keep them as written).
    public init?(params json: JSONValue, id given: AlertId? = nil) {
        guard let id = given ?? json["id"]?.stringValue.flatMap(AlertId.init), case .object(let scopeObject)? = json["scope"],
            let period = json["period"]?.stringValue.flatMap(BudgetScope.init(rawValue:)),
            let level = json["level"]?.stringValue.flatMap(AlertLevel.init(rawValue:)),
            let spent = json["spentUsd"]?.numberValue.flatMap(Money.init(usd:)),
            let budget = json["budgetUsd"]?.numberValue.flatMap(Money.init(usd:)), let at = json["at"]?.numberValue?.int64
        else { return nil }
        var values: [SpendScope.Dimension: String] = [:]
        for member in scopeObject.members {
            guard let dimension = SpendScope.Dimension(rawValue: member.key), let value = member.value.stringValue else { return nil }
            values[dimension] = value
        }
        self.init(id: id, scope: SpendScope(values), period: period, level: level, spent: spent, budget: budget, at: at)
    }
}

/// `<unix ms>-<n>`: ordered by time, then by `n` (as Redis stream ids are).
public struct AlertId: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var millis: Int64
    public var sequence: Int64

    public init(millis: Int64, sequence: Int64) {
        self.millis = millis
        self.sequence = sequence
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let millis = Int64(parts[0]), let sequence = Int64(parts[1]), millis >= 0, sequence >= 0 else { return nil }
        self.init(millis: millis, sequence: sequence)
    }

    public var description: String { "\(millis)-\(sequence)" }

    public static func < (lhs: AlertId, rhs: AlertId) -> Bool {
        (lhs.millis, lhs.sequence) < (rhs.millis, rhs.sequence)
    }
}

/// The alerts of a daemon (its own without Redis; the fleet's stream, mirrored, with it), in id
/// order, the latest `capacity` kept: what `subscribe {since}` and `costctl alerts` replay.
public struct AlertLog: Sendable {
    public static let defaultCapacity = 10_000
    public let capacity: Int
    public private(set) var events: [AlertEvent] = []

    public init(capacity: Int = AlertLog.defaultCapacity) {
        self.capacity = capacity
    }

    public var lastId: AlertId? { events.last?.id }

    /// Appends an alert fired at `at`, with the next id (never below the last one, even if the
    /// clock went back).
    @discardableResult
    public mutating func append(_ alert: BudgetAlert, at: Int64) -> AlertEvent {
        var id = AlertId(millis: at, sequence: 0)
        if let last = lastId, id <= last { id = AlertId(millis: last.millis, sequence: last.sequence + 1) }
        let event = AlertEvent(id: id, alert: alert, at: at)
        add(event)
        return event
    }

    /// Adds an event that has its id (from Redis's stream); false when it is not after the last.
    @discardableResult
    public mutating func mirror(_ event: AlertEvent) -> Bool {
        if let last = lastId, event.id <= last { return false }
        add(event)
        return true
    }

    private mutating func add(_ event: AlertEvent) {
        events.append(event)
        if events.count > capacity + capacity / 4 { events.removeFirst(events.count - capacity) }
    }

    /// The events after `id` (all of them for nil), oldest first.
    public func after(_ id: AlertId?) -> ArraySlice<AlertEvent> {
        guard let id else { return events[...] }
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[middle].id <= id { low = middle + 1 } else { high = middle }
        }
        return events[low...]
    }
}
