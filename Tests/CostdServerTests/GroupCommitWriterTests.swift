import CostdCore
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import CostdServer

/// The ledger's writer against real files, with its `fdatasync` replaced by one the test holds:
/// what is acknowledged while the disk has not synced is then seen, not guessed from timings.
@Suite("Group-commit writer", .timeLimit(.minutes(1)))
struct GroupCommitWriterTests {
    /// A sync that blocks until the test opens it, and tells the test when it is waiting.
    final class HeldSync: Sendable {
        private let entered = DispatchSemaphore(value: 0)
        private let opened = DispatchSemaphore(value: 0)
        private let failWith = Mutex<Int32?>(nil)
        let syncedFDs = Mutex<[Int32]>([])

        var sync: GroupCommitWriter.Sync {
            { [self] fd, path throws(SystemError) in
                entered.signal()
                opened.wait()
                if let errno = failWith.withLock({ $0 }) { throw SystemError("fdatasync \(path)", errno: errno) }
                syncedFDs.withLock { $0.append(fd) }
                try FileIO.syncData(fd, path: path)
            }
        }

        /// Waits until the writer's thread is inside a sync.
        func waitUntilSyncing() { entered.wait() }
        /// Lets `count` syncs through.
        func open(_ count: Int = 1) { for _ in 0..<count { opened.signal() } }
        func failNext(errno: Int32) { failWith.withLock { $0 = errno } }
    }

    final class LogFiles {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-writer-\(UUID().uuidString)").path

        init() throws { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func path(_ name: String) -> String { directory + "/" + name }

        func open(_ name: String) throws -> Int32 {
            try FileIO.open(path(name), flags: O_WRONLY | O_CREAT | O_APPEND)
        }

        func bytes(_ name: String) -> [UInt8] {
            (try? FileIO.readAll(path(name))).flatMap { $0 } ?? []
        }
    }

    static func entry(_ text: String) -> [UInt8] {
        var framed: [UInt8] = []
        GroupCommitWriter.encode(Array(text.utf8), into: &framed)
        return framed
    }

    /// Set when a future completes.
    final class Completion: Sendable {
        let done = Atomic<Bool>(false)

        init(of future: EventLoopFuture<Void>) {
            future.whenComplete { _ in self.done.store(true, ordering: .relaxed) }
        }

        /// Asked on the future's own loop, where completion happens.
        func isDone(_ future: EventLoopFuture<Void>) async throws -> Bool {
            try await future.eventLoop.submit { self.done.load(ordering: .relaxed) }.get()
        }
    }

    @Test func batchedAcknowledgesOnceWrittenWhileTheSyncIsStillHeld() async throws {
        let files = try LogFiles()
        let held = HeldSync()
        let clock = ManualClock(wallMillis: 0)
        let writer = GroupCommitWriter(path: files.path("a.log"), fd: try files.open("a.log"), size: 0, mode: .batched, clock: clock.clock, sync: held.sync)
        writer.start()
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        let first = writer.append(Array("{\"n\":1}".utf8))
        held.waitUntilSyncing()
        let second = writer.append(Array("{\"n\":2}".utf8))
        // Both are in the file and acknowledged, though no sync has finished.
        #expect(files.bytes("a.log") == Self.entry("{\"n\":1}") + Self.entry("{\"n\":2}"))
        try await writer.whenAcknowledged(first, on: loop).get()
        try await writer.whenAcknowledged(second, on: loop).get()
        #expect(writer.unsyncedEntries == 2)
        #expect(writer.syncWindows.syncs == 0)

        clock.advance(millis: 3)
        held.open()  // the first sync (of entry 1) ends; a second follows for entry 2
        held.waitUntilSyncing()
        #expect(writer.unsyncedEntries == 1)
        held.open()
        writer.close()
        #expect(writer.unsyncedEntries == 0)
        let windows = writer.syncWindows
        #expect(windows.syncs == 2)
        // Both entries were written before the clock moved, and both syncs ended after it: each
        // waited the 3 ms the test held the first sync.
        #expect(windows.p50Nanos == 3_000_000)
        #expect(windows.maxNanos == 3_000_000)
    }

    @Test func alwaysAcknowledgesOnlyOnceSynced() async throws {
        let files = try LogFiles()
        let held = HeldSync()
        let writer = GroupCommitWriter(path: files.path("a.log"), fd: try files.open("a.log"), size: 0, mode: .always, sync: held.sync)
        writer.start()
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        let sequence = writer.append(Array("{}".utf8))
        let acknowledged = writer.whenAcknowledged(sequence, on: loop)
        let completion = Completion(of: acknowledged)
        held.waitUntilSyncing()
        #expect(files.bytes("a.log") == Self.entry("{}"))
        let doneBeforeSync = try await completion.isDone(acknowledged)
        #expect(doneBeforeSync == false)
        held.open()
        try await acknowledged.get()
        writer.close()
    }

    @Test func aFailedSyncFailsTheWaitersAndStopsTheLog() async throws {
        let files = try LogFiles()
        let held = HeldSync()
        let writer = GroupCommitWriter(path: files.path("a.log"), fd: try files.open("a.log"), size: 0, mode: .always, sync: held.sync)
        writer.start()
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        let first = writer.whenAcknowledged(writer.append(Array("{\"n\":1}".utf8)), on: loop)
        held.waitUntilSyncing()
        held.failNext(errno: EIO)
        held.open()
        await #expect(throws: SystemError.self) { try await first.get() }
        #expect(writer.isFailed)
        // Nothing more is written after a failure, and nothing more is acknowledged.
        let later = writer.append(Array("{\"n\":2}".utf8))
        await #expect(throws: SystemError.self) { try await writer.whenAcknowledged(later, on: loop).get() }
        #expect(files.bytes("a.log") == Self.entry("{\"n\":1}"))
        writer.close()
    }

    @Test func rotationSyncsTheOldLogBeforeItsSnapshotRuns() async throws {
        let files = try LogFiles()
        let held = HeldSync()
        let oldFD = try files.open("a.log")
        let writer = GroupCommitWriter(path: files.path("a.log"), fd: oldFD, size: 0, mode: .always, sync: held.sync)
        writer.start()
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        _ = writer.append(Array("{\"n\":1}".utf8))
        held.waitUntilSyncing()  // a sync of a.log (for entry 1) is under way
        let lastInOldLog = writer.append(Array("{\"n\":2}".utf8))  // not covered by it
        let switched = DispatchSemaphore(value: 0)
        let oldLogSyncsBeforeSwitch = Mutex(0)
        writer.rotate(to: files.path("b.log")) {
            oldLogSyncsBeforeSwitch.withLock { $0 = held.syncedFDs.withLock { $0.filter { $0 == oldFD }.count } }
            switched.signal()
        }
        let inNewLog = writer.append(Array("{\"n\":3}".utf8))
        #expect(writer.bytesInCurrentLog == Int64(Self.entry("{\"n\":3}").count))
        held.open(3)  // the sync under way, the old log's last sync, the new log's
        switched.wait()
        try await writer.whenAcknowledged(lastInOldLog, on: loop).get()
        try await writer.whenAcknowledged(inNewLog, on: loop).get()
        writer.close()
        // The old log was synced again after entry 2 before the switch's work (the snapshot) ran.
        #expect(oldLogSyncsBeforeSwitch.withLock { $0 } == 2)
        #expect(files.bytes("a.log") == Self.entry("{\"n\":1}") + Self.entry("{\"n\":2}"))
        #expect(files.bytes("b.log") == Self.entry("{\"n\":3}"))
    }

    @Test func syncWindowPercentilesAreNearestRank() {
        var windows = SyncWindows()
        #expect(windows.summary == SyncWindows.Summary(syncs: 0, p50Nanos: 0, p99Nanos: 0, maxNanos: 0))
        for nanos in 1...200 { windows.add(nanos: UInt64(nanos)) }
        #expect(windows.summary == SyncWindows.Summary(syncs: 200, p50Nanos: 100, p99Nanos: 198, maxNanos: 200))
        // Only the last `capacity` windows count for the percentiles; the maximum is since start.
        for _ in 0..<SyncWindows.capacity { windows.add(nanos: 7) }
        #expect(windows.summary == SyncWindows.Summary(syncs: 200 + UInt64(SyncWindows.capacity), p50Nanos: 7, p99Nanos: 7, maxNanos: 200))
    }
}
