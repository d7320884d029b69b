import CSystemd
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Re-reads the configuration on SIGHUP and swaps it in atomically; a bad one is logged and the
/// old one stays. In-flight and idle connections are not touched.
public struct ReloadService: Service {
    let engine: CostdEngine
    let notifier: SystemdNotifier
    let logger: Logger
    let load: @Sendable () throws -> Rules

    public init(engine: CostdEngine, notifier: SystemdNotifier, logger: Logger, load: @escaping @Sendable () throws -> Rules) {
        self.engine = engine
        self.notifier = notifier
        self.logger = logger
        self.load = load
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading()
            do {
                let rules = try load()
                let old = engine.rules.configuration
                try engine.replaceRules(rules)
                let new = rules.configuration
                if old.redis != new.redis || old.cache.maxBytes != new.cache.maxBytes || old.socketPath != new.socketPath
                    || old.stateDirectory != new.stateDirectory || old.limits != new.limits
                {
                    logger.warning("Reloaded; socket, state directory, limits, L1 size and Redis changes take effect at the next restart")
                } else {
                    logger.notice("Reloaded the configuration", metadata: ["prices": "\(rules.prices.count)"])
                }
            } catch {
                logger.error("Reload rejected; the previous configuration stays", metadata: ["reason": "\(error)"])
            }
            notifier.ready(status: engine.statusLine())
        }
    }
}
