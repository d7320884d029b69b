import CostdCore
import CostdRedis
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Periodic upkeep: cache counters into the day's totals, expired entries out of L1, and with
/// Redis the backlog replay, the fleet counters and the known spend.
public struct MaintenanceService: Service {
    let engine: CostdEngine
    let eventLoop: any EventLoop
    let interval: Duration

    public init(engine: CostdEngine, eventLoop: any EventLoop, interval: Duration = .seconds(1)) {
        self.engine = engine
        self.eventLoop = eventLoop
        self.interval = interval
    }

    public func run() async throws {
        // Shutdown cancels the sleep below; that is the normal way out, not an error.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                engine.flushCacheCounters()
                engine.maintain(on: eventLoop)
            }
        }
    }
}

/// Owns the stores' lifetime: on shutdown (after the server has drained, since services stop in
/// reverse order) it writes the last counters, closes the ledger and lets Redis go.
public struct StoreService: Service {
    let engine: CostdEngine
    let logger: Logger

    public init(engine: CostdEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        engine.flushCacheCounters()
        engine.close()
        logger.info("Stores closed")
    }
}

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

    /// Starts connecting; waits up to `waitMillis` for the first connection, and says whether it came.
    public func start(engine: CostdEngine, waitMillis: Int64) -> Bool {
        slot.engine.withLock { $0 = engine }
        client.start()
        subscriber.start()
        return client.waitUntilAvailable(timeoutMillis: waitMillis)
    }

    public func stop() {
        subscriber.stop()
        client.shutdown()
    }
}
