/// Where one budget stands in one period: `report.budgets`, `costctl budget`, and the
/// metrics' usage ratios all read this, for the host's budget and every scoped one alike.
public struct BudgetStanding: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Below the warning threshold.
        case ok
        /// At or past the warning threshold.
        case warning
        /// At or past the limit.
        case exceeded
    }

    public var scope: SpendScope
    public var period: BudgetScope
    /// `2026-11-30` or `2026-11`.
    public var periodKey: String
    public var limit: Money
    public var spent: Money
    public var reserved: Money
    public var hard: Bool
    public var warningFractionPPM: Int64

    public init(
        scope: SpendScope, period: BudgetScope, periodKey: String, limit: Money, spent: Money, reserved: Money, hard: Bool,
        warningFractionPPM: Int64
    ) {
        self.scope = scope
        self.period = period
        self.periodKey = periodKey
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.hard = hard
        self.warningFractionPPM = warningFractionPPM
    }

    public var remaining: Money { limit - spent }

    public var state: State {
        // A zero limit is exceeded by any spend at all, as its alerts are.
        if spent > .zero && spent >= limit { return .exceeded }
        if spent > .zero && spent >= limit.scaled(by: warningFractionPPM, over: 1_000_000) { return .warning }
        return .ok
    }

    /// Every budget that has a limit for the day `day` or its month, the host's first, each
    /// with its spend and reserved money as `spent` and `reserved` tell (`key` nil: the host's).
    public static func all(
        _ budget: BudgetSettings, day: String, spent: (_ key: String?, BudgetScope, _ period: String) -> Money,
        reserved: (_ key: String?, BudgetScope, _ period: String) -> Money
    ) -> [BudgetStanding] {
        let month = PeriodCalendar.monthKey(ofDay: day)
        var standings: [BudgetStanding] = []
        for (period, periodKey) in [(BudgetScope.day, day), (.month, month)] {
            if let limit = budget.budget(for: period) {
                standings.append(
                    BudgetStanding(
                        scope: .host, period: period, periodKey: periodKey, limit: limit, spent: spent(nil, period, periodKey),
                        reserved: reserved(nil, period, periodKey), hard: budget.isHard(period), warningFractionPPM: budget.warningFractionPPM))
            }
        }
        for scoped in budget.scoped {
            for (period, periodKey) in [(BudgetScope.day, day), (.month, month)] {
                guard let limit = scoped.limit(period) else { continue }
                let key = scoped.scope.key
                standings.append(
                    BudgetStanding(
                        scope: scoped.scope, period: period, periodKey: periodKey, limit: limit, spent: spent(key, period, periodKey),
                        reserved: reserved(key, period, periodKey), hard: scoped.hard, warningFractionPPM: scoped.warningFractionPPM))
            }
        }
        return standings
    }

    /// `{scope, period, periodKey, budgetUsd, spentUsd, reservedUsd, remainingUsd, hard, state}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("scope") { scope.write(to: &$0) }
        writer.field("period", period.rawValue)
        writer.field("periodKey", periodKey)
        writer.field("budgetUsd", limit)
        writer.field("spentUsd", spent)
        writer.field("reservedUsd", reserved)
        writer.field("remainingUsd", remaining)
        writer.field("hard", hard)
        writer.field("state", state.rawValue)
        writer.endObject()
    }
}
