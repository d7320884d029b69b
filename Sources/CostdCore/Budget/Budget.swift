/// Daily and monthly budgets and the thresholds that raise alerts.
public struct BudgetSettings: Sendable, Equatable {
    public var daily: Money?
    public var monthly: Money?
    /// The fraction of a budget at which a `warning` alert fires, in parts per million.
    public var warningFractionPPM: Int64
    /// Hard budgets refuse work that would pass them (see `reserve`); soft ones only alert.
    public var hardDaily: Bool
    public var hardMonthly: Bool
    /// `[[budgets]]`: budgets of their own for users, features, units and models.
    public var scoped: [ScopedBudget]

    public init(
        daily: Money? = nil,
        monthly: Money? = nil,
        warningFractionPPM: Int64 = 800_000,
        hardDaily: Bool = false,
        hardMonthly: Bool = false,
        scoped: [ScopedBudget] = []
    ) {
        self.daily = daily
        self.monthly = monthly
        self.warningFractionPPM = warningFractionPPM
        self.hardDaily = hardDaily
        self.hardMonthly = hardMonthly
        self.scoped = scoped
    }

    public func budget(for scope: BudgetScope) -> Money? {
        switch scope {
        case .day: daily
        case .month: monthly
        }
    }

    public func isHard(_ scope: BudgetScope) -> Bool {
        switch scope {
        case .day: hardDaily && daily != nil
        case .month: hardMonthly && monthly != nil
        }
    }

    public func validate() throws(ConfigError) {
        if let daily, daily.nanos < 0 { throw ConfigError("budget.daily must not be negative") }
        if let monthly, monthly.nanos < 0 { throw ConfigError("budget.monthly must not be negative") }
        guard warningFractionPPM > 0, warningFractionPPM <= 1_000_000 else {
            throw ConfigError("budget.warning_fraction must be above 0 and at most 1")
        }
        var seen: Set<SpendScope> = []
        for (index, budget) in scoped.enumerated() {
            let name = "budgets[\(index)] \(budget.scope.key)"
            guard !budget.scope.isHost else {
                throw ConfigError("budgets[\(index)] names no scope (user, feature, unix_user, unit or model); the host's budget is [budget]")
            }
            guard budget.daily != nil || budget.monthly != nil else { throw ConfigError("\(name) needs daily and/or monthly") }
            guard budget.warningFractionPPM > 0, budget.warningFractionPPM <= 1_000_000 else {
                throw ConfigError("\(name): warning_fraction must be above 0 and at most 1")
            }
            guard seen.insert(budget.scope).inserted else { throw ConfigError("\(name) is given twice") }
        }
    }
}

public enum BudgetScope: String, Sendable, CaseIterable, Hashable {
    case day
    case month
}

public enum AlertLevel: String, Sendable, CaseIterable, Hashable, Comparable {
    case warning
    case exceeded

    public static func < (lhs: AlertLevel, rhs: AlertLevel) -> Bool {
        lhs == .warning && rhs == .exceeded
    }
}

/// A budget threshold crossed, reported once per period and level.
public struct BudgetAlert: Sendable, Equatable {
    /// Whether the day's or the month's budget (named `scope` on the wire since before scoped
    /// budgets; ``budgetScope`` is what the budget applies to).
    public var scope: BudgetScope
    public var level: AlertLevel
    /// The period the alert belongs to: `2026-11-29` or `2026-11`.
    public var period: String
    public var spent: Money
    public var budget: Money
    /// Whose budget: the host's, or a `[[budgets]]` entry's scope.
    public var budgetScope: SpendScope

    public init(scope: BudgetScope, level: AlertLevel, period: String, spent: Money, budget: Money, budgetScope: SpendScope = .host) {
        self.scope = scope
        self.level = level
        self.period = period
        self.spent = spent
        self.budget = budget
        self.budgetScope = budgetScope
    }

    /// The key of the scoped budget the alert is about (nil: the host's).
    public var budgetKey: String? { budgetScope.isHost ? nil : budgetScope.key }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("scope", scope.rawValue)
        writer.field("level", level.rawValue)
        writer.field("period", period)
        writer.field("spentUsd", spent)
        writer.field("budgetUsd", budget)
        writer.field("budgetScope") { budgetScope.write(to: &$0) }
        writer.endObject()
    }

    /// The alerts a period owes once its spend is `spent` against `limit`: every level reached
    /// and not yet fired, lowest first. A zero limit is exceeded by any spend at all.
    public static func due(
        _ period: BudgetScope, periodKey: String, spent: Money, limit: Money?, warningFractionPPM: Int64, budgetScope: SpendScope,
        alreadyFired: (AlertLevel) -> Bool
    ) -> [BudgetAlert] {
        guard let limit, spent > .zero else { return [] }
        return AlertLevel.allCases.compactMap { level in
            let threshold = level == .warning ? limit.scaled(by: warningFractionPPM, over: 1_000_000) : limit
            guard spent >= threshold, !alreadyFired(level) else { return nil }
            return BudgetAlert(scope: period, level: level, period: periodKey, spent: spent, budget: limit, budgetScope: budgetScope)
        }
    }
}

/// Where a period stands against its budget.
public struct BudgetStatus: Sendable, Equatable {
    public var spent: Money
    public var budget: Money?
    /// Money promised to reservations that are not settled yet.
    public var reserved: Money

    public init(spent: Money, budget: Money?, reserved: Money = .zero) {
        self.spent = spent
        self.budget = budget
        self.reserved = reserved
    }

    public var remaining: Money? { budget.map { $0 - spent } }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("spentUsd", spent)
        writer.key("budgetUsd")
        if let budget { writer.money(budget) } else { writer.null() }
        writer.comma()
        writer.key("remainingUsd")
        if let remaining { writer.money(remaining) } else { writer.null() }
        writer.comma()
        if reserved != .zero { writer.field("reservedUsd", reserved) }
        writer.endObject()
    }
}

extension BudgetSettings {
    /// The spend at which `level` fires for `budget`.
    public func threshold(_ level: AlertLevel, of budget: Money) -> Money {
        switch level {
        case .warning: budget.scaled(by: warningFractionPPM, over: 1_000_000)
        case .exceeded: budget
        }
    }

    /// The alerts a period owes now that its spend is `spent`: every level reached and not yet
    /// fired, lowest first. A zero budget is exceeded by any spend at all.
    public func alertsDue(
        scope: BudgetScope, period: String, spent: Money, alreadyFired: (AlertLevel) -> Bool
    ) -> [BudgetAlert] {
        BudgetAlert.due(
            scope, periodKey: period, spent: spent, limit: budget(for: scope), warningFractionPPM: warningFractionPPM, budgetScope: .host,
            alreadyFired: alreadyFired)
    }

    /// The alerts a scoped budget's period owes once its spend is `spent`.
    public func alertsDue(
        _ budget: ScopedBudget, period: BudgetScope, periodKey: String, spent: Money, alreadyFired: (AlertLevel) -> Bool
    ) -> [BudgetAlert] {
        BudgetAlert.due(
            period, periodKey: periodKey, spent: spent, limit: budget.limit(period), warningFractionPPM: budget.warningFractionPPM,
            budgetScope: budget.scope, alreadyFired: alreadyFired)
    }
}
