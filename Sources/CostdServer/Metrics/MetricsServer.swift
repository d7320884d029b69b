import CostdCore
import Logging
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves `GET /metrics` in the Prometheus text format on a TCP address (`--metrics-listen
/// 127.0.0.1:9464`), a Unix socket (`--metrics-listen unix:/run/costd/metrics.sock`, which the
/// shipped unit's sandbox allows), or the socket systemd passes (`costd-metrics.socket`). Off
/// by default.
///
/// It binds before the daemon reports ready (``bind(host:port:group:logger:render:)``), so a
/// port in use stops the start with a reason instead of a daemon that looks ready and then exits.
public final class MetricsServer: Service, Sendable {
    private let channel: any Channel
    private let logger: Logger

    private init(channel: any Channel, logger: Logger) {
        self.channel = channel
        self.logger = logger
    }

    /// Where metrics are served: an address costd binds, or a socket systemd passed.
    public enum Address: Sendable, CustomStringConvertible {
        case configured(MetricsListenAddress)
        case inherited(fd: Int32)

        public var description: String {
            switch self {
            case .configured(let address): address.description
            case .inherited(let fd): "fd \(fd) (systemd metrics socket)"
            }
        }
    }

    /// Binds `address`: TCP, or a Unix socket (mode 0660, like the RPC socket: the costd group
    /// may scrape; a stale socket file is replaced), or takes the socket systemd passed.
    public static func bind(
        address: Address, group: any EventLoopGroup, logger: Logger, render: @escaping @Sendable () -> [UInt8]
    ) async throws -> MetricsServer {
        let channel: any Channel
        do {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                        try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
                    }
                }
            switch address {
            case .configured(.tcp(let host, let port)):
                channel = try await bootstrap.bind(host: host, port: port).get()
            case .configured(.unix(let path)):
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
                guard chmod(path, 0o660) == 0 else { throw IOError(errnoCode: errno, reason: "chmod \(path)") }
            case .inherited(let fd):
                channel = try await bootstrap.withBoundSocket(fd).get()
            }
        } catch {
            throw MetricsBindError(address: "\(address)", underlying: "\(error)")
        }
        logger.info("Serving metrics", metadata: ["address": "\(address)"])
        return MetricsServer(channel: channel, logger: logger)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

public struct MetricsBindError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: String
    public var description: String { "cannot serve metrics on \(address): \(underlying)" }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus
            var body: [UInt8]
            var headers = HTTPHeaders()
            if path != "/metrics" {
                status = .notFound
                body = Array("not found: try /metrics\n".utf8)
                headers.add(name: "Content-Type", value: "text/plain")
            } else if head.method != .GET && head.method != .HEAD {
                status = .methodNotAllowed
                body = Array("only GET and HEAD\n".utf8)
                headers.add(name: "Allow", value: "GET, HEAD")
                headers.add(name: "Content-Type", value: "text/plain")
            } else {
                status = .ok
                body = render()
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            }
            headers.add(name: "Content-Length", value: String(body.count))
            if head.method == .HEAD { body = [] }
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { loopBound.value.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
