/// The routing decisions `route` handed out, by `routeId`, until a `record` claims them.
///
/// This is what makes a routing saving true: a record claims one only with the `routeId` of a
/// decision costd made, once, for the model costd chose. A record without one, with an unknown
/// or expired one, or on another model than the routed one claims nothing.
///
/// Decisions are kept `ttlMillis` and at most `capacity` of them (the oldest go first), so a
/// program that routes and never records costs bounded memory.
public struct IssuedRoutes: Sendable {
    /// One decision: what the caller would have used, and what costd chose.
    public struct Decision: Sendable, Equatable {
        /// The model the caller asked for, or `baseline_model` when it asked for none.
        public var requestedModel: String
        public var routedModel: String

        public init(requestedModel: String, routedModel: String) {
            self.requestedModel = requestedModel
            self.routedModel = routedModel
        }
    }

    private struct Issued: Sendable {
        var decision: Decision
        var expiresAtMillis: Int64
    }

    public static let defaultTTLMillis: Int64 = 3_600_000
    public static let defaultCapacity = 100_000

    public let ttlMillis: Int64
    public let capacity: Int
    private var byId: [String: Issued] = [:]
    /// Ids in the order they were issued (hence of expiry: the TTL is one for all); claimed ids
    /// stay here until their turn comes and are skipped then.
    private var order: [String] = []
    private var orderStart = 0

    public init(ttlMillis: Int64 = IssuedRoutes.defaultTTLMillis, capacity: Int = IssuedRoutes.defaultCapacity) {
        precondition(ttlMillis > 0 && capacity > 0, "an issued route must be kept a while")
        self.ttlMillis = ttlMillis
        self.capacity = capacity
    }

    /// How many decisions wait for their record.
    public var count: Int { byId.count }

    /// Remembers `decision` under `id` until `nowMillis + ttlMillis`.
    public mutating func issue(_ decision: Decision, id: String, nowMillis: Int64) {
        dropExpired(nowMillis: nowMillis)
        while byId.count >= capacity, orderStart < order.count {
            byId.removeValue(forKey: order[orderStart])
            orderStart += 1
        }
        byId[id] = Issued(decision: decision, expiresAtMillis: nowMillis + ttlMillis)
        order.append(id)
    }

    /// The decision issued under `id`, if it is still kept; it cannot be claimed again.
    public mutating func claim(_ id: String, nowMillis: Int64) -> Decision? {
        guard let issued = byId.removeValue(forKey: id), issued.expiresAtMillis > nowMillis else { return nil }
        return issued.decision
    }

    private mutating func dropExpired(nowMillis: Int64) {
        while orderStart < order.count {
            let id = order[orderStart]
            if let issued = byId[id] {
                guard issued.expiresAtMillis <= nowMillis else { break }
                byId.removeValue(forKey: id)
            }
            orderStart += 1
        }
        // Keep the queue's dead head from growing without end.
        if orderStart > 1_024 && orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
