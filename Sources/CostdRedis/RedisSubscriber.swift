import CostdCore
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Listens on one pub/sub channel on a connection and thread of its own, and hands every
/// message to `onMessage` (on that thread). After a reconnect, `onResubscribe` runs first:
/// messages sent while it was away are lost, so whoever relies on them must resynchronise.
public final class RedisSubscriber: Sendable {
    private let settings: RedisSettings
    private let channel: String
    private let logger: Logger
    private let onMessage: @Sendable ([UInt8]) -> Void
    private let onResubscribe: @Sendable () -> Void
    private let stopped = Atomic<Bool>(false)
    /// The socket of the live connection, so that `stop()` can unblock its read.
    private let socket = Atomic<Int32>(-1)
    private let subscribed = Atomic<Bool>(false)

    public init(
        settings: RedisSettings,
        channel: String,
        logger: Logger,
        onMessage: @escaping @Sendable ([UInt8]) -> Void,
        onResubscribe: @escaping @Sendable () -> Void
    ) {
        self.settings = settings
        self.channel = channel
        self.logger = logger
        self.onMessage = onMessage
        self.onResubscribe = onResubscribe
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "costd-redis-sub"
        thread.start()
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        let fd = socket.load(ordering: .relaxed)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Whether the subscription is live now.
    public var isSubscribed: Bool { subscribed.load(ordering: .relaxed) }

    private func run() {
        // No read timeout: the thread blocks until a message arrives or `stop()` shuts the
        // socket down (a hiredis context is unusable after a timeout).
        let connection = RedisConnection(
            endpoint: settings.endpoint,
            connectTimeoutMillis: settings.connectTimeoutMillis,
            commandTimeoutMillis: 0,
            maxReplyBytes: settings.maxReplyBytes,
            name: "costd-sub"
        )
        var backoffMillis: UInt32 = 50
        var everSubscribed = false
        while !stopped.load(ordering: .relaxed) {
            do {
                try connection.connect()
                socket.store(connection.fileDescriptor, ordering: .relaxed)
                try connection.send(.make("SUBSCRIBE", channel))
                guard let confirmation = try connection.receive(), confirmation.array?.first?.text == "subscribe" else {
                    throw RedisError.connection("SUBSCRIBE was not confirmed")
                }
                subscribed.store(true, ordering: .relaxed)
                backoffMillis = 50
                if everSubscribed { onResubscribe() }
                everSubscribed = true
                while !stopped.load(ordering: .relaxed) {
                    guard let reply = try connection.receive() else { break }
                    guard let parts = reply.array, parts.count == 3, parts[0].text == "message", let payload = parts[2].bytes else {
                        continue
                    }
                    onMessage(payload)
                }
            } catch {
                if !stopped.load(ordering: .relaxed) {
                    logger.debug("Redis subscription lost", metadata: ["error": "\(error)"])
                }
            }
            subscribed.store(false, ordering: .relaxed)
            socket.store(-1, ordering: .relaxed)
            connection.disconnect()
            if stopped.load(ordering: .relaxed) { break }
            usleep(backoffMillis * 1000)
            backoffMillis = min(backoffMillis * 2, 2_000)
        }
    }
}
