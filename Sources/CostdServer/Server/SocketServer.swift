import CostdCore
import CostdPOSIX
import CostdProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the server listens: a path it binds itself, or a socket it inherited (systemd socket
/// activation). A struct over a private enum, so that kinds can be added without breaking callers.
public struct ListenAddress: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case path(String, mode: mode_t)
        case inherited(fd: Int32, name: String)
        case tcp(host: String, port: Int)
    }

    let kind: Kind

    /// A Unix socket at `path`, created with permissions `mode`.
    public static func unixSocket(_ path: String, mode: mode_t = 0o660) -> ListenAddress {
        ListenAddress(kind: .path(path, mode: mode))
    }

    /// A listening socket passed in by the service manager; it is never unlinked by costd.
    public static func inherited(fd: Int32, name: String) -> ListenAddress {
        ListenAddress(kind: .inherited(fd: fd, name: name))
    }

    /// A TCP socket on `host:port` (the HTTP endpoint's `http.listen`).
    public static func tcp(host: String, port: Int) -> ListenAddress {
        ListenAddress(kind: .tcp(host: host, port: port))
    }

    public var description: String {
        switch kind {
        case .path(let path, _): path
        case .inherited(let fd, let name): "fd \(fd) (\(name))"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// A listening socket's server: accepts connections and sets each up (an
/// ``RPCConnectionHandler`` for the RPC socket, the HTTP pipeline for the endpoint).
///
/// Its lifecycle is a ServiceLifecycle `Service`: `run()` binds, reports readiness, serves until
/// graceful shutdown, then stops accepting, lets every connection finish the calls it has
/// received (up to `drainTimeout`), and returns.
public final class SocketServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var address: ListenAddress
        public var limits: ServerLimits
        public var drainTimeout: TimeAmount = .seconds(10)

        public init(address: ListenAddress, limits: ServerLimits) {
            self.address = address
            self.limits = limits
        }
    }

    private enum State {
        case initial
        case running(any Channel)
        case shuttingDown
        case shutdown
    }

    /// Sets up an accepted connection's pipeline (on its event loop), given who connected.
    public typealias ConnectionSetup = @Sendable (any Channel, CallerIdentity?) throws -> Void

    private let configuration: Configuration
    private let setUpConnection: ConnectionSetup
    /// Answers a connection refused for `reason` (too many connections) before closing it.
    private let refuseConnection: @Sendable (any Channel, String) -> Void
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onReady: @Sendable () -> Void
    private let state = Mutex<State>(.initial)
    private let connections = ConnectionRegistry()

    /// The RPC server: each connection gets an ``RPCConnectionHandler`` over `engine`.
    public convenience init(
        configuration: Configuration,
        engine: CostdEngine,
        group: any EventLoopGroup,
        logger: Logger,
        onReady: @escaping @Sendable () -> Void = {}
    ) {
        let limits = configuration.limits
        // One per event loop: which of its connections are busy and heavy, which decides each one's
        // share of the loop.
        var activities: [ObjectIdentifier: LoopActivity] = [:]
        for loop in group.makeIterator() {
            activities[ObjectIdentifier(loop)] = LoopActivity(heavySharePPM: limits.connectionCPUSharePPM)
        }
        let loopActivities = activities
        self.init(configuration: configuration, group: group, logger: logger, onReady: onReady, refuse: { SocketServer.refuse($0, reason: $1) }) {
            channel, caller in
            let activity = loopActivities[ObjectIdentifier(channel.eventLoop)] ?? LoopActivity(heavySharePPM: limits.connectionCPUSharePPM)
            let handler = RPCConnectionHandler(engine: engine, limits: limits, caller: caller, loopActivity: activity, logger: logger)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }

    public init(
        configuration: Configuration,
        group: any EventLoopGroup,
        logger: Logger,
        onReady: @escaping @Sendable () -> Void = {},
        refuse: @escaping @Sendable (any Channel, String) -> Void,
        setUpConnection: @escaping ConnectionSetup
    ) {
        self.configuration = configuration
        self.setUpConnection = setUpConnection
        self.refuseConnection = refuse
        self.group = group
        self.logger = logger
        self.onReady = onReady
    }

    /// Connections open now.
    public var connectionCount: Int { connections.count }

    public func run() async throws {
        let channel = try await bind()
        let proceed = state.withLock { state -> Bool in
            switch state {
            case .initial:
                state = .running(channel)
                return true
            case .running, .shuttingDown, .shutdown:
                return false
            }
        }
        guard proceed else {
            try? await channel.close()
            return
        }
        logger.info("Listening", metadata: ["address": "\(configuration.address)"])
        onReady()

        try? await gracefulShutdown()
        await shutDown()
        try? await channel.closeFuture.get()
    }

    private func shutDown() async {
        let channel: (any Channel)? = state.withLock { state in
            switch state {
            case .running(let channel):
                state = .shuttingDown
                return channel
            case .initial, .shuttingDown, .shutdown:
                state = .shutdown
                return nil
            }
        }
        guard let channel else { return }
        logger.info("Draining connections", metadata: ["connections": "\(connections.count)"])
        try? await channel.close()
        if case .path(let path, _) = configuration.address.kind {
            unlink(path)
        }
        await connections.quiesceAll(timeout: configuration.drainTimeout)
        state.withLock { $0 = .shutdown }
    }

    private func bind() async throws -> any Channel {
        let connections = self.connections
        let setUpConnection = self.setUpConnection
        let refuse = self.refuseConnection
        let limits = configuration.limits
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                PeerIdentity.read(channel).flatMapThrowing { caller in
                    if let refusal = connections.admit(channel, uid: caller?.uid, limits: limits) {
                        logger.notice("Refused a connection", metadata: ["reason": "\(refusal)", "uid": "\(caller?.uid ?? 0)"])
                        refuse(channel, refusal)
                        return
                    }
                    try setUpConnection(channel, caller)
                }
            }
        switch configuration.address.kind {
        case .path(let path, let mode):
            try SocketServer.removeStaleSocket(at: path)
            let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
            chmod(path, mode)
            return channel
        case .inherited(let fd, _):
            return try await bootstrap.withBoundSocket(fd).get()
        case .tcp(let host, let port):
            return try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port).get()
        }
    }

    /// Answers a refused connection with one error frame (-32005) and closes it.
    static func refuse(_ channel: any Channel, reason: String) {
        var writer = JSONWriter()
        writer.writeErrorResponse(id: .null, error: RPCError(code: RPCError.overloadedCode, message: "overloaded: \(reason)"))
        var frame = channel.allocator.buffer(capacity: writer.bytes.count + 4)
        frame.writeFrame(writer.bytes)
        channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
    }

    /// A socket file left by a dead daemon is removed; one a live daemon answers on is an
    /// error, and so is a path that is not a socket at all.
    static func removeStaleSocket(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigError("\(path) exists and is not a socket; refusing to replace it")
        }
        do {
            close(try UnixSocket.connect(path))
            throw ConfigError("another costd is already listening on \(path)")
        } catch let failure as UnixSocket.Failure {
            guard failure.errno == ECONNREFUSED || failure.errno == ENOENT else {
                throw failure.errno == ENAMETOOLONG
                    ? ConfigError("socket path \(path) is too long") : SystemError("checking \(path)", errno: failure.errno)
            }
        }
        unlink(path)
    }
}

/// The open connections, so that shutdown can ask each to finish and wait for them, and so that
/// no user can take more than their share.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var byUser: [UInt32: Int] = [:]
    }

    private let state = Mutex(State())

    /// Registers `channel`, or says why it is refused: too many connections in all, or from
    /// this Unix user (other users still get in).
    func admit(_ channel: any Channel, uid: UInt32?, limits: ServerLimits) -> String? {
        let id = ObjectIdentifier(channel)
        let refusal = state.withLock { state -> String? in
            if state.channels.count >= limits.maxConnections {
                return "too many connections (\(limits.maxConnections))"
            }
            if let uid, state.byUser[uid, default: 0] >= limits.maxConnectionsPerUser {
                return "too many connections from this user (\(limits.maxConnectionsPerUser))"
            }
            state.channels[id] = channel
            if let uid { state.byUser[uid, default: 0] += 1 }
            return nil
        }
        guard refusal == nil else { return refusal }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                state.channels.removeValue(forKey: id)
                if let uid {
                    state.byUser[uid, default: 1] -= 1
                    if state.byUser[uid] == 0 { state.byUser.removeValue(forKey: uid) }
                }
            }
        }
        return nil
    }

    var count: Int { state.withLock { $0.channels.count } }

    /// Asks every connection to finish what it has received and close; force-closes the ones
    /// still open after `timeout`.
    func quiesceAll(timeout: TimeAmount) async {
        let open = state.withLock { Array($0.channels.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = NIODeadline.now() + timeout
        for channel in open {
            let remaining = deadline - NIODeadline.now()
            if remaining > .zero {
                let closed = channel.closeFuture
                let timer = channel.eventLoop.scheduleTask(in: remaining) { channel.close(promise: nil) }
                try? await closed.get()
                timer.cancel()
            } else {
                try? await channel.close()
            }
        }
    }
}
