import CostdCore

/// Every key and channel costd uses in Redis, in one place (docs/REDIS.md draws the same map).
///
/// Spend keys share the hash tag `{s}`, so every key one script touches lives in one Redis
/// Cluster slot; a cache value and its lease share the tag of their digest.
public struct RedisKeys: Sendable {
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// `P` `c:` namespace-hex `:{` digest `}`: a cached value. The namespace is in the key (as hex,
    /// so no glob character can appear) so that a namespace can be flushed with one SCAN pattern.
    public func cacheValue(_ key: CacheKey, namespace: String) -> String {
        prefix + "c:" + RedisKeys.hex(namespace) + ":{" + key.hex + "}"
    }

    /// What a cached value's answer cost (nano-dollars), beside it with the same expiry, when
    /// `cacheSet` was told; under the value's pattern, so a flush takes it too.
    public func cacheAnswerCost(_ key: CacheKey, namespace: String) -> String {
        cacheValue(key, namespace: namespace) + ":c"
    }

    /// The SCAN pattern of every cached value of a namespace, or of all of them.
    public func cachePattern(namespace: String?) -> String {
        guard let namespace else { return prefix + "c:*" }
        return prefix + "c:" + RedisKeys.hex(namespace) + ":*"
    }

    /// The single-flight lease of a cache key.
    public func lease(_ key: CacheKey) -> String {
        prefix + "l:{" + key.hex + "}"
    }

    /// The first result of a record id (exactly-once).
    public func record(_ recordId: String) -> String { prefix + "{s}:rec:" + recordId }
    /// Spend of a day: totals and breakdowns in one hash.
    public func day(_ day: String) -> String { prefix + "{s}:d:" + day }
    /// Spend of a month.
    public func month(_ month: String) -> String { prefix + "{s}:m:" + month }
    /// Set once when an alert has fired.
    public func alert(_ scope: BudgetScope, _ period: String, _ level: AlertLevel) -> String {
        prefix + "{s}:a:" + scope.rawValue + ":" + period + ":" + level.rawValue
    }
    /// The alert flags of the scoped budgets for one period (a day or a month): one hash, fields
    /// `<scope key>␟<level>` set once (HSETNX), so the period's flags go with it in one UNLINK.
    public func scopedAlerts(_ period: String) -> String { prefix + "{s}:ab:" + period }
    /// The field of a scoped budget's alert in ``scopedAlerts(_:)``.
    public static func scopedAlertField(_ budget: String, _ level: AlertLevel) -> String {
        budget + SpendSchema.separator + level.rawValue
    }
    /// The budget and level a field of ``scopedAlerts(_:)`` names.
    public static func scopedAlert(field: String) -> (budget: String, level: AlertLevel)? {
        guard let separator = field.lastIndex(of: Character(SpendSchema.separator)),
            let level = AlertLevel(rawValue: String(field[field.index(after: separator)...]))
        else { return nil }
        return (String(field[..<separator]), level)
    }
    /// Every alert of the fleet, in order: a stream whose entry ids are the alerts' ids.
    public var alertStream: String { prefix + "{s}:alerts" }
    /// The canary: a random token, with no TTL, set by the first daemon. While it holds the token
    /// a daemon knows, Redis still has every record that daemon counted; when it is missing or
    /// new, Redis lost spend (a flush, an eviction, a restart without persistence).
    public var spendEpoch: String { prefix + "{s}:epoch" }
    /// `<epoch>:<daemon>` fields: which daemons have put their spend back since the epoch began.
    public var spendRestored: String { prefix + "{s}:restored" }
    /// The four alert flags of a day and its month, in the order the record script reads them:
    /// day warning, day exceeded, month warning, month exceeded.
    public static func alertFlags(day: String) -> [(scope: BudgetScope, period: String, level: AlertLevel)] {
        let month = PeriodCalendar.monthKey(ofDay: day)
        return [(.day, day, .warning), (.day, day, .exceeded), (.month, month, .warning), (.month, month, .exceeded)]
    }

    /// Open reservations: by expiry (sorted set) and their amounts (hash), and the reserved total per period.
    public var reservationExpiry: String { prefix + "{s}:rsv:exp" }
    public var reservationAmounts: String { prefix + "{s}:rsv:amt" }
    public var reservedTotals: String { prefix + "{s}:rsv:tot" }
    /// Cache lookups of every daemon, per day.
    public func cacheStatistics(_ day: String) -> String { prefix + "stats:" + day }
    /// Invalidations and fills between daemons.
    public var events: String { prefix + "events" }

    static func hex(_ text: String) -> String {
        Hex.string(text.utf8)
    }
}
