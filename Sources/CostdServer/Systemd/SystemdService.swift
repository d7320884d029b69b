import CSystemd
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Sends `STOPPING=1` as soon as a graceful shutdown starts (it is the last service in the group,
/// so it is told first), and keeps the watchdog and the status line going until then.
public struct SystemdService: Service {
    let notifier: SystemdNotifier
    let group: any EventLoopGroup
    let engine: CostdEngine
    let statusInterval: Duration

    public init(notifier: SystemdNotifier, group: any EventLoopGroup, engine: CostdEngine, statusInterval: Duration = .seconds(5)) {
        self.notifier = notifier
        self.group = group
        self.engine = engine
        self.statusInterval = statusInterval
    }

    public func run() async throws {
        let watchdog = notifier.startWatchdog(group: group)
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: statusInterval)
                notifier.status(engine.statusLine())
            }
        }
        notifier.stopping()
        // Keep pinging while draining: a long drain is not a hang.
        _ = watchdog
    }
}
