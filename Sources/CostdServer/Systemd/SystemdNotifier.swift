import CSystemd
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Talks to the service manager through libsystemd's `sd_notify`: readiness, status, watchdog
/// pings, reloads and stops. Without `$NOTIFY_SOCKET` (not run by systemd) every call is a no-op.
public final class SystemdNotifier: Sendable {
    /// Whether a service manager listens.
    public let isEnabled: Bool
    /// Half of `$WATCHDOG_USEC`, when the watchdog is on.
    public let watchdogInterval: TimeAmount?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isEnabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        var usec: UInt64 = 0
        if isEnabled, sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    public func notify(_ state: String) {
        guard isEnabled else { return }
        _ = sd_notify(0, state)
    }

    public func ready(status: String) {
        notify("READY=1\nSTATUS=\(Self.oneLine(status))")
    }

    public func status(_ status: String) {
        notify("STATUS=\(Self.oneLine(status))")
    }

    /// Before a reload; follow with ``ready(status:)``.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        notify("RELOADING=1\nMONOTONIC_USEC=\(usec)\nSTATUS=Reloading the configuration")
    }

    public func stopping() {
        notify("STOPPING=1\nSTATUS=Draining connections")
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }

    /// Pings the watchdog at half its timeout, but only after every event loop of `group` has
    /// run a task: a wedged loop stops the pings, and systemd restarts the daemon.
    public func startWatchdog(group: any EventLoopGroup) -> RepeatedTask? {
        guard let watchdogInterval else { return nil }
        let loops = Array(group.makeIterator())
        let home = group.next()
        return home.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: watchdogInterval) { _ in
            let rounds = loops.map { $0.submit {} }
            return EventLoopFuture.andAllSucceed(rounds, on: home).map { self.notify("WATCHDOG=1") }
        }
    }
}
