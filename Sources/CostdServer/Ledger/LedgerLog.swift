import CostdCore
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The durable log of a state directory, knowing nothing of what its entries mean: it holds the
/// directory's lock, reads the snapshot and every later log back at start (cutting a torn last
/// entry off), appends entries (``GroupCommitWriter``), and switches to a new log generation behind a
/// new snapshot. ``SpendLedger`` gives the entries and the snapshots their meaning.
///
/// Files in the state directory:
/// - `snapshot.json`: the state as of the start of log generation `gen` (written atomically);
/// - `ledger-<gen>.log`: entries since then (see ``GroupCommitWriter`` for the framing);
/// - `costd.lock`: held with `flock` so that two daemons never share one state directory.
final class LedgerLog: Sendable {
    let directory: String
    /// The generation of the log appended to when it opened.
    let openedGeneration: Int
    private let writer: GroupCommitWriter
    private let lockFD: Int32
    private let logger: Logger

    /// Locks `directory` and reads it back: `loadSnapshot` gets the snapshot, if there is one, and
    /// answers its generation; `apply` gets every entry of that generation's log and the later
    /// ones, in order.
    init(
        directory: String, fsync: LedgerSettings.Fsync, clock: CostdClock, logger: Logger, loadSnapshot: (JSONValue) throws -> Int, apply: (JSONValue) -> Void
    ) throws {
        self.directory = directory
        self.logger = logger
        try FileIO.makeDirectory(directory)
        lockFD = try FileIO.open(directory + "/costd.lock", flags: O_RDWR | O_CREAT)
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw ConfigError("state directory \(directory) is in use by another costd")
        }
        let logPath: String
        let size: Int64
        do {
            (logPath, size, openedGeneration) = try LedgerLog.recover(
                directory: directory, fsync: fsync, logger: logger, loadSnapshot: loadSnapshot, apply: apply)
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        let fd = try FileIO.open(logPath, flags: O_WRONLY | O_CREAT | O_APPEND)
        try FileIO.syncDirectory(directory)
        writer = GroupCommitWriter(path: logPath, fd: fd, size: size, mode: fsync, clock: clock)
        writer.start()
    }

    /// Writes what is pending and releases the directory.
    func close() {
        writer.close()
        Glibc.close(lockFD)
    }

    /// Writes an entry; its sequence number, for ``whenAcknowledged(_:on:)``.
    @discardableResult
    func append(_ payload: [UInt8]) -> UInt64 {
        writer.append(payload)
    }

    /// Completes once the entry `sequence` may be acknowledged: written, or synced too, by the
    /// ledger's `fsync` mode.
    func whenAcknowledged(_ sequence: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        writer.whenAcknowledged(sequence, on: eventLoop)
    }

    var durability: LedgerDurability {
        LedgerDurability(fsync: writer.mode, unsyncedEntries: writer.unsyncedEntries, syncWindows: writer.syncWindows)
    }

    var bytesInCurrentLog: Int64 { writer.bytesInCurrentLog }

    var isFailed: Bool { writer.isFailed }

    /// Starts log generation `generation` after the entries appended so far, then writes
    /// `snapshot` (the state as of that point) atomically and deletes the older logs; `done` runs
    /// after, on the writer's thread.
    func compact(to generation: Int, snapshot: [UInt8], done: @escaping @Sendable () -> Void) {
        let directory = self.directory
        let logger = self.logger
        writer.rotate(to: LedgerLog.logPath(directory, generation)) {
            do {
                try FileIO.writeAtomically(snapshot, to: directory + "/snapshot.json", directory: directory)
                for name in try FileIO.fileNames(in: directory) {
                    if let old = LedgerLog.generation(ofLog: name), old < generation {
                        unlink(directory + "/" + name)
                    }
                }
                logger.info("Compacted ledger", metadata: ["generation": "\(generation)", "snapshot.bytes": "\(snapshot.count)"])
            } catch {
                logger.error("Ledger compaction failed", metadata: ["error": "\(error)"])
            }
            done()
        }
    }

    // MARK: - Reading back

    static func logPath(_ directory: String, _ generation: Int) -> String {
        let digits = String(generation)
        return directory + "/ledger-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".log"
    }

    static func generation(ofLog name: String) -> Int? {
        guard name.hasPrefix("ledger-"), name.hasSuffix(".log") else { return nil }
        return Int(name.dropFirst("ledger-".count).dropLast(".log".count))
    }

    /// Loads the snapshot and replays the logs after it; returns the log to append to, its
    /// length and its generation.
    private static func recover(
        directory: String, fsync: LedgerSettings.Fsync, logger: Logger, loadSnapshot: (JSONValue) throws -> Int, apply: (JSONValue) -> Void
    ) throws -> (String, Int64, Int) {
        var current = 1
        if let bytes = try FileIO.readAll(directory + "/snapshot.json") {
            current = try loadSnapshot(try JSONParser.parse(bytes, limits: .unlimited))
        }
        let generations = try FileIO.fileNames(in: directory).compactMap(generation(ofLog:)).sorted()
        var entries = 0
        var lastPath = logPath(directory, current)
        var lastSize: Int64 = 0
        for generation in generations where generation >= current {
            let path = logPath(directory, generation)
            let (count, validLength, fileLength) = try replay(path, apply: apply)
            entries += count
            if validLength < fileLength {
                logger.warning(
                    "Cut a torn entry off the ledger",
                    metadata: ["path": "\(path)", "kept.bytes": "\(validLength)", "dropped.bytes": "\(fileLength - validLength)"]
                )
                guard truncate(path, off_t(validLength)) == 0 else { throw SystemError("truncate \(path)", errno: errno) }
            }
            current = generation
            lastPath = path
            lastSize = Int64(validLength)
        }
        logger.info("Opened ledger", metadata: ["directory": "\(directory)", "replayed.entries": "\(entries)", "fsync": "\(fsync.rawValue)"])
        return (lastPath, lastSize, current)
    }

    /// Applies a log's whole entries; returns how many, the length they take, and the file's.
    private static func replay(_ path: String, apply: (JSONValue) -> Void) throws -> (Int, Int, Int) {
        guard let bytes = try FileIO.readAll(path) else { return (0, 0, 0) }
        var offset = 0
        var count = 0
        while offset + GroupCommitWriter.headerLength <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let crc = UInt32(bytes[offset + 4]) << 24 | UInt32(bytes[offset + 5]) << 16 | UInt32(bytes[offset + 6]) << 8 | UInt32(bytes[offset + 7])
            let start = offset + GroupCommitWriter.headerLength
            guard start + length <= bytes.count else { break }
            let payload = bytes[start..<(start + length)]
            guard payload.withUnsafeBytes({ CRC32C.checksum($0) }) == crc,
                let json = try? JSONParser.parse(payload, limits: .unlimited)
            else { break }
            apply(json)
            offset = start + length
            count += 1
        }
        return (count, offset, bytes.count)
    }
}
