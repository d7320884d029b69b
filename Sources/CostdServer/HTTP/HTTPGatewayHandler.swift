import CostdCore
import Dispatch
import NIOCore
import NIOHTTP1

/// One HTTP connection of the endpoint: gathers each request (head and body, within
/// `http.max_body_bytes` and `http.request_timeout`), hands it to the ``HTTPGateway`` as async
/// work, and waits for the response to end before reading the next (NIO's pipelining handler
/// holds requests that come early). A client that hangs up cancels its request's work, and
/// with it the upstream call.
final class HTTPGatewayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request (between requests, or before the first).
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The request was refused before its body ended (413); the connection closes.
        case refused
        /// The gateway is answering request number `request`.
        case responding(Task<Void, Never>?, request: Int, keepAlive: Bool)
        case closed
    }

    private enum Timer {
        case none
        /// Nothing sent since the last response: `http.idle_timeout`.
        case idle(Scheduled<Void>)
        /// A request has begun: it must be whole within `http.request_timeout`.
        case request(Scheduled<Void>)
    }

    private var state = State.idle
    private var timer = Timer.none
    /// Where this connection's calls run: on its event loop (made for the first call that waits).
    private var worker: GatewayWorker?
    /// Requests received on this connection, to tell one response from the next.
    private var requests = 0
    /// The request being answered: its metrics label, when it was whole, its response's status.
    private var measured: (label: String, startedAt: UInt64, status: HTTPResponseStatus)?
    private let gateway: HTTPGateway
    private let caller: CallerIdentity?
    private let settings: HTTPSettings

    init(gateway: HTTPGateway, caller: CallerIdentity?, settings: HTTPSettings) {
        self.gateway = gateway
        self.caller = caller
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armIdleTimer(context: context)
    }

    /// Bytes came in (from ``HTTPBytesObserver``, before the decoder): a request has begun, even
    /// if its head is not complete yet, so that a head that never ends times out.
    func bytesArrived(context: ChannelHandlerContext) {
        guard case .idle = state, case .idle = timer else { return }
        armRequestTimer(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            if case .idle = timer { armRequestTimer(context: context) }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > settings.maxBodyBytes {
                refuseTooLarge(context: context, head: head)
                return
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case (.body(var part), .receiving(let head, var body)):
            guard body.readableBytes + part.readableBytes <= settings.maxBodyBytes else {
                refuseTooLarge(context: context, head: head)
                return
            }
            state = .refused  // drop the reference while the buffer grows
            body.writeBuffer(&part)
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            cancelTimer()
            requests += 1
            let number = requests
            measured = (HTTPGateway.metricsLabel(for: head), DispatchTime.now().uptimeNanoseconds, .ok)
            let request = HTTPGateway.Request(head: head, body: Array(body.readableBytesView), caller: caller, eventLoop: context.eventLoop)
            let preparation = gateway.prepare(request)
            if case .answered(let response) = preparation {
                // Answered on the loop (an L1 hit, a refusal): no asynchronous work at all.
                state = .responding(nil, request: number, keepAlive: head.isKeepAlive)
                write(response, version: head.version, context: context)
                return
            }
            let responder = GatewayResponder(channel: context.channel, version: head.version)
            let gateway = self.gateway
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            let worker = self.worker ?? GatewayWorker(eventLoop: context.eventLoop)
            self.worker = worker
            let task = worker.start(preparation, gateway: gateway, responder: responder) {
                eventLoop.execute { handler.value.serveReturned(request: number, context: loopBoundContext.value) }
            }
            state = .responding(task, request: number, keepAlive: head.isKeepAlive)
        case (_, .refused), (_, .closed):
            break
        case (.head, _), (.body, _), (.end, _):
            // The pipelining handler delivers one request at a time; anything else is a bug in
            // the client we cannot answer sensibly.
            context.close(promise: nil)
        }
    }

    private func refuseTooLarge(context: ChannelHandlerContext, head: HTTPRequestHead) {
        state = .refused
        cancelTimer()
        let error = GatewayError(
            status: .payloadTooLarge, type: "invalid_request_error", code: "request_too_large",
            message: "the request body is larger than http.max_body_bytes (\(settings.maxBodyBytes) bytes)")
        let body = error.body
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(body.count)), ("connection", "close")])
        headers.add(name: "x-costd-cache", value: "bypass")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: error.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Writes a whole response from the loop; the end goes through ``write(context:data:promise:)``
    /// like any other, which readies the connection for the next request.
    private func write(_ response: GatewayResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: response.headers))), promise: nil)
        for part in response.parts where !part.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: part)))), promise: nil)
        }
        write(context: context, data: wrapOutboundOut(.end(nil)), promise: nil)
        context.flush()
    }

    /// The response's end is on its way out: the connection is ready for the next request
    /// before NIO's pipelining handler (which sees the end after this) hands it over.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(let head) = part, head.status.code >= 200 { measured?.status = head.status }
        guard case .end = part, case .responding(_, _, let keepAlive) = state else {
            context.write(data, promise: promise)
            return
        }
        if let measured {
            gateway.measure(measured.label, status: measured.status, startedAt: measured.startedAt)
            self.measured = nil
        }
        guard keepAlive else {
            state = .closed
            let channel = context.channel
            let written = promise ?? context.eventLoop.makePromise()
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            context.write(data, promise: written)
            return
        }
        state = .idle
        armIdleTimer(context: context)
        context.write(data, promise: promise)
    }

    /// The gateway's work for a request is done. Normally its response has ended; if not (the
    /// client is gone, or the work failed before answering), the connection cannot go on.
    private func serveReturned(request: Int, context: ChannelHandlerContext) {
        guard case .responding(_, let current, _) = state, current == request else { return }
        state = .closed
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .responding(let task, _, _) = state { task?.cancel() }
        state = .closed
        cancelTimer()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Shutdown: an idle connection closes now, one mid-request after its response.
        if event is ChannelShouldQuiesceEvent {
            switch state {
            case .idle, .refused: context.close(promise: nil)
            case .receiving(let head, let body): state = .receiving(HTTPRequestHead(version: head.version, method: head.method, uri: head.uri, headers: head.headers.closing), body)
            case .responding(let task, let request, _): state = .responding(task, request: request, keepAlive: false)
            case .closed: break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: - Timers

    private func armIdleTimer(context: ChannelHandlerContext) {
        cancelTimer()
        guard settings.idleTimeoutSeconds > 0 else { return }
        let channel = context.channel
        timer = .idle(context.eventLoop.scheduleTask(in: .seconds(settings.idleTimeoutSeconds)) { channel.close(promise: nil) })
    }

    private func armRequestTimer(context: ChannelHandlerContext) {
        cancelTimer()
        let channel = context.channel
        timer = .request(context.eventLoop.scheduleTask(in: .seconds(settings.requestTimeoutSeconds)) { channel.close(promise: nil) })
    }

    private func cancelTimer() {
        switch timer {
        case .idle(let scheduled), .request(let scheduled): scheduled.cancel()
        case .none: break
        }
        timer = .none
    }
}

extension HTTPHeaders {
    /// These headers with `connection: close`.
    fileprivate var closing: HTTPHeaders {
        var headers = self
        headers.replaceOrAdd(name: "connection", value: "close")
        return headers
    }
}

/// Sits before the HTTP decoder and tells the ``HTTPGatewayHandler`` that bytes arrived, so
/// that the request timer starts with a request's first byte, not with its complete head.
final class HTTPBytesObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gatewayHandler: HTTPGatewayHandler
    private var gatewayContext: ChannelHandlerContext?

    init(notifying gatewayHandler: HTTPGatewayHandler) {
        self.gatewayHandler = gatewayHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if gatewayContext == nil { gatewayContext = try? context.pipeline.syncOperations.context(handler: gatewayHandler) }
        if let gatewayContext { gatewayHandler.bytesArrived(context: gatewayContext) }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        gatewayContext = nil
    }
}
