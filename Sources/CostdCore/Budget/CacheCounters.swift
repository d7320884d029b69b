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
