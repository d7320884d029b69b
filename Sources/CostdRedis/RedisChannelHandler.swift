import NIOCore

/// One connection to Redis, on its event loop: writes calls as RESP (hiredis's
/// `redisFormatCommandArgv`), parses replies with hiredis's `redisReader`, and answers each
/// call's promise in order. Calls made during one event-loop turn go out in one flush, so
/// pipelining needs nothing of the callers.
///
/// Every method runs on the channel's event loop; ``RedisClient`` hops there when it must.
final class RedisChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: RedisConnectionStateMachine<EventLoopPromise<[RedisReply]>>
    /// The one timer for every waiting call's deadline (a timer per call cost a heap insert and
    /// removal each), armed for the earliest.
    private var deadlineTimer: Scheduled<Void>?
    private let reader: RESPReplyReader
    private var context: ChannelHandlerContext?
    private var flushPending = false
    private let onPush: ((RedisReply) -> Void)?
    /// Why the connection closed, once it has.
    private(set) var closeReason: RedisError?

    /// `onPush` receives replies that answer no call (pub/sub messages); without it such a
    /// reply is a protocol error that closes the connection.
    init(maxReplyBytes: Int, onPush: ((RedisReply) -> Void)? = nil) {
        self.machine = RedisConnectionStateMachine(acceptsPushes: onPush != nil)
        self.reader = RESPReplyReader(maxBufferedBytes: maxReplyBytes)
        self.onPush = onPush
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        closeConnection(.connection("connection closed"))
    }

    /// Sends `commands` as one call; the promise gets one reply per command, or fails when the
    /// deadline passes first, or the connection breaks.
    func send(_ commands: [RedisCommand], deadline: NIODeadline, promise: EventLoopPromise<[RedisReply]>) {
        guard let context else {
            promise.fail(closeReason ?? RedisError.connection("not connected"))
            return
        }
        switch machine.send(promise, replies: commands.count, deadline: deadline) {
        case .fail(let error):
            promise.fail(error)
        case .write(let checkDeadlineAt):
            var buffer = context.channel.allocator.buffer(capacity: 64)
            for command in commands { command.encode(into: &buffer) }
            context.write(wrapOutboundOut(buffer), promise: nil)
            if let checkDeadlineAt { armDeadlineTimer(checkDeadlineAt, context) }
            scheduleFlush(context)
        }
    }

    /// Closes the connection; waiting calls fail with `error`.
    func close(_ error: RedisError) {
        closeConnection(error)
    }

    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        // After every call made in this event-loop turn: one write(2) for all of them.
        context.eventLoop.assumeIsolated().execute { [self] in
            flushPending = false
            self.context?.flush()
        }
    }

    private func armDeadlineTimer(_ deadline: NIODeadline, _ context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.deadlinesPassed()
        }
    }

    private func deadlinesPassed() {
        deadlineTimer = nil
        guard let context else { return }
        switch machine.deadlinesPassed(now: context.eventLoop.now) {
        case .fail(let expired, let next):
            for promise in expired { promise.fail(RedisError.timedOut) }
            if let next { armDeadlineTimer(next, context) }
        case .failAndClose(let expired, let failing):
            for promise in expired { promise.fail(RedisError.timedOut) }
            finishClosing(.timedOut, failing: failing)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try reader.feed(buffer)
            while let reply = try reader.next() {
                switch machine.receive(reply) {
                case .none: break
                case .succeed(let promise, let replies): promise.succeed(replies)
                case .push(let message): onPush?(message)
                case .close(let error, let failing):
                    finishClosing(error, failing: failing)
                    return
                }
            }
        } catch {
            closeConnection(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeConnection(.connection("connection closed by redis"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeConnection(.connection("\(error)"))
    }

    private func closeConnection(_ error: RedisError) {
        finishClosing(error, failing: machine.close(error))
    }

    private func finishClosing(_ error: RedisError, failing: [EventLoopPromise<[RedisReply]>]) {
        if closeReason == nil { closeReason = error }
        deadlineTimer?.cancel()
        deadlineTimer = nil
        for promise in failing { promise.fail(error) }
        if let context, context.channel.isActive { context.close(promise: nil) }
    }
}
