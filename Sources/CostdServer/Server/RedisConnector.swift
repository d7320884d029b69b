import CostdCore
import CostdRedis
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The Redis side of a daemon: the command connections (on the event loops) and the
/// subscription to the events channel, wired to the engine.
public final class RedisConnector: Sendable {
    /// The cache's Redis (and spend's, without `redis.spend_url`).
    public let client: RedisClient
    /// Spend's Redis: `client` itself, or a Redis of its own (`redis.spend_url`).
    public let spendClient: RedisClient
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
        // Spend's store catches up when spend's Redis comes (back).
        let spendAvailable: @Sendable (Bool) -> Void = { up in
            if up { slot.value?.redisBecameAvailable(on: eventLoop) }
        }
        if settings.spendEndpoint != nil {
            var spendLogger = logger
            spendLogger[metadataKey: "redis.role"] = "spend"
            client = RedisClient(settings: settings, group: group, logger: logger)
            spendClient = RedisClient(settings: settings.forSpend, group: group, logger: spendLogger, onStateChange: spendAvailable)
        } else {
            client = RedisClient(settings: settings, group: group, logger: logger, onStateChange: spendAvailable)
            spendClient = client
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
        if spendClient !== client { spendClient.start() }
        subscriber.start()
        return client.waitUntilAvailable(timeoutMillis: waitMillis) && spendClient.waitUntilAvailable(timeoutMillis: waitMillis)
            && engine.store.waitUntilReady(timeoutMillis: waitMillis)
    }

    public func stop() {
        subscriber.stop()
        client.shutdown()
        if spendClient !== client { spendClient.shutdown() }
    }
}
