import CostdCore
import Foundation
import NIOCore

/// Appends entries to the ledger's log and makes them durable behind the callers.
///
/// ``append(_:)`` writes an entry with `write(2)` on the caller's thread, under a lock that keeps
/// entries in sequence order: once it returns, the entry is in the kernel's page cache, so it
/// survives `kill -9` and any crash of costd; only a power loss or a kernel crash can still lose
/// it. A thread of its own (`costd-ledger-sync`) runs `fdatasync` continuously behind the
/// writes, one for every entry written while the previous sync ran (group commit). Redis's AOF
/// splits the work the same way: `write` on the main thread, `fsync` on a background one.
///
/// In `batched` mode syncs start at most every ``batchedSyncIntervalNanos``: a sync costs the
/// kernel about as much CPU whether it covers one entry or a hundred, and under load syncing
/// after every write took a sixth of the daemon's CPU for a window shorter by well under a
/// millisecond. In `always` mode callers wait for the sync, so it never waits.
///
/// ``whenAcknowledged(_:on:)`` completes, by ``LedgerSettings/Fsync``, once the entry is written
/// (`batched`: at once, with no thread hop) or once it is synced (`always`).
///
/// Each entry on disk:
///
/// ```
/// +-----------------+-----------------+-----------------------+
/// | length: UInt32  | CRC-32C: UInt32 | payload (JSON)        |
/// +-----------------+-----------------+-----------------------+
/// ```
final class GroupCommitWriter: @unchecked Sendable {
    /// Syncs a file's data; `FileIO.syncData` but in tests, which hold it to see who waits.
    typealias Sync = @Sendable (_ fd: Int32, _ path: String) throws(SystemError) -> Void

    /// A log switched away from: synced, closed and its directory synced (so the new log's name is
    /// durable) before anything after it counts as synced; then `afterSwitch` runs on the sync
    /// thread (the ledger writes its snapshot and deletes old logs there).
    private struct RetiredLog {
        var fd: Int32
        var path: String
        var newPath: String
        var lastSequence: UInt64
        var afterSwitch: @Sendable () -> Void
    }

    let mode: LedgerSettings.Fsync
    private let sync: Sync
    private let clock: CostdClock

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var fd: Int32
    private var path: String
    /// Reused for each entry's framing, so an append allocates nothing once warm.
    private var scratch: [UInt8] = []
    private var nextSequence: UInt64 = 1
    private var writtenSequence: UInt64 = 0
    private var syncedSequence: UInt64 = 0
    /// When the oldest entry not yet synced was written (monotonic nanoseconds).
    private var oldestUnsyncedNanos: UInt64?
    private var retired: [RetiredLog] = []
    /// Only in `always` mode: callers waiting for their entry to be synced.
    private var waiters: [(sequence: UInt64, promise: EventLoopPromise<Void>)] = []
    private var failure: SystemError?
    private var stopping = false
    private var stopped = false
    /// Whether the sync thread sleeps on `condition`: writes only signal then.
    private var syncerWaiting = false
    /// When the last sync started (monotonic nanoseconds; the system's, not `clock`'s: it paces
    /// real syncs).
    private var lastSyncStartNanos: UInt64 = 0
    private var windows = SyncWindows()
    private(set) var bytesInCurrentLog: Int64

    static let headerLength = 8
    /// The shortest time between the starts of two syncs in `batched` mode.
    static let batchedSyncIntervalNanos: UInt64 = 1_000_000

    init(
        path: String, fd: Int32, size: Int64, mode: LedgerSettings.Fsync, clock: CostdClock = .system,
        sync: @escaping Sync = { fd, path throws(SystemError) in try FileIO.syncData(fd, path: path) }
    ) {
        self.path = path
        self.fd = fd
        self.bytesInCurrentLog = size
        self.mode = mode
        self.clock = clock
        self.sync = sync
    }

    func start() {
        let thread = Thread { [self] in runSyncer() }
        thread.name = "costd-ledger-sync"
        thread.start()
    }

    /// Writes one entry to the log; returns its sequence number, for ``whenAcknowledged(_:on:)``.
    /// After a failed write nothing more is written (a torn entry must stay the log's last), and
    /// every later entry's acknowledgement fails.
    @discardableResult
    func append(_ payload: [UInt8]) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        let sequence = nextSequence
        nextSequence += 1
        guard failure == nil else { return sequence }
        scratch.removeAll(keepingCapacity: true)
        GroupCommitWriter.encode(payload, into: &scratch)
        do {
            try FileIO.writeAll(fd, scratch, path: path)
        } catch {
            fail(error)
            return sequence
        }
        writtenSequence = sequence
        if oldestUnsyncedNanos == nil { oldestUnsyncedNanos = clock.monotonicNanos }
        bytesInCurrentLog += Int64(scratch.count)
        if syncerWaiting { condition.broadcast() }
        return sequence
    }

    static func encode(_ payload: [UInt8], into buffer: inout [UInt8]) {
        let length = UInt32(payload.count)
        let crc = CRC32C.checksum(payload)
        for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        buffer.append(contentsOf: payload)
    }

    /// Succeeds once entry `sequence` may be acknowledged: written (`batched`), or synced with
    /// every entry before it (`always`). Fails if it could not be.
    func whenAcknowledged(_ sequence: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        condition.lock()
        defer { condition.unlock() }
        if sequence <= (mode == .batched ? writtenSequence : syncedSequence) { return eventLoop.makeSucceededFuture(()) }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        let promise = eventLoop.makePromise(of: Void.self)
        waiters.append((sequence, promise))
        return promise.futureResult
    }

    /// Every entry appended from now on goes to `newPath`; the old log is synced and closed behind,
    /// then `afterSwitch` runs on the sync thread.
    func rotate(to newPath: String, afterSwitch: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard failure == nil else { return }
        let newFD: Int32
        do {
            newFD = try FileIO.open(newPath, flags: O_WRONLY | O_CREAT | O_APPEND)
        } catch {
            fail(error)
            return
        }
        retired.append(RetiredLog(fd: fd, path: path, newPath: newPath, lastSequence: writtenSequence, afterSwitch: afterSwitch))
        (fd, path, bytesInCurrentLog) = (newFD, newPath, 0)
        condition.broadcast()
    }

    /// Syncs what is written, stops the sync thread and closes the log.
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    var isFailed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return failure != nil
    }

    /// How long written entries waited for their sync: the window a power loss could lose.
    var syncWindows: SyncWindows.Summary {
        // Copied under the lock, sorted outside it: appends on the event loops wait for this lock.
        condition.lock()
        let windows = self.windows
        condition.unlock()
        return windows.summary
    }

    /// Entries written and not yet synced.
    var unsyncedEntries: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return writtenSequence - syncedSequence
    }

    // MARK: - The sync thread

    private func runSyncer() {
        condition.lock()
        while true {
            while retired.isEmpty && (writtenSequence == syncedSequence || failure != nil) && !stopping {
                syncerWaiting = true
                condition.wait()
                syncerWaiting = false
            }
            if stopping && (failure != nil || (retired.isEmpty && writtenSequence == syncedSequence)) { break }
            if failure != nil { continue }
            if !retired.isEmpty {
                let log = retired.removeFirst()
                condition.unlock()
                let result = Result { () throws(SystemError) in
                    try sync(log.fd, log.path)
                    Glibc.close(log.fd)
                    try FileIO.syncDirectory((log.newPath as NSString).deletingLastPathComponent)
                }
                condition.lock()
                if case .failure(let error) = result {
                    fail(error)
                    continue
                }
                synced(upTo: log.lastSequence, since: nil)
                condition.unlock()
                log.afterSwitch()
                condition.lock()
                continue
            }
            let now = DispatchTime.now().uptimeNanoseconds
            let next = lastSyncStartNanos &+ GroupCommitWriter.batchedSyncIntervalNanos
            if mode == .batched && !stopping && now < next {
                // Woken early only by a rotation or close; new writes just wait for this sync.
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(next - now) / 1e9))
                continue
            }
            lastSyncStartNanos = now
            let (target, fd, path, since) = (writtenSequence, self.fd, self.path, oldestUnsyncedNanos)
            oldestUnsyncedNanos = nil
            condition.unlock()
            let result = Result { () throws(SystemError) in try sync(fd, path) }
            condition.lock()
            if case .failure(let error) = result {
                fail(error)
                continue
            }
            synced(upTo: target, since: since)
        }
        for log in retired { Glibc.close(log.fd) }
        Glibc.close(fd)
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Marks entries up to `sequence` synced and completes their waiters. Call with `condition`
    /// held; it stays held.
    private func synced(upTo sequence: UInt64, since: UInt64?) {
        syncedSequence = max(syncedSequence, sequence)
        if let since { windows.add(nanos: clock.monotonicNanos &- since) }
        guard !waiters.isEmpty else { return }
        var done: [(EventLoopPromise<Void>, Void)] = []
        waiters.removeAll { waiter in
            guard waiter.sequence <= syncedSequence else { return false }
            done.append((waiter.promise, ()))
            return true
        }
        // Completing runs callbacks only on their own loops (never here), so the lock may stay held.
        PromiseBatch.succeed(done)
    }

    /// Remembers the first failure and fails every waiter, each on its own loop (never inline: the
    /// caller may be that loop, holding `condition`). Call with `condition` held.
    private func fail(_ error: SystemError) {
        if failure == nil { failure = error }
        for (_, promise) in waiters {
            promise.futureResult.eventLoop.execute { promise.fail(error) }
        }
        waiters = []
        condition.broadcast()
    }
}
