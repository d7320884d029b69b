/// The names spend is kept under, written once. The ledger's snapshot, Redis's day hash, the
/// record script's increments (its Lua is built from these names) and the readers of both
/// stores all come from here; a field added here is written and read everywhere.
///
/// In Redis a day is one hash: the totals by name (`spent`, `n`, …), and each breakdown as
/// `<kind>␟<name>␟<field>` (`m␟gpt-4o␟cost`), `␟` being the unit separator U+001F, which
/// names may not contain. In the ledger's snapshot a day is an object with the same total
/// names and one object per breakdown kind.
public enum SpendSchema {
    /// A period's totals: its field names.
    public enum Total {
        public static let spent = "spent"
        public static let requests = "n"
        public static let cachedRequests = "cn"
        public static let savedByCache = "savedCache"
        public static let savedByRouting = "savedRouting"
        public static let inputTokens = "in"
        public static let outputTokens = "out"
        public static let cachedInputTokens = "cin"
    }

    /// A breakdown's field names.
    public enum Breakdown {
        public static let cost = "cost"
        public static let requests = "n"
        public static let inputTokens = "in"
        public static let outputTokens = "out"
        public static let cachedRequests = "cn"
        public static let saved = "saved"
    }

    /// Every total, with where it lives in ``PeriodTotals``.
    public static let totals: [(name: String, value: any WritableKeyPath<PeriodTotals, Int64> & Sendable)] = [
        (Total.spent, \.spent.nanos), (Total.requests, \.requests), (Total.cachedRequests, \.cachedRequests),
        (Total.savedByCache, \.savedByCache.nanos), (Total.savedByRouting, \.savedByRouting.nanos),
        (Total.inputTokens, \.inputTokens), (Total.outputTokens, \.outputTokens),
        (Total.cachedInputTokens, \.cachedInputTokens),
    ]

    /// Every breakdown field, with where it lives in ``SpendBreakdown``.
    public static let breakdownFields: [(name: String, value: any WritableKeyPath<SpendBreakdown, Int64> & Sendable)] = [
        (Breakdown.cost, \.cost.nanos), (Breakdown.requests, \.requests), (Breakdown.inputTokens, \.inputTokens),
        (Breakdown.outputTokens, \.outputTokens), (Breakdown.cachedRequests, \.cachedRequests), (Breakdown.saved, \.saved.nanos),
    ]

    /// A kind of breakdown: its one-letter kind in Redis, its name in the snapshot, where it
    /// lives in ``PeriodTotals`` and which names of a record it counts under.
    public struct Kind: Sendable {
        public let letter: String
        public let snapshotName: String
        public let map: any WritableKeyPath<PeriodTotals, [String: SpendBreakdown]> & Sendable
        public let names: @Sendable (SpendRecord) -> [String]
    }

    /// The breakdown of the scoped budgets: a record counts under each it matched. In Redis the
    /// month hash keeps it too (`b␟<scope key>␟cost`), as monthly budgets need it.
    public static let budgets = Kind(letter: "b", snapshotName: "budgets", map: \.byBudget, names: { $0.budgets })

    public static let kinds: [Kind] = [
        Kind(letter: "m", snapshotName: "models", map: \.byModel, names: { [$0.model] }),
        Kind(letter: "u", snapshotName: "users", map: \.byUser, names: { $0.user.map { [$0] } ?? [] }),
        Kind(letter: "f", snapshotName: "features", map: \.byFeature, names: { $0.feature.map { [$0] } ?? [] }),
        Kind(letter: "x", snapshotName: "units", map: \.byUnit, names: { $0.unit.map { [$0] } ?? [] }),
        Kind(letter: "o", snapshotName: "unixUsers", map: \.byUnixUser, names: { $0.unixUser.map { [$0] } ?? [] }),
        budgets,
    ]

    public static let separator = "\u{1F}"

    /// The key of a period among others: `d:<day>` or `m:<month>` (reserved money in the ledger
    /// and in Redis's `rsv:tot` hash, spend known per period, the backlog's totals).
    public static func periodKey(_ scope: BudgetScope, _ period: String) -> String {
        (scope == .day ? "d:" : "m:") + period
    }

    /// The key of a scoped budget's period: `d:<day>␟<scope key>` (its reserved money, in the
    /// ledger and in Redis's `rsv:tot` hash); the host's (``periodKey(_:_:)``) for nil.
    public static func periodKey(_ scope: BudgetScope, _ period: String, budget: String?) -> String {
        guard let budget else { return periodKey(scope, period) }
        return periodKey(scope, period) + separator + budget
    }

    /// `b␟<scope key>␟cost`: a scoped budget's spend in Redis's day and month hashes.
    public static func budgetSpendField(_ key: String) -> String {
        breakdownPrefix(budgets, key) + separator + Breakdown.cost
    }

    /// `<kind>␟<name>`: the prefix of a breakdown's fields in the Redis day hash.
    public static func breakdownPrefix(_ kind: Kind, _ name: String) -> String {
        kind.letter + separator + name
    }

    /// Writes totals as Redis day hash fields (the inverse of ``periodTotals(fromDayHash:)``,
    /// without the zero ones; cache lookups live in a hash of their own).
    public static func dayHashFields(of totals: PeriodTotals) -> [(field: String, amount: Int64)] {
        var fields: [(field: String, amount: Int64)] = []
        for total in SpendSchema.totals where totals[keyPath: total.value] != 0 {
            fields.append((total.name, totals[keyPath: total.value]))
        }
        for kind in kinds {
            for (name, breakdown) in totals[keyPath: kind.map].sorted(by: { $0.key < $1.key }) {
                for field in breakdownFields where breakdown[keyPath: field.value] != 0 {
                    fields.append((breakdownPrefix(kind, name) + separator + field.name, breakdown[keyPath: field.value]))
                }
            }
        }
        return fields
    }

    /// Reads a Redis day hash (field → decimal integer) into totals.
    public static func periodTotals(fromDayHash fields: [String: [UInt8]]) -> PeriodTotals {
        func number(_ bytes: [UInt8]?) -> Int64 { bytes.flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0 }
        var totals = PeriodTotals()
        for total in SpendSchema.totals { totals[keyPath: total.value] = number(fields[total.name]) }
        for (field, value) in fields {
            let parts = field.split(separator: Character(separator), omittingEmptySubsequences: false)
            guard parts.count == 3, let kind = kinds.first(where: { $0.letter == parts[0] }),
                let breakdownField = breakdownFields.first(where: { $0.name == parts[2] })
            else { continue }
            totals[keyPath: kind.map][String(parts[1]), default: SpendBreakdown()][keyPath: breakdownField.value] = number(value)
        }
        return totals
    }
}
