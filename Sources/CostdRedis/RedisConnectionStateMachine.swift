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
        let id: UInt64
        /// nil once abandoned (timed out): the replies are still read, then dropped.
        var call: Call?
        var remaining: Int
        var replies: [RedisReply]
        /// Replies the connection had received when this call was sent.
        let repliesSeenAtSend: UInt64
    }

    private enum State {
        case active
        case closed(RedisError)
    }

    private var state: State = .active
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var nextID: UInt64 = 0
    private var repliesSeen: UInt64 = 0
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
        /// Write the commands; `id` names the call for its deadline.
        case write(id: UInt64)
        /// The connection is closed: answer the call with this error, write nothing.
        case fail(RedisError)
    }

    /// A call of `replies` commands is about to be written.
    mutating func send(_ call: Call, replies: Int) -> SendAction {
        precondition(replies > 0, "a Redis call sends at least one command")
        switch state {
        case .closed(let error):
            return .fail(error)
        case .active:
            nextID &+= 1
            pending.append(Pending(id: nextID, call: call, remaining: replies, replies: [], repliesSeenAtSend: repliesSeen))
            return .write(id: nextID)
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

    enum TimeoutAction {
        /// Already answered.
        case none
        /// Answer the call with ``RedisError/timedOut``; the connection stays (replies still flow).
        case fail(Call)
        /// Answer the call with ``RedisError/timedOut`` and close the connection: not one reply
        /// came since the call was sent, so Redis is stalled or gone, not merely busy.
        case failAndClose(Call, failing: [Call])
    }

    mutating func timeOut(id: UInt64) -> TimeoutAction {
        guard case .active = state else { return .none }
        guard let index = pending.firstIndex(where: { $0.id == id }), let call = pending[index].call else { return .none }
        pending[index].call = nil
        pending[index].replies = []
        if repliesSeen == pending[index].repliesSeenAtSend {
            return .failAndClose(call, failing: close(.timedOut))
        }
        return .fail(call)
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
