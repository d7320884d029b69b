import CostdCore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Redis for the daemon: connections owned by the event loops (one per loop unless
/// `redis.pool_size` says otherwise), so a call made on a loop is written, answered and
/// completed on that loop with no thread hop. Calls made in one event-loop turn share one
/// write; replies come back in order on the same connection.
///
/// Every call has a deadline, after which its future fails with ``RedisError/timedOut``
/// whether or not Redis has answered (a late answer is read and dropped). A connection that
/// breaks, or on which not one reply came during a call's whole deadline, marks Redis down:
/// while it is down calls fail at once with ``RedisError/unavailable`` instead of waiting,
/// and the connections come back with backoff. State changes are logged once, not per call.
public final class RedisClient: Sendable {
    public let settings: RedisSettings
    /// The connections of each event loop, by the loop's identity; immutable after init.
    private let connectionsByLoop: [ObjectIdentifier: LoopConnections]
    private let allSlots: [RedisConnectionSlot]
    private let nextSlot = Atomic<Int>(0)
    private let health: RedisHealth
    private let scripts = Mutex<[String: String]>([:])

    /// The connections that live on one event loop; `next` is touched on that loop only.
    private final class LoopConnections: @unchecked Sendable {
        let slots: [RedisConnectionSlot]
        var next = 0

        init(slots: [RedisConnectionSlot]) {
            self.slots = slots
        }

        func pick() -> RedisConnectionSlot? {
            for _ in slots.indices {
                next = next + 1 == slots.count ? 0 : next + 1
                if slots[next].isReady { return slots[next] }
            }
            return nil
        }
    }

    /// `onStateChange(true)` runs (on an event loop) when Redis becomes reachable, at start and
    /// after an outage; `false` when it is lost.
    public init(
        settings: RedisSettings, group: any EventLoopGroup, logger: Logger,
        onStateChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.settings = settings
        let health = RedisHealth(endpoint: settings.endpoint, logger: logger, onStateChange: onStateChange)
        self.health = health
        let loops = Array(group.makeIterator())
        let count = settings.poolSize == 0 ? loops.count : settings.poolSize
        var slots: [RedisConnectionSlot] = []
        for index in 0..<count {
            let events = RedisConnectionSlot.Events(
                ready: { health.markUp() },
                failed: { error, _ in health.markDown(error) }
            )
            slots.append(
                RedisConnectionSlot(eventLoop: loops[index % loops.count], settings: settings, role: .commands, name: "costd", events: events))
        }
        var byLoop: [ObjectIdentifier: LoopConnections] = [:]
        for loop in loops {
            let own = slots.filter { $0.eventLoop === loop }
            if !own.isEmpty { byLoop[ObjectIdentifier(loop)] = LoopConnections(slots: own) }
        }
        self.allSlots = slots
        self.connectionsByLoop = byLoop
    }

    /// Starts connecting, in the background.
    public func start() {
        for slot in allSlots { slot.start() }
    }

    /// Closes every connection; calls waiting fail.
    public func shutdown() {
        for slot in allSlots { slot.stop() }
    }

    public var isAvailable: Bool { health.isAvailable }

    public var state: (up: Bool, lastError: String?) { health.state }

    /// Waits (blocking the calling thread, never an event loop) until Redis is up or
    /// `timeoutMillis` pass; returns whether it is up.
    public func waitUntilAvailable(timeoutMillis: Int64) -> Bool {
        let deadline = NIODeadline.now() + .milliseconds(timeoutMillis)
        while !isAvailable && NIODeadline.now() < deadline { usleep(2_000) }
        return isAvailable
    }

    /// Sends `commands` as one pipeline; the future holds one reply per command. A script
    /// Redis has forgotten (`NOSCRIPT` to an `EVALSHA` of a registered script) is sent again
    /// with `EVAL`, which also loads it.
    public func execute(_ commands: [RedisCommand], timeoutMillis: Int64, on eventLoop: any EventLoop)
        -> EventLoopFuture<[RedisReply]>
    {
        // Deadlines are kept by the event loop's timers, so they are on the event loop's clock
        // (an embedded loop's in tests), not the engine's.
        let deadline = eventLoop.now + .milliseconds(timeoutMillis)
        let sent = send(commands, deadline: deadline, on: eventLoop)
        // Only a script call can meet NOSCRIPT; the rest need no second step.
        guard commands.contains(where: { $0.first?.elementsEqual(RedisClient.evalsha) == true }) else { return sent }
        return sent.flatMap { replies in
            self.loadingMissingScripts(replies, commands: commands, deadline: deadline, on: eventLoop)
        }
    }

    static let evalsha = Array("EVALSHA".utf8)

    /// Makes a script known, so that an EVALSHA of it can be answered by EVAL on NOSCRIPT.
    public func registerScript(_ script: RedisScript) {
        scripts.withLock { $0[script.sha1] = script.source }
    }

    // MARK: - Sending

    private func send(_ commands: [RedisCommand], deadline: NIODeadline, on eventLoop: any EventLoop)
        -> EventLoopFuture<[RedisReply]>
    {
        guard isAvailable else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        let promise = eventLoop.makePromise(of: [RedisReply].self)
        // The fast path: the caller's own loop has a live connection.
        if eventLoop.inEventLoop, let slot = connectionsByLoop[ObjectIdentifier(eventLoop)]?.pick() {
            slot.send(commands, deadline: deadline, promise: promise)
            return promise.futureResult
        }
        // Otherwise any live connection, through its loop.
        guard let slot = anyReadySlot() else {
            promise.fail(RedisError.unavailable)
            return promise.futureResult
        }
        slot.eventLoop.execute { slot.send(commands, deadline: deadline, promise: promise) }
        return promise.futureResult
    }

    private func anyReadySlot() -> RedisConnectionSlot? {
        let start = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue
        for offset in allSlots.indices {
            let slot = allSlots[(start &+ offset) % allSlots.count]
            if slot.isReady { return slot }
        }
        return nil
    }

    private func loadingMissingScripts(
        _ replies: [RedisReply], commands: [RedisCommand], deadline: NIODeadline, on eventLoop: any EventLoop
    ) -> EventLoopFuture<[RedisReply]> {
        var retried: [Int] = []
        var evals: [RedisCommand] = []
        for index in replies.indices {
            guard let message = replies[index].errorMessage, message.hasPrefix("NOSCRIPT"), commands[index].count >= 2 else { continue }
            let sha = String(decoding: commands[index][1], as: UTF8.self)
            guard let source = scripts.withLock({ $0[sha] }) else { continue }
            retried.append(index)
            evals.append(commands[index].replacingPrefix(2, with: [Array("EVAL".utf8), Array(source.utf8)]))
        }
        guard !evals.isEmpty else { return eventLoop.makeSucceededFuture(replies) }
        return send(evals, deadline: deadline, on: eventLoop).map { evalReplies in
            var replies = replies
            for (index, reply) in zip(retried, evalReplies) { replies[index] = reply }
            return replies
        }
    }
}

/// A Lua script with its SHA-1, for EVALSHA.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1Hex.digest(Array(source.utf8))
    }
}
