/// The routing decisions `route` handed out, by number, until a `record` claims them.
///
/// This is what makes a routing saving true: a record claims one only with the `routeId` of a
/// decision costd made, once, for the model costd chose. A record without one, with an unknown
/// or expired one, or on another model than the routed one claims nothing.
///
/// Decisions are numbered in the order they are issued and kept in a ring of `capacity` slots
/// (the oldest are overwritten first) for `ttlMillis`: a program that routes and never records
/// costs bounded memory, and issuing or claiming one is an array index, no hashing.
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

    private struct Slot: Sendable {
        var number: UInt64
        var decision: Decision?
        var expiresAtMillis: Int64
    }

    public static let defaultTTLMillis: Int64 = 3_600_000
    public static let defaultCapacity = 100_000

    public let ttlMillis: Int64
    public let capacity: Int
    /// Grows to `capacity`, then wraps around.
    private var slots: [Slot] = []
    private var next: UInt64 = 1

    public init(ttlMillis: Int64 = IssuedRoutes.defaultTTLMillis, capacity: Int = IssuedRoutes.defaultCapacity) {
        precondition(ttlMillis > 0 && capacity > 0, "an issued route must be kept a while")
        self.ttlMillis = ttlMillis
        self.capacity = capacity
    }

    /// How many decisions wait for their record.
    public func count(nowMillis: Int64) -> Int {
        slots.reduce(0) { $0 + ($1.decision != nil && $1.expiresAtMillis > nowMillis ? 1 : 0) }
    }

    /// Remembers `decision` until `nowMillis + ttlMillis`; its number.
    public mutating func issue(_ decision: Decision, nowMillis: Int64) -> UInt64 {
        let number = next
        next += 1
        let slot = Slot(number: number, decision: decision, expiresAtMillis: nowMillis + ttlMillis)
        if slots.count < capacity {
            slots.append(slot)
        } else {
            slots[Int((number - 1) % UInt64(capacity))] = slot
        }
        return number
    }

    /// The decision issued as `number`, if it is still kept; it cannot be claimed again.
    public mutating func claim(_ number: UInt64, nowMillis: Int64) -> Decision? {
        guard number > 0, number < next else { return nil }
        let index = Int((number - 1) % UInt64(capacity))
        guard index < slots.count, slots[index].number == number, let decision = slots[index].decision else { return nil }
        slots[index].decision = nil
        return slots[index].expiresAtMillis > nowMillis ? decision : nil
    }
}
