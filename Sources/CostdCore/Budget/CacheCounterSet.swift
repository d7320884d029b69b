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
