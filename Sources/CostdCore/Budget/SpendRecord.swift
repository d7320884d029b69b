/// One priced call, as the ledger keeps it and as it is replayed.
///
/// A record with `cached == true` stands for a call that a cache hit avoided: its `cost` is
/// what the call would have cost, and it counts as savings, never as spend.
public struct SpendRecord: Sendable, Equatable {
    public var recordId: String
    public var unixMillis: Int64
    /// The day the record belongs to, fixed when it is made (a later change of time zone does
    /// not move history).
    public var day: String
    public var model: String
    public var user: String?
    public var feature: String?
    /// The caller's systemd unit, when the daemon could tell.
    public var unit: String?
    /// The caller's Unix user as the kernel reports it (SO_PEERCRED), whatever `user` says.
    public var unixUser: String?
    public var cost: Money
    public var cached: Bool
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cachedInputTokens: Int64
    /// What routing saved on this call against the baseline model (zero when not routed down).
    public var routingSaved: Money

    public init(
        recordId: String,
        unixMillis: Int64,
        day: String,
        model: String,
        user: String? = nil,
        feature: String? = nil,
        unit: String? = nil,
        unixUser: String? = nil,
        cost: Money,
        cached: Bool = false,
        inputTokens: Int64 = 0,
        outputTokens: Int64 = 0,
        cachedInputTokens: Int64 = 0,
        routingSaved: Money = .zero
    ) {
        self.recordId = recordId
        self.unixMillis = unixMillis
        self.day = day
        self.model = model
        self.user = user
        self.feature = feature
        self.unit = unit
        self.unixUser = unixUser
        self.cost = cost
        self.cached = cached
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.routingSaved = routingSaved
    }

    /// The spend this record adds to its period (zero for a call a cache hit avoided).
    public var spend: Money { cached ? .zero : cost }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", recordId)
        writer.field("t", unixMillis)
        writer.field("day", day)
        writer.field("model", model)
        if let user { writer.field("user", user) }
        if let feature { writer.field("feature", feature) }
        if let unit { writer.field("unit", unit) }
        if let unixUser { writer.field("uu", unixUser) }
        writer.field("cost", cost.nanos)
        if cached { writer.field("cached", true) }
        writer.field("in", inputTokens)
        writer.field("out", outputTokens)
        if cachedInputTokens != 0 { writer.field("cin", cachedInputTokens) }
        if routingSaved != .zero { writer.field("rsaved", routingSaved.nanos) }
        writer.endObject()
    }

    public init?(json: JSONValue) {
        guard case .object(let object) = json,
            let recordId = object["id"]?.stringValue,
            let unixMillis = object["t"]?.numberValue?.int64,
            let day = object["day"]?.stringValue,
            let model = object["model"]?.stringValue,
            let cost = object["cost"]?.numberValue?.int64
        else { return nil }
        self.init(
            recordId: recordId,
            unixMillis: unixMillis,
            day: day,
            model: model,
            user: object["user"]?.stringValue,
            feature: object["feature"]?.stringValue,
            unit: object["unit"]?.stringValue,
            unixUser: object["uu"]?.stringValue,
            cost: Money(nanos: cost),
            cached: object["cached"]?.boolValue ?? false,
            inputTokens: object["in"]?.numberValue?.int64 ?? 0,
            outputTokens: object["out"]?.numberValue?.int64 ?? 0,
            cachedInputTokens: object["cin"]?.numberValue?.int64 ?? 0,
            routingSaved: Money(nanos: object["rsaved"]?.numberValue?.int64 ?? 0)
        )
    }
}

/// Cache lookups by outcome. `hits` is every lookup that answered with a value.
public struct CacheCounters: Sendable, Equatable {
    public var l1Hits: Int64 = 0
    public var l2Hits: Int64 = 0
    /// Lookups that waited on another caller's lease and got its value (single-flight).
    public var fillHits: Int64 = 0
    public var misses: Int64 = 0
    public var sets: Int64 = 0

    public init(l1Hits: Int64 = 0, l2Hits: Int64 = 0, fillHits: Int64 = 0, misses: Int64 = 0, sets: Int64 = 0) {
        self.l1Hits = l1Hits
        self.l2Hits = l2Hits
        self.fillHits = fillHits
        self.misses = misses
        self.sets = sets
    }

    public var hits: Int64 { l1Hits + l2Hits + fillHits }
    public var lookups: Int64 { hits + misses }
    public var hitRate: Double { lookups == 0 ? 0 : Double(hits) / Double(lookups) }
    public var isZero: Bool { self == CacheCounters() }

    public static func + (lhs: CacheCounters, rhs: CacheCounters) -> CacheCounters {
        CacheCounters(
            l1Hits: lhs.l1Hits + rhs.l1Hits,
            l2Hits: lhs.l2Hits + rhs.l2Hits,
            fillHits: lhs.fillHits + rhs.fillHits,
            misses: lhs.misses + rhs.misses,
            sets: lhs.sets + rhs.sets
        )
    }

    public static func += (lhs: inout CacheCounters, rhs: CacheCounters) { lhs = lhs + rhs }

    public func write(to writer: inout JSONWriter) {
        writer.field("hits", hits)
        writer.field("misses", misses)
        writer.field("hitRate", hitRate)
        writer.field("l1Hits", l1Hits)
        writer.field("l2Hits", l2Hits)
        writer.field("fillHits", fillHits)
        writer.field("sets", sets)
    }

    public func writeCompact(to writer: inout JSONWriter) {
        writer.beginObject()
        if l1Hits != 0 { writer.field("l1", l1Hits) }
        if l2Hits != 0 { writer.field("l2", l2Hits) }
        if fillHits != 0 { writer.field("fill", fillHits) }
        if misses != 0 { writer.field("miss", misses) }
        if sets != 0 { writer.field("set", sets) }
        writer.endObject()
    }

    public init(compact json: JSONValue) {
        self.init(
            l1Hits: json["l1"]?.numberValue?.int64 ?? 0,
            l2Hits: json["l2"]?.numberValue?.int64 ?? 0,
            fillHits: json["fill"]?.numberValue?.int64 ?? 0,
            misses: json["miss"]?.numberValue?.int64 ?? 0,
            sets: json["set"]?.numberValue?.int64 ?? 0
        )
    }
}

/// Cache lookups of a period: in all, by model and by namespace.
public struct CacheCounterSet: Sendable, Equatable {
    public var total = CacheCounters()
    public var byModel: [String: CacheCounters] = [:]
    public var byNamespace: [String: CacheCounters] = [:]

    public init() {}

    public var isZero: Bool { total.isZero && byModel.isEmpty && byNamespace.isEmpty }

    public mutating func add(_ other: CacheCounterSet) {
        total += other.total
        for (model, counters) in other.byModel { byModel[model, default: CacheCounters()] += counters }
        for (namespace, counters) in other.byNamespace { byNamespace[namespace, default: CacheCounters()] += counters }
    }

    public func writeCompact(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("t") { total.writeCompact(to: &$0) }
        for (name, map) in [("m", byModel), ("n", byNamespace)] where !map.isEmpty {
            writer.key(name == "m" ? "m" : "n")
            writer.beginObject()
            for (key, counters) in map.sorted(by: { $0.key < $1.key }) {
                writer.field(key) { counters.writeCompact(to: &$0) }
            }
            writer.endObject()
            writer.comma()
        }
        writer.endObject()
    }

    public init(compact json: JSONValue) {
        // Older entries hold the totals only.
        if let total = json["t"] {
            self.total = CacheCounters(compact: total)
        } else {
            self.total = CacheCounters(compact: json)
        }
        for member in json["m"]?.objectValue?.members ?? [] { byModel[member.key] = CacheCounters(compact: member.value) }
        for member in json["n"]?.objectValue?.members ?? [] { byNamespace[member.key] = CacheCounters(compact: member.value) }
    }
}
