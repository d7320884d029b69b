import Foundation
import NIOCore

/// Appends entries to the ledger's log on a thread of its own and makes them durable in
/// batches: one `write` and one `fdatasync` for every entry that arrived while the previous
/// batch was being synced (group commit). Callers wait on a future, never on the disk, so no
/// event loop ever blocks on I/O.
///
/// Each entry on disk:
///
/// ```
/// +-----------------+-----------------+-----------------------+
/// | length: UInt32  | CRC-32C: UInt32 | payload (JSON)        |
/// +-----------------+-----------------+-----------------------+
/// ```
///
/// Entries get increasing sequence numbers; ``whenDurable(_:on:)`` waits until an entry and
/// every entry before it is on disk.
final class GroupCommitWriter: @unchecked Sendable {
    /// Switches to a new log file once everything before it is durable, then runs `afterSwitch`
    /// on the writer thread (the ledger writes its snapshot and deletes old logs there).
    struct Rotation {
        var newPath: String
        var afterSwitch: @Sendable () -> Void
    }

    private enum Item {
        case entries([UInt8], lastSequence: UInt64)
        case rotation(Rotation)
    }

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    /// Entries appended since the last rotation, already encoded; appended to in place.
    private var pendingBytes: [UInt8] = []
    private var pendingLastSequence: UInt64 = 0
    /// Finished groups (entries before a rotation, and the rotation), in order.
    private var queue: [Item] = []
    private var nextSequence: UInt64 = 1
    private var durableSequence: UInt64 = 0
    private var waiters: [(sequence: UInt64, promise: EventLoopPromise<Void>)] = []
    private var failure: SystemError?
    private var stopping = false
    private var stopped = false
    /// Whether the writer thread sleeps on `condition`: appends only signal then.
    private var writerWaiting = false
    private(set) var bytesInCurrentLog: Int64

    // Owned by the writer thread once started.
    private var fd: Int32
    private var path: String

    static let headerLength = 8

    init(path: String, fd: Int32, size: Int64) {
        self.path = path
        self.fd = fd
        self.bytesInCurrentLog = size
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "costd-ledger"
        thread.start()
    }

    /// Appends one entry; returns its sequence number. Call `whenDurable` to wait for it.
    @discardableResult
    func append(_ payload: [UInt8]) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        let sequence = nextSequence
        nextSequence += 1
        GroupCommitWriter.encode(payload, into: &pendingBytes)
        pendingLastSequence = sequence
        bytesInCurrentLog += Int64(payload.count + GroupCommitWriter.headerLength)
        if writerWaiting { condition.signal() }
        return sequence
    }

    static func encode(_ payload: [UInt8], into buffer: inout [UInt8]) {
        let length = UInt32(payload.count)
        let crc = CRC32C.checksum(payload)
        for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        buffer.append(contentsOf: payload)
    }

    /// A future that succeeds once entry `sequence` (and all before it) is on disk.
    func whenDurable(_ sequence: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        condition.lock()
        defer { condition.unlock() }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        if sequence <= durableSequence { return eventLoop.makeSucceededFuture(()) }
        let promise = eventLoop.makePromise(of: Void.self)
        waiters.append((sequence, promise))
        return promise.futureResult
    }

    /// Every entry appended from now on goes to `newPath`; the entries before it are made
    /// durable in the old file first, then `afterSwitch` runs on the writer thread.
    func rotate(to newPath: String, afterSwitch: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        takePendingBytes()
        queue.append(.rotation(Rotation(newPath: newPath, afterSwitch: afterSwitch)))
        bytesInCurrentLog = 0
        condition.signal()
    }

    /// Writes what is pending, stops the thread and closes the log.
    func close() {
        condition.lock()
        stopping = true
        condition.signal()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    var isFailed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return failure != nil
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && pendingBytes.isEmpty && !stopping {
                writerWaiting = true
                condition.wait()
                writerWaiting = false
            }
            takePendingBytes()
            let items = queue
            queue = []
            let failed = failure != nil
            condition.unlock()
            if items.isEmpty { break }  // stopping, and nothing left to write

            var written: UInt64? = nil
            var needsSync = false
            var error: SystemError? = nil
            if !failed {
                do throws(SystemError) {
                    for item in items {
                        switch item {
                        case .entries(let bytes, let lastSequence):
                            try FileIO.writeAll(fd, bytes, path: path)
                            written = lastSequence
                            needsSync = true
                        case .rotation(let rotation):
                            if needsSync {
                                try FileIO.syncData(fd, path: path)
                                needsSync = false
                            }
                            let newFD = try FileIO.open(rotation.newPath, flags: O_WRONLY | O_CREAT | O_APPEND)
                            try FileIO.syncDirectory((rotation.newPath as NSString).deletingLastPathComponent)
                            Glibc.close(fd)
                            fd = newFD
                            path = rotation.newPath
                            rotation.afterSwitch()
                        }
                    }
                    if needsSync { try FileIO.syncData(fd, path: path) }
                } catch let systemError {
                    error = systemError
                    written = nil
                }
            }
            complete(upTo: written, failure: error)
        }
        Glibc.close(fd)
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Moves the entries appended so far into the queue. Call with `condition` held.
    private func takePendingBytes() {
        guard !pendingBytes.isEmpty else { return }
        queue.append(.entries(pendingBytes, lastSequence: pendingLastSequence))
        pendingBytes = []
        pendingBytes.reserveCapacity(16 << 10)
    }

    private func complete(upTo sequence: UInt64?, failure newFailure: SystemError?) {
        condition.lock()
        if let newFailure, failure == nil { failure = newFailure }
        if failure == nil, let sequence { durableSequence = max(durableSequence, sequence) }
        var done: [EventLoopPromise<Void>] = []
        var failed: [EventLoopPromise<Void>] = []
        if failure != nil {
            failed = waiters.map(\.promise)
            waiters = []
        } else {
            var remaining: [(sequence: UInt64, promise: EventLoopPromise<Void>)] = []
            for waiter in waiters {
                if waiter.sequence <= durableSequence { done.append(waiter.promise) } else { remaining.append(waiter) }
            }
            waiters = remaining
        }
        let failure = self.failure
        condition.unlock()
        PromiseBatch.succeed(done.map { ($0, ()) })
        if let failure { for promise in failed { promise.fail(failure) } }
    }
}
