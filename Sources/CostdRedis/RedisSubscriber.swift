import CostdCore
import Logging
import NIOCore
import Synchronization

/// Listens on one pub/sub channel on a connection of its own, on one event loop, and hands
/// every message to `onMessage` there. After a reconnect, `onResubscribe` runs first: messages
/// sent while it was away are lost, so whoever relies on them must resynchronise.
public final class RedisSubscriber: Sendable {
    private let slot: RedisConnectionSlot

    public init(
        settings: RedisSettings,
        channel: String,
        eventLoop: any EventLoop,
        logger: Logger,
        onMessage: @escaping @Sendable ([UInt8]) -> Void,
        onResubscribe: @escaping @Sendable () -> Void
    ) {
        let everSubscribed = SubscribedFlag()
        slot = RedisConnectionSlot(
            eventLoop: eventLoop,
            settings: settings,
            role: .subscriber(channel: channel, onMessage: onMessage),
            name: "costd-sub",
            events: .init(
                ready: {
                    if everSubscribed.value.exchange(true, ordering: .relaxed) { onResubscribe() }
                },
                failed: { error, wasReady in
                    if wasReady { logger.debug("Redis subscription lost", metadata: ["error": "\(error)"]) }
                }
            )
        )
    }

    public func start() {
        slot.start()
    }

    public func stop() {
        slot.stop()
    }
}

/// Whether the subscriber has been subscribed before (a later subscription is a resubscribe).
private final class SubscribedFlag: Sendable {
    let value = Atomic<Bool>(false)
}
