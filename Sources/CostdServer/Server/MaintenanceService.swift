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
