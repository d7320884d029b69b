import AsyncHTTPClient
import CostdCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The providers the HTTP endpoint forwards to, over AsyncHTTPClient: pooled connections,
/// HTTPS (or plain HTTP for local servers), connect and read timeouts, no redirects followed.
///
/// The client's `Authorization` and `x-api-key` go upstream as they came; they are never
/// logged, stored or part of a cache key. A key from `key_file` is added only to requests
/// that carry neither.
public final class UpstreamClient: Sendable {
    public struct Upstream: Sendable {
        public var name: String
        public var baseURL: String
        public var auth: HTTPSettings.Upstream.Auth
        /// The key from `key_file`, read at start.
        var key: String?
    }

    private let upstreams: [String: Upstream]
    private let client: HTTPClient
    private let readTimeout: TimeAmount

    public init(settings: HTTPSettings, group: any EventLoopGroup, logger: Logger) throws {
        var upstreams: [String: Upstream] = [:]
        for (name, upstream) in settings.upstreams {
            var key: String? = nil
            if let file = upstream.keyFile {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw ConfigError("cannot read upstreams.\(name).key_file \(file)")
                }
                key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            upstreams[name] = Upstream(name: name, baseURL: upstream.url, auth: upstream.auth, key: key)
        }
        self.upstreams = upstreams
        self.readTimeout = .milliseconds(settings.readTimeoutMillis)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(settings.connectTimeoutMillis), read: .milliseconds(settings.readTimeoutMillis)),
            connectionPool: .init(idleTimeout: .seconds(60))
        )
        // Bodies are read for their usage: ask for them plain, and pass on what arrives as is.
        configuration.decompression = .disabled
        self.client = HTTPClient(eventLoopGroup: group, configuration: configuration, backgroundActivityLogger: logger)
    }

    public func upstream(named name: String) -> Upstream? {
        upstreams[name]
    }

    /// Headers that describe one connection, not the request: never forwarded either way.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// An upstream's answer: its head now, its body part by part (``UpstreamExchange``).
    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        let exchange: UpstreamExchange

        func nextPart(isolation: isolated (any Actor)? = #isolation) async throws -> ByteBuffer? {
            try await exchange.nextPart(isolation: isolation)
        }
    }

    /// Sends a request upstream, on `eventLoop` (connection and callbacks); the answer's body
    /// streams in as it arrives.
    func send(
        to upstream: Upstream, pathAndQuery: String, method: HTTPMethod, clientHeaders: HTTPHeaders, body: [UInt8]?,
        on eventLoop: any EventLoop
    ) async throws -> Response {
        var headers = HTTPHeaders()
        var carriesKey = false
        for (name, value) in clientHeaders {
            let lowered = name.lowercased()
            guard !UpstreamClient.hopByHop.contains(lowered), !lowered.hasPrefix("x-costd-"), lowered != "accept-encoding" else { continue }
            if lowered == "authorization" || lowered == "x-api-key" {
                // An SDK without a key sends an empty one (`Bearer `): that is no key.
                let key = value.trimmingCharacters(in: .whitespaces)
                guard !key.isEmpty, key.lowercased() != "bearer" else { continue }
                carriesKey = true
            }
            headers.add(name: name, value: value)
        }
        if let key = upstream.key, !carriesKey {
            switch upstream.auth {
            case .bearer: headers.add(name: "authorization", value: "Bearer \(key)")
            case .xAPIKey: headers.add(name: "x-api-key", value: key)
            }
        }
        let request = try HTTPClient.Request(
            url: upstream.baseURL + pathAndQuery, method: method, headers: headers, body: body.map { .bytes($0) })
        let exchange = UpstreamExchange(eventLoop: eventLoop)
        exchange.task = client.execute(request: request, delegate: exchange, eventLoop: .delegateAndChannel(on: eventLoop))
        let head = try await exchange.head()
        return Response(status: head.status, headers: head.headers, exchange: exchange)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
