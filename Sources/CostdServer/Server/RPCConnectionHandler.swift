import CostdCore
import CostdProtocol
import Dispatch
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
/// What the connection may do next (back-pressure, timeouts, draining, closing) is decided by
/// ``RPCConnectionStateMachine``; this handler moves bytes and performs its actions. Time is
/// the event loop's (`eventLoop.now`), so tests drive it with an embedded loop's clock.
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
    private let logger: Logger
    private let caller: CallerIdentity?
    private var machine: RPCConnectionStateMachine
    private var timeoutCheck: Scheduled<Void>?
    private var pauseEnd: Scheduled<Void>?
    private let loopActivity: LoopActivity
    /// This connection's use of the current window of `loopActivity`.
    private var loopUsage = LoopActivity.Usage()

    private var received: ByteBuffer?
    private var ready = JSONWriter(reservingCapacity: 4096)
    private var readyFrames: ByteBuffer?
    /// Set while the engine handles one of this connection's frames. A call of that frame can
    /// complete one of this connection's deferred answers at once (a `cacheSet` filling the
    /// lease another call of the same connection waits for); that answer is then taken after
    /// the frame, never inside it.
    private var handlingFrame = false

    init(engine: CostdEngine, limits: ServerLimits, caller: CallerIdentity?, loopActivity: LoopActivity = LoopActivity(), logger: Logger) {
        self.engine = engine
        self.loopActivity = loopActivity
        self.messageDecoder = RPCMessageDecoder(limits: limits.json, maxBatchRequests: limits.maxBatchRequests)
        self.frameDecoder = FrameDecoder(maxFrameBytes: limits.maxFrameBytes)
        // Its clock is the event loop's, read from `handlerAdded` on.
        self.machine = RPCConnectionStateMachine(
            limits: .init(
                maxInFlight: limits.maxInFlightPerConnection,
                idleTimeout: limits.idleTimeoutSeconds > 0 ? .seconds(limits.idleTimeoutSeconds) : nil,
                partialFrameTimeout: .seconds(max(1, limits.partialFrameTimeoutSeconds)),
                cpuBurst: .milliseconds(limits.connectionCPUBurstMillis)
            ),
            now: .uptimeNanoseconds(0)
        )
        self.caller = caller
        self.logger = logger
    }

    // MARK: - Timeouts

    func handlerAdded(context: ChannelHandlerContext) {
        machine.opened(now: context.eventLoop.now)
        scheduleTimeoutCheck(in: machine.checkInterval, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        timeoutCheck = nil
        pauseEnd?.cancel()
        pauseEnd = nil
    }

    /// One timer per connection, not one per read: it wakes at the earliest moment a timeout
    /// could pass (idle, or a half-sent frame), checks, and goes back to sleep.
    private func scheduleTimeoutCheck(in interval: TimeAmount, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleTask(in: interval) {
            let (handler, context) = loopBound.value
            handler.checkTimeouts(context: context)
        }
    }

    private func checkTimeouts(context: ChannelHandlerContext) {
        let bytesBuffered = (received?.readableBytes ?? 0) > 0
        switch machine.timerFired(now: context.eventLoop.now, bytesBuffered: bytesBuffered) {
        case .stop: break
        case .checkAgain(let interval): scheduleTimeoutCheck(in: interval, context: context)
        case .close(let reason): close(context: context, reason: reason)
        }
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let now = context.eventLoop.now
        guard machine.bytesReceived(now: now) else { return }
        if received == nil || received!.readableBytes == 0 {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        processReceivedFrames(context: context, now: now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReady(context: context)
    }

    /// Takes the whole frames received, as far as the state machine lets it. `now` is the loop's
    /// time as the call began: read once per call, not per frame (a clock read is a visible part
    /// of a `ping`); it only places the timeouts, the share's windows and the pause.
    private func processReceivedFrames(context: ChannelHandlerContext, now: NIODeadline? = nil) {
        let now = now ?? context.eventLoop.now
        // Real time at the end of the last frame taken in this call: in a pipelined burst one
        // frame's end is the next one's start.
        var lastFrameEnd: UInt64?
        while machine.mayTakeFrame, received != nil {
            let frame: ByteBuffer?
            do {
                frame = try frameDecoder.decode(buffer: &received!)
            } catch FrameDecoderError.frameTooLarge(let length, let limit) {
                let error = RPCError.payloadTooLarge("frame of \(length) bytes; the limit is \(limit)", limit: limit)
                ready.writeErrorResponse(id: .null, error: error)
                appendReadyFrame(context: context)
                received = nil
                perform(machine.frameTooLarge(), context: context, reason: "frame too large")
                return
            } catch {
                perform(machine.failed("\(error)"), context: context, reason: "\(error)")
                return
            }
            guard let frame else { break }
            machine.frameTaken()
            // The loop's time this frame took, against the connection's share (the clock is the
            // real one: it measures work; the pause is timed on the loop's clock).
            let started = lastFrameEnd ?? DispatchTime.now().uptimeNanoseconds
            handle(frame: frame, context: context)
            let ended = DispatchTime.now().uptimeNanoseconds
            lastFrameEnd = ended
            let spent = Int64(ended &- started)
            let share = loopActivity.frameTaken(nanos: spent, usage: &loopUsage, now: now)
            if let pause = machine.worked(nanos: spent, now: now, sharePPM: share) {
                schedulePauseEnd(in: pause, context: context)
            }
        }
        if let buffer = received, buffer.readableBytes == 0 { received = nil }
        machine.framesTaken(bytesWaiting: received != nil, now: now)
        if received != nil, received!.readerIndex > 64 << 10 { received!.discardReadBytes() }
        perform(machine.closeIfDrained(), context: context, reason: "drained")
    }

    /// Takes frames and reads again once a connection that overdrew its share of the loop has
    /// paid it back.
    private func schedulePauseEnd(in pause: TimeAmount, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pauseEnd = context.eventLoop.scheduleTask(in: pause) {
            let (handler, context) = loopBound.value
            handler.pauseEnd = nil
            handler.machine.pauseEnded(now: context.eventLoop.now)
            handler.processReceivedFrames(context: context)
            handler.flushReady(context: context)
            if handler.machine.mayResumeReading(writable: context.channel.isWritable) { context.read() }
        }
    }

    private func handle(frame: ByteBuffer, context: ChannelHandlerContext) {
        let message = messageDecoder.decode(frame: frame)
        handlingFrame = true
        let deferred = engine.handle(message, caller: caller, channel: context.channel, on: context.eventLoop, into: &ready)
        handlingFrame = false
        appendReadyFrame(context: context)
        guard let deferred else { return }
        machine.callDeferred()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let logger = self.logger
        deferred.result.whenComplete { outcome in
            let (handler, context) = loopBound.value
            let body = deferred.body(for: outcome, logger: logger)
            if handler.handlingFrame {
                context.eventLoop.execute { handler.answered(body, context: context) }
            } else {
                handler.answered(body, context: context)
            }
        }
    }

    private func answered(_ body: [UInt8], context: ChannelHandlerContext) {
        guard machine.deferredAnswered() else { return }
        if !body.isEmpty {
            var frame = context.channel.allocator.buffer(capacity: body.count + FrameDecoder.headerLength)
            frame.writeFrame(body)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
        processReceivedFrames(context: context)
        flushReady(context: context)
        if machine.mayResumeReading(writable: context.channel.isWritable) { context.read() }
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            processReceivedFrames(context: context)
            flushReady(context: context)
            if machine.mayResumeReading(writable: true) { context.read() }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: finish the calls already received, then close.
            perform(machine.drain(), context: context, reason: "drained")
        } else if case ChannelEvent.inputClosed = event {
            // A one-shot client (`socat`, `nc -N`) sent its request and shut its side down:
            // it still wants the answers.
            perform(machine.drain(), context: context, reason: "drained")
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Connection error", metadata: ["error": "\(error)"])
        perform(machine.failed("\(error)"), context: context, reason: "\(error)")
    }

    // MARK: - Outbound

    func read(context: ChannelHandlerContext) {
        switch machine.readRequested(writable: context.channel.isWritable) {
        case .read: context.read()
        case .hold: break
        }
    }

    // MARK: - Closing

    private func perform(_ action: RPCConnectionStateMachine.CloseAction, context: ChannelHandlerContext, reason: String) {
        switch action {
        case .none: break
        case .closeAfterWrites: closeAfterWrites(context: context, reason: reason)
        case .close(let reason): close(context: context, reason: reason)
        }
    }

    /// Closes once everything written so far has gone out (NIO fails the writes still queued
    /// when a channel closes, which would cut the last answers short), or after the half-sent
    /// frame timeout if the client stops reading.
    private func closeAfterWrites(context: ChannelHandlerContext, reason: String) {
        logger.debug("Closing connection", metadata: ["reason": "\(reason)"])
        let channel = context.channel
        let frames = readyFrames ?? channel.allocator.buffer(capacity: 0)
        readyFrames = nil
        context.writeAndFlush(wrapOutboundOut(frames)).whenComplete { _ in channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: machine.limits.partialFrameTimeout) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
    }

    private func close(context: ChannelHandlerContext, reason: String) {
        logger.debug("Closing connection", metadata: ["reason": "\(reason)"])
        context.close(promise: nil)
    }
}
