/// The alerts of a daemon (its own without Redis; the fleet's stream, mirrored, with it), in id
/// order, the latest `capacity` kept: what `subscribe {since}` and `costctl alerts` replay.
public struct AlertLog: Sendable {
    public static let defaultCapacity = 10_000
    public let capacity: Int
    public private(set) var events: [AlertEvent] = []

    public init(capacity: Int = AlertLog.defaultCapacity) {
        self.capacity = capacity
    }

    public var lastId: AlertId? { events.last?.id }

    /// Appends an alert fired at `at`, with the next id (never below the last one, even if the
    /// clock went back).
    @discardableResult
    public mutating func append(_ alert: BudgetAlert, at: Int64) -> AlertEvent {
        var id = AlertId(millis: at, sequence: 0)
        if let last = lastId, id <= last { id = AlertId(millis: last.millis, sequence: last.sequence + 1) }
        let event = AlertEvent(id: id, alert: alert, at: at)
        add(event)
        return event
    }

    /// Adds an event that has its id (from Redis's stream); false when it is not after the last.
    @discardableResult
    public mutating func mirror(_ event: AlertEvent) -> Bool {
        if let last = lastId, event.id <= last { return false }
        add(event)
        return true
    }

    private mutating func add(_ event: AlertEvent) {
        events.append(event)
        if events.count > capacity + capacity / 4 { events.removeFirst(events.count - capacity) }
    }

    /// The events after `id` (all of them for nil), oldest first.
    public func after(_ id: AlertId?) -> ArraySlice<AlertEvent> {
        guard let id else { return events[...] }
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[middle].id <= id { low = middle + 1 } else { high = middle }
        }
        return events[low...]
    }
}
