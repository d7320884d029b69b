import NIOCore

/// What one Redis connection owes its callers, with no I/O: the handler tells it what happened
/// (a call sent, a reply parsed, a deadline passed, the connection closed) and performs the
/// action it returns.
///
/// Redis answers in order, so the calls waiting for replies form a queue: each reply belongs
/// to the oldest call still short of replies. A call whose deadline passed is answered at once
/// but stays in the queue, marked abandoned, so that its late replies are consumed and dropped
/// instead of being taken for the next call's.
///
/// `Call` is whatever the handler needs to answer a caller (a promise); tests use plain values.
struct RedisConnectionStateMachine<Call> {
    private struct Pending {
        /// nil once abandoned (timed out): the replies are still read, then dropped.
        var call: Call?
        var remaining: Int
        var replies: [RedisReply]
        let deadline: NIODeadline
        /// Replies the connection had received when this call was sent.
        let repliesSeenAtSend: UInt64
    }

    private enum State {
        case active
        case closed(RedisError)
    }

    private var state: State = .active
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var repliesSeen: UInt64 = 0
    /// When the handler's one deadline timer fires; nil when none is armed. A call answered in
    /// time leaves it be: the timer then finds nothing due and re-arms for what still waits.
    private var timerDeadline: NIODeadline?
    /// Whether replies that answer no call are pub/sub messages (a subscriber connection) rather
    /// than a broken protocol.
    private let acceptsPushes: Bool

    init(acceptsPushes: Bool = false) {
        self.acceptsPushes = acceptsPushes
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Calls still waiting for replies, abandoned ones included.
    var waitingCount: Int { pending.count }

    enum SendAction {
        /// Write the commands. `checkDeadlineAt` is set when this call's deadline is earlier
        /// than every other waiting call's: (re)arm the one timer for it.
        case write(checkDeadlineAt: NIODeadline?)
        /// The connection is closed: answer the call with this error, write nothing.
        case fail(RedisError)
    }

    /// A call of `replies` commands, answered by `deadline` at the latest, is about to be written.
    mutating func send(_ call: Call, replies: Int, deadline: NIODeadline) -> SendAction {
        precondition(replies > 0, "a Redis call sends at least one command")
        switch state {
        case .closed(let error):
            return .fail(error)
        case .active:
            pending.append(Pending(call: call, remaining: replies, replies: [], deadline: deadline, repliesSeenAtSend: repliesSeen))
            if let armed = timerDeadline, armed <= deadline { return .write(checkDeadlineAt: nil) }
            timerDeadline = deadline
            return .write(checkDeadlineAt: deadline)
        }
    }

    enum ReplyAction {
        /// The reply completed no call yet (more are due, or its call was abandoned).
        case none
        /// The call has all its replies.
        case succeed(Call, [RedisReply])
        /// A pub/sub message.
        case push(RedisReply)
        /// A reply nobody asked for: close the connection and fail what waits.
        case close(RedisError, failing: [Call])
    }

    mutating func receive(_ reply: RedisReply) -> ReplyAction {
        guard case .active = state else { return .none }
        repliesSeen &+= 1
        guard !pending.isEmpty else {
            if acceptsPushes { return .push(reply) }
            let error = RedisError.connection("a reply that answers no command")
            return .close(error, failing: close(error))
        }
        pending[pending.startIndex].remaining -= 1
        if pending[pending.startIndex].call != nil { pending[pending.startIndex].replies.append(reply) }
        guard pending[pending.startIndex].remaining == 0 else { return .none }
        let done = pending.removeFirst()
        guard let call = done.call else { return .none }
        return .succeed(call, done.replies)
    }

    enum DeadlineAction {
        /// Answer these calls with ``RedisError/timedOut``; the connection stays (replies still
        /// flow). Check again at `next`, the earliest deadline still waiting, if any.
        case fail([Call], next: NIODeadline?)
        /// Answer `expired` with ``RedisError/timedOut``, close the connection and fail
        /// `failing` too: not one reply came during a whole call's wait, so Redis is stalled or
        /// gone, not merely busy.
        case failAndClose(expired: [Call], failing: [Call])
    }

    /// The time is `now`: calls whose deadline has passed are answered.
    mutating func deadlinesPassed(now: NIODeadline) -> DeadlineAction {
        timerDeadline = nil
        guard case .active = state else { return .fail([], next: nil) }
        var expired: [Call] = []
        var stalled = false
        var next: NIODeadline?
        for index in pending.indices {
            guard let call = pending[index].call else { continue }
            if pending[index].deadline <= now {
                expired.append(call)
                pending[index].call = nil
                pending[index].replies = []
                if repliesSeen == pending[index].repliesSeenAtSend { stalled = true }
            } else if next.map({ pending[index].deadline < $0 }) ?? true {
                next = pending[index].deadline
            }
        }
        if stalled { return .failAndClose(expired: expired, failing: close(.timedOut)) }
        timerDeadline = next
        return .fail(expired, next: next)
    }

    /// The connection is closing (or closed): every call still waiting is answered with `error`.
    /// Returns those calls; later calls fail at once with the same error.
    mutating func close(_ error: RedisError) -> [Call] {
        guard case .active = state else { return [] }
        state = .closed(error)
        let waiting = pending.compactMap(\.call)
        pending.removeAll()
        return waiting
    }
}
