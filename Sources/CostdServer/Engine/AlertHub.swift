import CostdCore
import CostdProtocol
import NIOCore
import Synchronization

/// The connections that `subscribe`d to alerts, and what each has been sent.
///
/// The alerts themselves are the ledger's ``AlertLog`` (this daemon's, or with Redis the fleet's
/// stream mirrored): a subscriber is sent every alert after the last one it was sent, in id
/// order, whoever made it and whenever it arrives. Replay (`since`) and live delivery are the
/// same step under one lock, so no alert is sent twice or skipped between them.
final class AlertHub: Sendable {
    private struct Subscriber {
        var channel: any Channel
        var last: AlertId?
    }

    private let ledger: SpendLedger
    private let subscribers = Mutex<[Int: Subscriber]>([:])
    private let nextId = Atomic<Int>(0)

    init(ledger: SpendLedger) {
        self.ledger = ledger
    }

    var count: Int { subscribers.withLock { $0.count } }

    /// Sends `channel` every alert after `since` (none when nil: only those still to come), then
    /// every new one, until the channel closes.
    func subscribe(_ channel: any Channel, since: AlertId?) {
        let id = nextId.wrappingAdd(1, ordering: .relaxed).newValue
        subscribers.withLock { subscribers in
            var subscriber = Subscriber(channel: channel, last: since ?? ledger.lastAlertId)
            AlertHub.send(ledger.alerts(after: subscriber.last), to: &subscriber)
            subscribers[id] = subscriber
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.subscribers.withLock { $0.removeValue(forKey: id) }
        }
    }

    /// New alerts are in the log: each subscriber gets those it has not had.
    func deliver() {
        subscribers.withLock { subscribers in
            guard !subscribers.isEmpty else { return }
            for id in subscribers.keys {
                let pending = ledger.alerts(after: subscribers[id]!.last)
                AlertHub.send(pending, to: &subscribers[id]!)
            }
        }
    }

    /// Writes each event as a notification frame. Called under the lock: writes to a channel
    /// from one thread run on its loop in the order they were made.
    private static func send(_ events: [AlertEvent], to subscriber: inout Subscriber) {
        guard !events.isEmpty else { return }
        var frames = subscriber.channel.allocator.buffer(capacity: events.count * 200)
        for event in events {
            var writer = JSONWriter(reservingCapacity: 192)
            event.writeNotification(to: &writer)
            frames.writeFrame(writer.bytes)
        }
        subscriber.channel.writeAndFlush(frames, promise: nil)
        subscriber.last = events.last?.id
    }
}
