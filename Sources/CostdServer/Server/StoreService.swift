import CostdCore
import CostdRedis
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

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
