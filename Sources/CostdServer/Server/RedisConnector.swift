import CostdCore
import CostdRedis
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The Redis side of a daemon: the command connections (on the event loops) and the
/// subscription to the events channel, wired to the engine.
public final class RedisConnector: Sendable {
    public let client: RedisClient
    private let subscriber: RedisSubscriber
    /// The engine is made after the client (it needs it), so the callbacks find it here.
    private final class EngineSlot: Sendable {
        let engine = Mutex<CostdEngine?>(nil)
        var value: CostdEngine? { engine.withLock { $0 } }
    }
    private let slot = EngineSlot()

    public init(settings: RedisSettings, group: any EventLoopGroup, logger: Logger) {
        let slot = self.slot
        let eventLoop = group.next()
        client = RedisClient(settings: settings, group: group, logger: logger) { up in
            if up { slot.value?.redisBecameAvailable(on: eventLoop) }
        }
        subscriber = RedisSubscriber(
            settings: settings,
            channel: RedisKeys(prefix: settings.keyPrefix).events,
            eventLoop: group.next(),
            logger: logger,
            onMessage: { payload in slot.value?.handleEvent(payload) },
            onResubscribe: { slot.value?.resynchronizeCache() }
        )
    }

    /// Starts connecting; waits up to `waitMillis` for the first connection and for the spend
    /// check that follows it (eviction policy, canary), and says whether both came.
    public func start(engine: CostdEngine, waitMillis: Int64) -> Bool {
        slot.engine.withLock { $0 = engine }
        client.start()
        subscriber.start()
        return client.waitUntilAvailable(timeoutMillis: waitMillis) && engine.store.waitUntilReady(timeoutMillis: waitMillis)
    }

    public func stop() {
        subscriber.stop()
        client.shutdown()
    }
}
