/// What a budget applies to: calls whose attributes all match (`{"user": "ann"}`, `{"feature":
/// "etl", "model": "gpt-4o"}`); the empty scope is the host budget's, which every call matches.
///
/// Its ``key``, the canonical JSON of the object, names the budget's spend, reservations and
/// alert flags in both stores; it never contains a control character, so it is safe between
/// the unit separators of Redis's hash fields.
public struct SpendScope: Sendable, Hashable, CustomStringConvertible {
    /// The attributes a scope may name, as the config and the protocol spell them.
    public enum Dimension: String, Sendable, CaseIterable, Comparable {
        case feature
        case model
        case unit
        case unixUser = "unix_user"
        case user

        public static func < (lhs: Dimension, rhs: Dimension) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The attributes, by dimension, in the order of their names.
    public private(set) var values: [(dimension: Dimension, value: String)]
    public let key: String

    public static let host = SpendScope([:])

    public init(_ values: [Dimension: String]) {
        self.values = values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var writer = JSONWriter()
        SpendScope.write(self.values, to: &writer)
        self.key = String(decoding: writer.bytes, as: UTF8.self)
    }

    /// The scope a ``key`` names (nil when it is not one).
    public init?(key: String) {
        guard case .object(let object)? = try? JSONParser.parse(Array(key.utf8)) else { return nil }
        var values: [Dimension: String] = [:]
        for member in object.members {
            guard let dimension = Dimension(rawValue: member.key), let value = member.value.stringValue else { return nil }
            values[dimension] = value
        }
        self.init(values)
        guard self.key == key else { return nil }
    }

    public var isHost: Bool { values.isEmpty }
    public var description: String { key }

    public static func == (lhs: SpendScope, rhs: SpendScope) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// Whether a call with these attributes counts toward the scope.
    public func matches(_ attributes: SpendAttributes) -> Bool {
        values.allSatisfy { attributes[$0.dimension] == $0.value }
    }

    /// The scope as the JSON object alerts, errors and reports carry.
    public func write(to writer: inout JSONWriter) {
        SpendScope.write(values, to: &writer)
    }

    private static func write(_ values: [(dimension: Dimension, value: String)], to writer: inout JSONWriter) {
        writer.beginObject()
        for (dimension, value) in values {
            writer.key(dimension.rawValue)
            writer.string(value)
            writer.comma()
        }
        writer.endObject()
    }
}

/// The attributes of a call that scopes match against.
public struct SpendAttributes: Sendable, Equatable {
    public var user: String?
    public var feature: String?
    public var unixUser: String?
    public var unit: String?
    public var model: String?

    public init(user: String? = nil, feature: String? = nil, unixUser: String? = nil, unit: String? = nil, model: String? = nil) {
        self.user = user
        self.feature = feature
        self.unixUser = unixUser
        self.unit = unit
        self.model = model
    }

    public init(_ record: SpendRecord) {
        self.init(user: record.user, feature: record.feature, unixUser: record.unixUser, unit: record.unit, model: record.model)
    }

    public subscript(dimension: SpendScope.Dimension) -> String? {
        switch dimension {
        case .user: user
        case .feature: feature
        case .unixUser: unixUser
        case .unit: unit
        case .model: model
        }
    }
}

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
