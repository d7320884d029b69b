import CostdCore
import NIOCore
import NIOPosix
import Synchronization

/// One connection to Redis kept open on one event loop. It connects, runs the handshake every
/// new connection needs (`AUTH`, `SELECT`, `CLIENT SETNAME`, and `SUBSCRIBE` for a subscriber),
/// and after any loss connects again with backoff (50 ms doubling to 2 s).
///
/// Its mutable state belongs to its event loop: every method but ``isReady`` and ``stop()``
/// runs there, which is what makes the `@unchecked Sendable` true.
final class RedisConnectionSlot: @unchecked Sendable {
    enum Role: Sendable {
        case commands
        /// Subscribes to `channel`; every message's payload goes to `onMessage`, on the event loop.
        case subscriber(channel: String, onMessage: @Sendable ([UInt8]) -> Void)
    }

    /// What the owner hears: the connection became usable, or a connection (or an attempt at
    /// one) failed. `wasReady` tells a lost connection from a failed attempt.
    struct Events: Sendable {
        var ready: @Sendable () -> Void
        var failed: @Sendable (_ error: RedisError, _ wasReady: Bool) -> Void
    }

    let eventLoop: any EventLoop
    private let settings: RedisSettings
    private let role: Role
    private let name: String
    private let events: Events
    private let ready = Atomic<Bool>(false)

    // Owned by the event loop.
    private var handler: RedisChannelHandler?
    private var channel: (any Channel)?
    private var backoffMillis: Int64 = 50
    private var stopped = false
    private var attempt = 0

    init(eventLoop: any EventLoop, settings: RedisSettings, role: Role, name: String, events: Events) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.role = role
        self.name = name
        self.events = events
    }

    /// Whether the connection is up and its handshake done; readable from any thread.
    var isReady: Bool { ready.load(ordering: .relaxed) }

    func start() {
        eventLoop.execute { self.connect() }
    }

    /// Closes the connection for good; calls waiting on it fail.
    func stop() {
        eventLoop.execute {
            self.stopped = true
            self.ready.store(false, ordering: .relaxed)
            self.handler?.close(.unavailable)
            self.channel?.close(promise: nil)
        }
    }

    /// Sends a call on this connection. On the event loop only.
    func send(_ commands: [RedisCommand], deadline: NIODeadline, promise: EventLoopPromise<[RedisReply]>) {
        eventLoop.preconditionInEventLoop()
        guard let handler, ready.load(ordering: .relaxed) else {
            promise.fail(RedisError.unavailable)
            return
        }
        handler.send(commands, deadline: deadline, promise: promise)
    }

    // MARK: - Connecting

    private func connect() {
        guard !stopped else { return }
        attempt += 1
        let thisAttempt = attempt
        let maxReplyBytes = settings.maxReplyBytes
        let onPush: (@Sendable (RedisReply) -> Void)?
        if case .subscriber(_, let onMessage) = role {
            onPush = { reply in
                guard let parts = reply.array, parts.count == 3, parts[0].text == "message", let payload = parts[2].bytes else { return }
                onMessage(payload)
            }
        } else {
            onPush = nil
        }
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(settings.connectTimeoutMillis))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(maxReplyBytes: maxReplyBytes, onPush: onPush))
                }
            }
        let connecting: EventLoopFuture<any Channel>
        switch settings.endpoint.address {
        case .tcp(let host, let port):
            bootstrap = bootstrap
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
            connecting = bootstrap.connect(host: host, port: port)
        case .unix(let path):
            connecting = bootstrap.connect(unixDomainSocketPath: path)
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                self.attemptFailed(thisAttempt, .connection("\(error)"), wasReady: false)
            case .success(let channel):
                guard !self.stopped, let handler = try? channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self) else {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                self.handler = handler
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    let wasReady = self.ready.load(ordering: .relaxed)
                    self.attemptFailed(thisAttempt, handler.closeReason ?? .connection("connection closed"), wasReady: wasReady)
                }
                self.handshake(handler, channel: channel, attempt: thisAttempt)
            }
        }
    }

    private func handshake(_ handler: RedisChannelHandler, channel: any Channel, attempt thisAttempt: Int) {
        var setup: [RedisCommand] = []
        if let password = settings.endpoint.password {
            if let username = settings.endpoint.username {
                setup.append(.make("AUTH", username, password))
            } else {
                setup.append(.make("AUTH", password))
            }
        }
        if settings.endpoint.database != 0 { setup.append(.make("SELECT", settings.endpoint.database)) }
        setup.append(.make("CLIENT", "SETNAME", name))
        if case .subscriber(let subscription, _) = role { setup.append(.make("SUBSCRIBE", subscription)) }
        let promise = eventLoop.makePromise(of: [RedisReply].self)
        handler.send(setup, deadline: .now() + .milliseconds(settings.connectTimeoutMillis), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard thisAttempt == self.attempt, !self.stopped else { return }
            switch result {
            case .failure(let error):
                handler.close(error as? RedisError ?? .connection("\(error)"))
            case .success(let replies):
                // An old Redis without CLIENT SETNAME is fine; a refused AUTH or SELECT is not.
                if let message = replies.lazy.compactMap(\.errorMessage).first(where: { !$0.contains("unknown command") }) {
                    handler.close(.connection(message))
                    return
                }
                if case .subscriber = self.role, replies.last?.array?.first?.text != "subscribe" {
                    handler.close(.connection("SUBSCRIBE was not confirmed"))
                    return
                }
                self.backoffMillis = 50
                self.ready.store(true, ordering: .relaxed)
                self.events.ready()
            }
        }
    }

    /// Ends an attempt (once) and schedules the next one.
    private func attemptFailed(_ thisAttempt: Int, _ error: RedisError, wasReady: Bool) {
        guard thisAttempt == attempt else { return }
        attempt += 1
        ready.store(false, ordering: .relaxed)
        handler = nil
        channel = nil
        guard !stopped else { return }
        events.failed(error, wasReady)
        let delay = wasReady ? 0 : backoffMillis
        if !wasReady { backoffMillis = min(backoffMillis * 2, 2_000) }
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { self.connect() }
    }
}
