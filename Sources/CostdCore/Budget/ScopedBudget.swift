/// A `[[budgets]]` entry: daily and/or monthly limits for the calls of one scope, hard (refuse
/// work that would pass them) or soft (alert only).
public struct ScopedBudget: Sendable, Equatable {
    public var scope: SpendScope
    public var daily: Money?
    public var monthly: Money?
    public var hard: Bool
    /// When the `warning` alert fires, in parts per million of the limit.
    public var warningFractionPPM: Int64

    public init(scope: SpendScope, daily: Money? = nil, monthly: Money? = nil, hard: Bool = false, warningFractionPPM: Int64 = 800_000) {
        self.scope = scope
        self.daily = daily
        self.monthly = monthly
        self.hard = hard
        self.warningFractionPPM = warningFractionPPM
    }

    public func limit(_ period: BudgetScope) -> Money? {
        switch period {
        case .day: daily
        case .month: monthly
        }
    }

    /// The spend at which `level` fires for `period`, if that period has a limit.
    public func threshold(_ level: AlertLevel, _ period: BudgetScope) -> Money? {
        guard let limit = limit(period) else { return nil }
        switch level {
        case .warning: return limit.scaled(by: warningFractionPPM, over: 1_000_000)
        case .exceeded: return limit
        }
    }

    /// The limit a reservation must fit under, when this budget is hard.
    public func hardLimit(_ period: BudgetScope) -> Money? {
        hard ? limit(period) : nil
    }
}

extension BudgetSettings {
    /// The scoped budgets a call with `attributes` counts toward.
    public func scopedBudgets(matching attributes: SpendAttributes) -> [ScopedBudget] {
        scoped.filter { $0.scope.matches(attributes) }
    }

    /// Whether a call with `attributes` must reserve before it is made: a hard budget (the
    /// host's, or a scoped one it counts toward) could refuse it.
    public func hasHardBudget(for attributes: SpendAttributes) -> Bool {
        isHard(.day) || isHard(.month) || scoped.contains { $0.hard && $0.scope.matches(attributes) }
    }

    /// The scoped budget whose scope has `key`.
    public func scopedBudget(key: String) -> ScopedBudget? {
        scoped.first { $0.scope.key == key }
    }
}
