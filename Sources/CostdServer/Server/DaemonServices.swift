import CostdCore
import Logging
import ServiceLifecycle

/// Periodic upkeep: cache counters into the day's totals, expired entries out of L1.
public struct MaintenanceService: Service {
    let engine: CostdEngine
    let counterInterval: Duration
    let sweepInterval: Duration

    public init(engine: CostdEngine, counterInterval: Duration = .seconds(2), sweepInterval: Duration) {
        self.engine = engine
        self.counterInterval = counterInterval
        self.sweepInterval = sweepInterval
    }

    public func run() async throws {
        // Shutdown cancels the sleep below; that is the normal way out, not an error.
        try? await cancelWhenGracefulShutdown {
            let clock = ContinuousClock()
            var nextSweep = clock.now + sweepInterval
            while !Task.isCancelled {
                try await Task.sleep(for: counterInterval)
                engine.flushCacheCounters()
                if clock.now >= nextSweep {
                    engine.sweepExpiredCacheEntries()
                    nextSweep = clock.now + sweepInterval
                }
            }
        }
    }
}

/// Owns the ledger's lifetime: on shutdown (after the server has drained, since services stop
/// in reverse order) it writes the last counters and closes the log.
public struct LedgerService: Service {
    let engine: CostdEngine
    let logger: Logger

    public init(engine: CostdEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        engine.flushCacheCounters()
        engine.ledger.close()
        logger.info("Ledger closed")
    }
}
