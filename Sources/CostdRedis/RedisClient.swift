import CostdCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// Redis for the daemon: a small fixed pool of hiredis connections, each on a thread of its
/// own, so that no event loop ever waits on Redis. Callers get futures; every call has a
/// deadline, after which its future fails with ``RedisError/timedOut`` whether or not Redis
/// has answered (a late answer is dropped).
///
/// Commands waiting in the queue are sent together as one pipeline by whichever worker takes
/// them. Any error, timeouts included, discards the worker's connection (hiredis contexts are
/// unusable afterwards) and marks Redis down; while it is down calls fail at once with
/// ``RedisError/unavailable`` instead of queueing, and the workers reconnect with backoff.
/// State changes are logged once, not per call.
public final class RedisClient: Sendable {
    public let settings: RedisSettings
    private let logger: Logger
    private let queue = JobQueue()
    private let available = Atomic<Bool>(false)
    private let health = Mutex<Health>(Health())
    private let scripts = Mutex<[String: String]>([:])
    private let onStateChange: @Sendable (Bool) -> Void
    /// Bumped whenever Redis is found down: connections made before then are presumed broken
    /// and are remade before use, so one outage is noticed once, not once per pooled connection.
    private let outageEpoch = Atomic<Int>(0)

    struct Health {
        var up = false
        var everUp = false
        var lastError: String?
        var connectedWorkers = 0
    }

    /// `onStateChange(true)` runs when Redis becomes reachable (at start and after an outage),
    /// `false` when it is lost.
    public init(settings: RedisSettings, logger: Logger, onStateChange: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.settings = settings
        self.logger = logger
        self.onStateChange = onStateChange
    }

    /// Starts the workers; each connects in the background.
    public func start() {
        for index in 0..<settings.poolSize {
            let thread = Thread { [self] in runWorker(index) }
            thread.name = "costd-redis-\(index)"
            thread.start()
        }
    }

    /// Stops the workers; queued calls fail.
    public func shutdown() {
        queue.stop()
    }

    public var isAvailable: Bool { available.load(ordering: .relaxed) }

    public var state: (up: Bool, lastError: String?) {
        health.withLock { ($0.up, $0.lastError) }
    }

    /// Waits (blocking) until Redis is up or `timeoutMillis` pass; returns whether it is up.
    public func waitUntilAvailable(timeoutMillis: Int64) -> Bool {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMillis) * 1_000_000
        while !isAvailable && DispatchTime.now().uptimeNanoseconds < deadline { usleep(5_000) }
        return isAvailable
    }

    /// Sends `commands` as one pipeline; the future holds one reply per command.
    public func execute(_ commands: [RedisCommand], timeoutMillis: Int64, on eventLoop: any EventLoop)
        -> EventLoopFuture<[RedisReply]>
    {
        guard isAvailable else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        let promise = eventLoop.makePromise(of: [RedisReply].self)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMillis) * 1_000_000
        let job = RedisJob(commands: commands, deadline: deadline, promise: promise)
        let timer = eventLoop.scheduleTask(in: .milliseconds(timeoutMillis)) { job.fail(RedisError.timedOut) }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        queue.push(job)
        return promise.futureResult
    }

    /// Makes a script known, so that an EVALSHA of it sent with ``execute(_:timeoutMillis:on:)``
    /// can be reloaded on NOSCRIPT.
    public func registerScript(_ script: RedisScript) {
        scripts.withLock { $0[script.sha1] = script.source }
    }

    /// Runs a Lua script by its SHA (EVALSHA), loading it on the first NOSCRIPT.
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: [[UInt8]], timeoutMillis: Int64, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RedisReply> {
        scripts.withLock { $0[script.sha1] = script.source }
        let command: RedisCommand =
            [Array("EVALSHA".utf8), Array(script.sha1.utf8), Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) }
            + arguments
        return execute([command], timeoutMillis: timeoutMillis, on: eventLoop).map { $0[0] }
    }

    // MARK: - Workers

    private func runWorker(_ index: Int) {
        let connection = RedisConnection(
            endpoint: settings.endpoint,
            connectTimeoutMillis: settings.connectTimeoutMillis,
            commandTimeoutMillis: max(settings.recordTimeoutMillis, settings.cacheTimeoutMillis),
            maxReplyBytes: settings.maxReplyBytes,
            name: "costd"
        )
        var backoffMillis: Int64 = 50
        var connectedEpoch = -1
        while !queue.isStopped {
            if connection.isConnected && connectedEpoch < outageEpoch.load(ordering: .relaxed) {
                connection.disconnect()
            }
            if !connection.isConnected {
                do {
                    connectedEpoch = outageEpoch.load(ordering: .relaxed)
                    try connection.connect()
                    backoffMillis = 50
                    markUp()
                } catch {
                    markDown(error, worker: index, connected: false)
                    queue.sleep(milliseconds: backoffMillis)
                    backoffMillis = min(backoffMillis * 2, 2_000)
                    continue
                }
            }
            guard let jobs = queue.take(max: 64) else { break }
            if connectedEpoch < outageEpoch.load(ordering: .relaxed) {
                // Redis went down while this worker waited: reconnect before using the connection.
                connection.disconnect()
                do {
                    connectedEpoch = outageEpoch.load(ordering: .relaxed)
                    try connection.connect()
                } catch {
                    for job in jobs { job.fail(error) }
                    markDown(error, worker: index, connected: false)
                    continue
                }
            }
            let now = DispatchTime.now().uptimeNanoseconds
            let live = jobs.filter { job in
                if job.deadline <= now {
                    job.fail(RedisError.timedOut)
                    return false
                }
                return !job.isCompleted
            }
            guard !live.isEmpty else { continue }
            do {
                var replies = try connection.pipeline(live.flatMap(\.commands))
                try reloadMissingScripts(&replies, commands: live.flatMap(\.commands), connection: connection)
                var offset = 0
                var completions: [(RedisJob, [RedisReply])] = []
                for job in live {
                    completions.append((job, Array(replies[offset..<(offset + job.commands.count)])))
                    offset += job.commands.count
                }
                RedisJob.succeedAll(completions)
            } catch {
                for job in live { job.fail(error) }
                markDown(error, worker: index, connected: true)
            }
        }
        connection.disconnect()
        queue.failAll(RedisError.unavailable)
    }

    /// Replaces NOSCRIPT errors (a restarted or flushed Redis forgot the script) by running the
    /// script with EVAL, which also caches it again.
    private func reloadMissingScripts(_ replies: inout [RedisReply], commands: [RedisCommand], connection: RedisConnection)
        throws(RedisError)
    {
        for index in replies.indices {
            guard let message = replies[index].errorMessage, message.hasPrefix("NOSCRIPT") else { continue }
            let sha = String(decoding: commands[index][1], as: UTF8.self)
            guard let source = scripts.withLock({ $0[sha] }) else { continue }
            var command = commands[index]
            command[0] = Array("EVAL".utf8)
            command[1] = Array(source.utf8)
            replies[index] = try connection.command(command)
        }
    }

    private func markUp() {
        let changed = health.withLock { health -> Bool in
            health.connectedWorkers += 1
            defer {
                health.up = true
                health.everUp = true
                health.lastError = nil
            }
            return !health.up
        }
        available.store(true, ordering: .relaxed)
        if changed {
            logger.notice("Redis connected", metadata: ["redis": "\(settings.endpoint)"])
            onStateChange(true)
        }
    }

    private func markDown(_ error: any Error, worker: Int, connected: Bool) {
        outageEpoch.add(1, ordering: .relaxed)
        let (changed, first) = health.withLock { health -> (Bool, Bool) in
            if connected { health.connectedWorkers = max(0, health.connectedWorkers - 1) }
            let wasUp = health.up
            let first = !health.everUp && health.lastError == nil
            health.up = false
            health.lastError = "\(error)"
            return (wasUp, first)
        }
        available.store(false, ordering: .relaxed)
        if changed {
            logger.error("Redis unreachable; cache calls use L1 only and records go to the local backlog", metadata: ["redis": "\(settings.endpoint)", "error": "\(error)"])
            onStateChange(false)
        } else if first {
            logger.warning("Redis not reachable yet; retrying", metadata: ["redis": "\(settings.endpoint)", "error": "\(error)"])
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

/// One pipeline of commands and the promise waiting for its replies.
final class RedisJob: Sendable {
    let commands: [RedisCommand]
    let deadline: UInt64
    private let promise: EventLoopPromise<[RedisReply]>
    private let completed = Atomic<Bool>(false)

    init(commands: [RedisCommand], deadline: UInt64, promise: EventLoopPromise<[RedisReply]>) {
        self.commands = commands
        self.deadline = deadline
        self.promise = promise
    }

    var isCompleted: Bool { completed.load(ordering: .relaxed) }

    func succeed(_ replies: [RedisReply]) {
        if completed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            promise.succeed(replies)
        }
    }

    /// Completes many jobs with one task per event loop instead of one wake-up per job.
    static func succeedAll(_ completions: [(RedisJob, [RedisReply])]) {
        var byLoop: [ObjectIdentifier: (any EventLoop, [(RedisJob, [RedisReply])])] = [:]
        for completion in completions {
            let loop = completion.0.promise.futureResult.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append(completion)
        }
        for (loop, group) in byLoop.values {
            loop.execute {
                for (job, replies) in group { job.succeed(replies) }
            }
        }
    }

    func fail(_ error: any Error) {
        if completed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            promise.fail(error)
        }
    }
}

/// The workers' shared queue.
final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [RedisJob] = []
    private var stopped = false
    /// Workers asleep on `condition`: a push only signals when one is.
    private var waiting = 0

    func push(_ job: RedisJob) {
        condition.lock()
        if stopped {
            condition.unlock()
            job.fail(RedisError.unavailable)
            return
        }
        jobs.append(job)
        if waiting > 0 { condition.signal() }
        condition.unlock()
    }

    /// Up to `max` jobs, waiting for at least one; nil once stopped.
    func take(max: Int) -> [RedisJob]? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !stopped {
            waiting += 1
            condition.wait()
            waiting -= 1
        }
        if stopped { return nil }
        let count = min(max, jobs.count)
        let taken = Array(jobs.prefix(count))
        jobs.removeFirst(count)
        return taken
    }

    /// Sleeps, waking early when stopped.
    func sleep(milliseconds: Int64) {
        condition.lock()
        defer { condition.unlock() }
        if !stopped { _ = condition.wait(until: Date().addingTimeInterval(Double(milliseconds) / 1000)) }
    }

    var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    func failAll(_ error: any Error) {
        condition.lock()
        let pending = jobs
        jobs = []
        condition.unlock()
        for job in pending { job.fail(error) }
    }
}
