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
        guard let id = given ?? json["id"]?.stringValue.flatMap(AlertId.init), let scope = json["scope"].flatMap(SpendScope.init(json:)),
            let period = json["period"]?.stringValue.flatMap(BudgetScope.init(rawValue:)),
            let level = json["level"]?.stringValue.flatMap(AlertLevel.init(rawValue:)),
            let spent = json["spentUsd"]?.numberValue.flatMap(Money.init(usd:)),
            let budget = json["budgetUsd"]?.numberValue.flatMap(Money.init(usd:)), let at = json["at"]?.numberValue?.int64
        else { return nil }
        self.init(id: id, scope: scope, period: period, level: level, spent: spent, budget: budget, at: at)
    }
}
