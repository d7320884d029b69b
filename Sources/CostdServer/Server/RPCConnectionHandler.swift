import CostdCore
import CostdProtocol
import Logging
import NIOCore

/// One client connection: frames in, JSON-RPC calls answered, frames out.
///
/// Frames are cut with ``FrameDecoder`` from a buffer this handler owns, so it always knows
/// whether a frame is half-received. Answers that are ready at once are gathered and flushed
/// together at the end of a read (one `writev` for a pipelined burst); answers that wait (a
/// `record` waits for the disk) are written when they are ready, in whatever order they finish:
/// each carries its request's id.
///
/// Back-pressure: while `maxInFlight` calls are waiting, or while the socket will not take
/// more output, the handler stops asking the channel to read, so the kernel's buffers push
/// back on the client and nothing here grows without bound.
///
/// Errors are contained: a bad frame gets an error answer, an oversize one gets an error
/// answer and a close; nothing thrown here reaches other connections.
final class RPCConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let engine: CostdEngine
    private let messageDecoder: RPCMessageDecoder
    private var frameDecoder: FrameDecoder
    private let maxInFlight: Int
    private let logger: Logger
    private let caller: CallerIdentity?

    private let idleTimeout: TimeAmount?
    private let partialFrameTimeout: TimeAmount
    private var lastRead = NIODeadline.now()
    /// When the buffered bytes last stopped being a whole number of frames.
    private var partialSince: NIODeadline?
    private var timeoutCheck: Scheduled<Void>?

    private var received: ByteBuffer?
    private var ready = JSONWriter(reservingCapacity: 4096)
    private var readyFrames: ByteBuffer?
    private var inFlight = 0
    private var readHeld = false
    private var quiescing = false
    private var closing = false

    init(engine: CostdEngine, limits: ServerLimits, caller: CallerIdentity?, logger: Logger) {
        self.engine = engine
        self.messageDecoder = RPCMessageDecoder(limits: limits.json, maxBatchRequests: limits.maxBatchRequests)
        self.frameDecoder = FrameDecoder(maxFrameBytes: limits.maxFrameBytes)
        self.maxInFlight = limits.maxInFlightPerConnection
        self.idleTimeout = limits.idleTimeoutSeconds > 0 ? .seconds(limits.idleTimeoutSeconds) : nil
        self.partialFrameTimeout = .seconds(max(1, limits.partialFrameTimeoutSeconds))
        self.caller = caller
        self.logger = logger
    }

    // MARK: - Timeouts

    func handlerAdded(context: ChannelHandlerContext) {
        scheduleTimeoutCheck(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        timeoutCheck = nil
    }

    /// One timer per connection, not one per read: it wakes at the earliest deadline that could
    /// pass (idle, or a half-sent frame), checks, and goes back to sleep.
    private func scheduleTimeoutCheck(context: ChannelHandlerContext) {
        var interval = partialFrameTimeout
        if let idleTimeout, idleTimeout < interval { interval = idleTimeout }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleTask(in: .nanoseconds(interval.nanoseconds / 2)) {
            let (handler, context) = loopBound.value
            handler.checkTimeouts(context: context)
        }
    }

    private func checkTimeouts(context: ChannelHandlerContext) {
        guard !closing else { return }
        let now = NIODeadline.now()
        if let partialSince, now - partialSince >= partialFrameTimeout {
            closeConnection(context: context, reason: "a frame stayed half-sent for \(partialFrameTimeout.nanoseconds / 1_000_000_000) s")
            return
        }
        if let idleTimeout, inFlight == 0, received == nil, now - lastRead >= idleTimeout {
            closeConnection(context: context, reason: "idle")
            return
        }
        scheduleTimeoutCheck(context: context)
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if closing { return }
        lastRead = NIODeadline.now()
        if received == nil || received!.readableBytes == 0 {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        processReceivedFrames(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReady(context: context)
    }

    private func processReceivedFrames(context: ChannelHandlerContext) {
        while !closing, inFlight < maxInFlight, received != nil {
            let frame: ByteBuffer?
            do {
                frame = try frameDecoder.decode(buffer: &received!)
            } catch FrameDecoderError.frameTooLarge(let length, let limit) {
                let error = RPCError.payloadTooLarge("frame of \(length) bytes; the limit is \(limit)", limit: limit)
                // The stream cannot be resynchronised after this: answer, then close once the
                // answer is out.
                ready.writeErrorResponse(id: .null, error: error)
                appendReadyFrame(context: context)
                received = nil
                closeAfterWrites(context: context, reason: "frame too large")
                return
            } catch {
                closeConnection(context: context, reason: "\(error)")
                return
            }
            guard let frame else { break }
            // Progress: a half-sent frame is timed from the last whole one.
            partialSince = nil
            handle(frame: frame, context: context)
        }
        if let buffer = received, buffer.readableBytes == 0 {
            received = nil
            partialSince = nil
        } else if received != nil {
            // Bytes are waiting: part of a frame (or whole frames held back by back-pressure,
            // which the client cannot be blamed for).
            if inFlight < maxInFlight {
                if partialSince == nil { partialSince = NIODeadline.now() }
            } else {
                partialSince = nil
            }
            if received!.readerIndex > 64 << 10 { received!.discardReadBytes() }
        }
        if quiescing { closeIfDrained(context: context) }
    }

    private func handle(frame: ByteBuffer, context: ChannelHandlerContext) {
        let message = messageDecoder.decode(frame: frame)
        let deferred = engine.handle(message, caller: caller, on: context.eventLoop, into: &ready)
        appendReadyFrame(context: context)
        guard let deferred else { return }
        inFlight += 1
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let logger = self.logger
        deferred.result.whenComplete { outcome in
            let (handler, context) = loopBound.value
            handler.inFlight -= 1
            let body = deferred.body(for: outcome, logger: logger)
            if !body.isEmpty, !handler.closing {
                var frame = context.channel.allocator.buffer(capacity: body.count + FrameDecoder.headerLength)
                frame.writeFrame(body)
                context.writeAndFlush(handler.wrapOutboundOut(frame), promise: nil)
            }
            handler.resumeIfPossible(context: context)
        }
    }

    /// Moves what `ready` holds into one frame of the outgoing batch.
    private func appendReadyFrame(context: ChannelHandlerContext) {
        guard !ready.bytes.isEmpty else { return }
        if readyFrames == nil {
            readyFrames = context.channel.allocator.buffer(capacity: ready.bytes.count + FrameDecoder.headerLength)
        }
        readyFrames!.writeFrame(ready.bytes)
        ready.truncate(to: 0)
    }

    private func flushReady(context: ChannelHandlerContext) {
        guard let frames = readyFrames else { return }
        readyFrames = nil
        context.writeAndFlush(wrapOutboundOut(frames), promise: nil)
    }

    private func resumeIfPossible(context: ChannelHandlerContext) {
        if received != nil {
            processReceivedFrames(context: context)
            flushReady(context: context)
        }
        if quiescing {
            closeIfDrained(context: context)
        } else if readHeld, inFlight < maxInFlight, context.channel.isWritable {
            readHeld = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeIfPossible(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: finish the calls already received, then close.
            quiescing = true
            closeIfDrained(context: context)
        } else if case ChannelEvent.inputClosed = event {
            // A one-shot client (`socat`, `nc -N`) sent its request and shut its side down:
            // it still wants the answers.
            quiescing = true
            closeIfDrained(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Connection error", metadata: ["error": "\(error)"])
        closeConnection(context: context, reason: "\(error)")
    }

    // MARK: - Outbound

    func read(context: ChannelHandlerContext) {
        if quiescing || inFlight >= maxInFlight || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: - Closing

    private func closeIfDrained(context: ChannelHandlerContext) {
        guard inFlight == 0 else { return }
        closeAfterWrites(context: context, reason: "drained")
    }

    /// Closes once everything written so far has gone out (NIO fails the writes still queued
    /// when a channel closes, which would cut the last answers short), or after the half-sent
    /// frame timeout if the client stops reading.
    private func closeAfterWrites(context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        logger.debug("Closing connection", metadata: ["reason": "\(reason)"])
        let channel = context.channel
        let frames = readyFrames ?? channel.allocator.buffer(capacity: 0)
        readyFrames = nil
        context.writeAndFlush(wrapOutboundOut(frames)).whenComplete { _ in channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: partialFrameTimeout) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
    }

    private func closeConnection(context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        logger.debug("Closing connection", metadata: ["reason": "\(reason)"])
        context.close(promise: nil)
    }
}
