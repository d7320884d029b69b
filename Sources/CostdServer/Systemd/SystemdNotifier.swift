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

/// The listening socket systemd passed in (socket activation), if any.
public enum SocketActivation {
    public static let firstDescriptor: Int32 = 3

    /// The inherited listening Unix stream socket, or nil when not socket-activated. Throws when
    /// systemd passed something costd cannot serve.
    public static func inheritedSocket() throws -> Int32? {
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        let fd = firstDescriptor
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw SystemError("socket activation: fd \(fd) is not a listening Unix stream socket", errno: EINVAL)
        }
        return fd
    }
}
