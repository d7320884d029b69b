import AsyncHTTPClient
import Dispatch
import CostdCore
import CostdProtocol
import Logging
import NIOCore
import NIOHTTP1

/// The OpenAI-compatible endpoint's logic: one call through the same engine as the RPCs.
///
/// For an LLM call (`POST /v1/chat/completions`, `/completions`, `/embeddings`, `/responses`,
/// `/messages`), in order: attribution, routing (opt-in), the hard budget's reservation, the
/// cache lookup (single-flight), forwarding, recording the upstream's exact usage, storing the
/// answer, answering. Any other path under `/v1/` passes through, neither cached nor recorded.
public final class HTTPGateway: Sendable {
    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: [UInt8]
        var caller: CallerIdentity?
        /// The connection's event loop, where the call's engine work runs.
        var eventLoop: any EventLoop
    }

    let engine: CostdEngine
    let upstreams: UpstreamClient
    let settings: HTTPSettings
    let logger: Logger

    public init(engine: CostdEngine, upstreams: UpstreamClient, settings: HTTPSettings, logger: Logger) {
        self.engine = engine
        self.upstreams = upstreams
        self.settings = settings
        self.logger = logger
    }

    /// Sets up an accepted connection: the HTTP/1.1 codecs (with pipelining held back and
    /// malformed requests answered 400 by NIO), and the gateway's handler.
    public func setUpConnection(_ channel: any Channel, caller: CallerIdentity?) throws {
        let handler = HTTPGatewayHandler(gateway: self, caller: caller, settings: settings)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(HTTPBytesObserver(notifying: handler))
        try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
        try sync.addHandler(handler)
    }

    /// Answers a connection refused for `reason` (too many connections): 503, then closed.
    public static func refuse(_ channel: any Channel, reason: String) {
        let error = GatewayError.unavailable("overloaded: \(reason)")
        let body = error.body
        var bytes = Array("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: \(body.count)\r\n\r\n".utf8)
        bytes += body
        channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// How metrics name a request: its endpoint's label, `http.passthrough`, or `other`.
    static func metricsLabel(for head: HTTPRequestHead) -> String {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path.hasPrefix("/v1/") else { return "other" }
        if head.method == .POST, let endpoint = ProviderEndpoint(path: String(path.dropFirst(3))) { return endpoint.metricsLabel }
        return "http.passthrough"
    }

    /// Counts a finished request in the metrics (`--metrics-listen`) and the status line.
    func measure(_ label: String, status: HTTPResponseStatus, startedAt: UInt64) {
        engine.callsServed.add(1, ordering: .relaxed)
        engine.metrics?.request(label, succeeded: status.code < 400, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - startedAt))
    }

    /// What a request needs, decided on its event loop before any waiting: an answer already
    /// (an L1 hit, or an error), or work that waits (for Redis, a reservation, an upstream).
    enum Preparation {
        case answered(GatewayResponse)
        case call(GatewayCall, pathAndQuery: String)
        case passThrough(Request, pathAndQuery: String, requestId: String)
    }

    /// Everything about a request that needs no waiting. An LLM call whose answer is in L1 is
    /// answered here, on the loop, without starting any asynchronous work: the HTTP
    /// endpoint's hot path, like `cacheGet`'s.
    func prepare(_ request: Request) -> Preparation {
        let requestId = engine.makeRecordId()
        let (path, query) = split(request.head.uri)
        guard path.hasPrefix("/v1/") else {
            return .answered(GatewayResponse(error: .notFound("costd serves the OpenAI and Anthropic APIs under /v1/; \(path) is not there"), requestId: requestId))
        }
        let subpath = String(path.dropFirst(3))
        guard request.head.method == .POST, let endpoint = ProviderEndpoint(path: subpath) else {
            return .passThrough(request, pathAndQuery: subpath + query, requestId: requestId)
        }
        do {
            var call = try GatewayCall(gateway: self, request: request, endpoint: endpoint, requestId: requestId)
            if call.routeAtOnce(), let answer = call.answerInL1() {
                return .answered(call.hit(answer))
            }
            return .call(call, pathAndQuery: subpath + query)
        } catch {
            return .answered(GatewayResponse(error: error as? GatewayError ?? .badRequest("\(error)"), requestId: requestId))
        }
    }

    /// The waiting part of a request. Never throws: every failure becomes a response (or, once
    /// the client is gone, nothing), and what was held for the call is given back.
    func serve(_ preparation: Preparation, responder: GatewayResponder) async {
        var requestId = ""
        do {
            switch preparation {
            case .answered(let response):
                try await responder.send(response)
            case .call(var call, let pathAndQuery):
                requestId = call.requestId
                try await call.run(pathAndQuery: pathAndQuery, responder: responder)
            case .passThrough(let request, let pathAndQuery, let id):
                requestId = id
                try await passThrough(request, pathAndQuery: pathAndQuery, requestId: requestId, responder: responder)
            }
        } catch let error as GatewayError {
            await respond(error, requestId: requestId, responder: responder)
        } catch is CancellationError {
            // The client hung up; nobody to answer.
        } catch {
            logger.debug("HTTP request ended early", metadata: ["request": "\(requestId)", "error": "\(error)"])
        }
    }

    func respond(_ error: GatewayError, requestId: String, responder: GatewayResponder) async {
        try? await responder.send(GatewayResponse(error: error, requestId: requestId))
    }

    private func split(_ uri: String) -> (path: String, query: String) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), String(uri[mark...]))
    }

    /// Any other path under `/v1/`: to `anthropic` for `/messages/...`, else to `openai`, and
    /// back as it comes, streamed.
    private func passThrough(_ request: Request, pathAndQuery: String, requestId: String, responder: GatewayResponder) async throws {
        let name = pathAndQuery.hasPrefix("/messages") ? "anthropic" : "openai"
        guard let upstream = upstreams.upstream(named: name) else { throw GatewayError.notFound("no upstream named '\(name)'") }
        let response = try await send(
            to: upstream, pathAndQuery: pathAndQuery, method: request.head.method, headers: request.head.headers,
            body: request.body.isEmpty && request.head.method == .GET ? nil : request.body, on: request.eventLoop)
        var headers = HTTPGateway.passedOn(response.headers)
        headers.add(name: "x-costd-cache", value: "bypass")
        headers.add(name: "x-costd-request-id", value: requestId)
        if let length = response.headers.first(name: "content-length") { headers.replaceOrAdd(name: "content-length", value: length) }
        do {
            try await responder.head(response.status, headers: headers)
            while let buffer = try await response.nextPart() { try await responder.body(buffer) }
            try await responder.end()
        } catch {
            response.exchange.cancel()
            throw error
        }
    }

    /// Sends upstream; failures to reach it become 502 (or 504 for a timeout).
    func send(
        to upstream: UpstreamClient.Upstream, pathAndQuery: String, method: HTTPMethod, headers: HTTPHeaders, body: [UInt8]?,
        on eventLoop: any EventLoop
    ) async throws -> UpstreamClient.Response {
        do {
            return try await upstreams.send(
                to: upstream, pathAndQuery: pathAndQuery, method: method, clientHeaders: headers, body: body, on: eventLoop)
        } catch let error as HTTPClientError where error == .readTimeout || error == .connectTimeout || error == .deadlineExceeded {
            throw GatewayError.gatewayTimeout("the upstream '\(upstream.name)' did not answer in time (\(error))")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw GatewayError.badGateway("the upstream '\(upstream.name)' could not be reached: \(error)")
        }
    }
}
