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

    /// Every counter by the one name it is kept under: in the ledger's compact form and as a
    /// field of Redis's cache statistics hash.
    public static let fields: [(name: String, value: any WritableKeyPath<CacheCounters, Int64> & Sendable)] = [
        ("l1", \.l1Hits), ("l2", \.l2Hits), ("fill", \.fillHits), ("miss", \.misses), ("set", \.sets),
    ]

    /// Adds `amount` to the counter named `name` (one of ``fields``); unknown names are skipped.
    public mutating func add(_ amount: Int64, toField name: some StringProtocol) {
        guard let field = CacheCounters.fields.first(where: { $0.name == name }) else { return }
        self[keyPath: field.value] += amount
    }

    public var hits: Int64 { l1Hits + l2Hits + fillHits }
    public var lookups: Int64 { hits + misses }
    public var hitRate: Double { lookups == 0 ? 0 : Double(hits) / Double(lookups) }
    public var isZero: Bool { self == CacheCounters() }

    public static func + (lhs: CacheCounters, rhs: CacheCounters) -> CacheCounters {
        var sum = lhs
        for field in fields { sum[keyPath: field.value] += rhs[keyPath: field.value] }
        return sum
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
        for field in CacheCounters.fields where self[keyPath: field.value] != 0 {
            let amount = self[keyPath: field.value]
            writer.field(field.name) { $0.int(amount) }
        }
        writer.endObject()
    }

    public init(compact json: JSONValue) {
        self.init()
        for field in CacheCounters.fields {
            self[keyPath: field.value] = json[field.name]?.numberValue?.int64 ?? 0
        }
    }
}
