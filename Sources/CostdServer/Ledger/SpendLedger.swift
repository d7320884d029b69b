import CostdCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// The embedded store of spend: a durable, append-only log with group commit, compacted into
/// a snapshot now and then, and the ``SpendBook`` rebuilt from them.
///
/// Files in the state directory:
/// - `snapshot.json`: the book as of the start of log generation `gen` (written atomically);
/// - `ledger-<gen>.log`: entries since then (see ``GroupCommitWriter`` for the framing);
/// - `costd.lock`: held with `flock` so that two daemons never share one state directory.
///
/// A record is acknowledged only once its entry is on disk, so it survives `kill -9`. On start
/// the snapshot is loaded, every later log is replayed, and a torn last entry (a crash in the
/// middle of a write) is cut off.
public final class SpendLedger: Sendable {
    /// Only what a duplicate's answer repeats from the first (its cost, day and alerts; budget
    /// statuses are computed afresh): a busy host remembers hundreds of thousands of these.
    struct RememberedRecord: Sendable {
        var day: String
        var cost: Money
        var cached: Bool
        var alerts: [BudgetAlert]
        var expiresAtMillis: Int64
        var sequence: UInt64
    }

    struct State: Sendable {
        var book = SpendBook()
        /// Client-chosen record ids seen recently, so a retry counts once.
        var recordIds: [String: RememberedRecord] = [:]
        var recordIdExpiry: [(expiresAtMillis: Int64, id: String)] = []
        var recordIdExpiryHead = 0
        /// At most this many ids are remembered; past it the oldest is forgotten early, so that
        /// memory stays bounded however fast records come.
        var recordIdCapacity = LedgerSettings().recordIdCapacity
        /// Ids forgotten before their window ended, since start.
        var recordIdsForgottenEarly = 0
        var generation = 1
        var compacting = false
        /// How long a client's record id is remembered.
        var recordIdWindowMillis: Int64 = LedgerSettings().recordIdWindowSeconds * 1000
        /// Open reservations against hard budgets (in memory: a restart releases them).
        var reservations: [String: Reservation] = [:]
        /// Reserved money by period (`d:2026-11-29`, `m:2026-11`).
        var reserved: [String: Money] = [:]
        /// With Redis: records acknowledged while it was unreachable, in order, until replayed.
        var backlog = Backlog()
    }

    struct Reservation: Sendable {
        var amount: Money
        var day: String
        var month: String
        var expiresAtMillis: Int64
    }

    private let state: Mutex<State>
    private let writer: GroupCommitWriter
    private let directory: String
    private let settings: LedgerSettings
    private let lockFD: Int32
    private let logger: Logger

    /// `clock` dates the recovery (which remembered record ids have expired); records and
    /// reservations carry their own times, from the engine's clock.
    public init(directory: String, settings: LedgerSettings, clock: CostdClock = .system, logger: Logger) throws {
        self.directory = directory
        self.settings = settings
        self.logger = logger
        try FileIO.makeDirectory(directory)
        lockFD = try FileIO.open(directory + "/costd.lock", flags: O_RDWR | O_CREAT)
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw ConfigError("state directory \(directory) is in use by another costd")
        }
        var state = State()
        state.recordIdWindowMillis = settings.recordIdWindowSeconds * 1000
        state.recordIdCapacity = settings.recordIdCapacity
        let logPath: String
        let size: Int64
        do {
            (logPath, size) = try SpendLedger.recover(
                into: &state, directory: directory, settings: settings, nowMillis: clock.nowMillis, logger: logger)
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        let fd = try FileIO.open(logPath, flags: O_WRONLY | O_CREAT | O_APPEND)
        try FileIO.syncDirectory(directory)
        self.state = Mutex(state)
        self.writer = GroupCommitWriter(path: logPath, fd: fd, size: size)
        writer.start()
    }

    /// Writes what is pending and releases the state directory.
    public func close() {
        writer.close()
        Glibc.close(lockFD)
    }

    // MARK: - Recording

    /// Counts `record` (unless its id was counted before) and returns once it is on disk.
    ///
    /// `rememberId` is set for ids chosen by the client: only those can come again.
    public func commit(
        _ record: SpendRecord,
        rememberId: Bool,
        reservation: String? = nil,
        budget: BudgetSettings,
        nowMillis: Int64,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RecordReceipt> {
        let (receipt, sequence, compaction) = state.withLock { state -> (RecordReceipt, UInt64, (() -> Void)?) in
            if let reservation { state.settle(reservation) }
            state.expireRecordIds(nowMillis: nowMillis)
            if rememberId, let remembered = state.recordIds[record.recordId] {
                var first = record
                (first.day, first.cost, first.cached) = (remembered.day, remembered.cost, remembered.cached)
                let receipt = RecordReceipt(
                    record: first,
                    day: state.status(.day, period: first.day, budget: budget),
                    month: state.status(.month, period: PeriodCalendar.monthKey(ofDay: first.day), budget: budget),
                    alerts: remembered.alerts,
                    duplicate: true
                )
                return (receipt, remembered.sequence, nil)
            }
            state.book.apply(record)
            let month = PeriodCalendar.monthKey(ofDay: record.day)
            var alerts: [BudgetAlert] = []
            for (scope, period) in [(BudgetScope.day, record.day), (.month, month)] {
                let due = budget.alertsDue(
                    scope: scope, period: period, spent: state.book.spent(scope, period: period)
                ) { state.book.hasFired(scope, period: period, level: $0) }
                for alert in due { state.book.markFired(scope, period: period, level: alert.level) }
                alerts += due
            }
            let receipt = RecordReceipt(
                record: record,
                day: state.status(.day, period: record.day, budget: budget),
                month: state.status(.month, period: month, budget: budget),
                alerts: alerts,
                duplicate: false
            )
            let sequence = writer.append(LedgerEntry.record(record, alerts: alerts, remember: rememberId))
            if rememberId {
                let forgotten = state.recordIdsForgottenEarly
                state.remember(record, alerts: alerts, sequence: sequence, expiresAtMillis: nowMillis + state.recordIdWindowMillis)
                if forgotten == 0, state.recordIdsForgottenEarly > 0 {
                    logger.warning(
                        "More record ids than ledger.record_id_capacity within ledger.record_id_window: the oldest are forgotten early",
                        metadata: ["capacity": "\(state.recordIdCapacity)"]
                    )
                }
            }
            return (receipt, sequence, compactionIfDue(&state, nowMillis: nowMillis))
        }
        compaction?()
        return writer.whenDurable(sequence, on: eventLoop).map { receipt }
    }

    /// Adds cache lookups to a day. Not waited for: losing a second of counters to a crash is
    /// acceptable, losing spend is not.
    public func addCacheCounters(_ counters: CacheCounterSet, day: String) {
        guard !counters.isZero else { return }
        state.withLock { state in
            state.book.addCacheCounters(counters, day: day)
            writer.append(LedgerEntry.cacheCounters(counters, day: day))
        }
    }

    public func withBook<Result>(_ body: (SpendBook) -> Result) -> Result {
        state.withLock { body($0.book) }
    }

    public func status(_ scope: BudgetScope, period: String, budget: BudgetSettings) -> BudgetStatus {
        state.withLock { $0.status(scope, period: period, budget: budget) }
    }

    public var isFailed: Bool { writer.isFailed }

    /// Money held by open reservations of a period (`d:<day>`, `m:<month>`).
    func reserved(key: String) -> Money {
        state.withLock { $0.reserved[key] ?? .zero }
    }

    // MARK: - Reservations (hard budgets)

    /// Sets `request.amount` aside if the hard budgets allow it, counting what is spent and what
    /// other open reservations hold.
    public func reserve(_ request: ReservationRequest, budget: BudgetSettings) throws(BudgetExceeded) -> ReservationGrant {
        let result = state.withLock { state -> Result<ReservationGrant, BudgetExceeded> in
            state.expireReservations(nowMillis: request.nowMillis)
            for (scope, period) in [(BudgetScope.day, request.day), (.month, request.month)] {
                guard budget.isHard(scope), let limit = budget.budget(for: scope) else { continue }
                let spent = state.book.spent(scope, period: period)
                let reserved = state.reserved[SpendLedger.reservedKey(scope, period), default: .zero]
                if spent + reserved + request.amount > limit {
                    return .failure(
                        BudgetExceeded(scope: scope, period: period, spent: spent, reserved: reserved, budget: limit, requested: request.amount)
                    )
                }
            }
            state.reservations[request.id] = Reservation(
                amount: request.amount, day: request.day, month: request.month, expiresAtMillis: request.expiresAtMillis
            )
            state.reserved[SpendLedger.reservedKey(.day, request.day), default: .zero] += request.amount
            state.reserved[SpendLedger.reservedKey(.month, request.month), default: .zero] += request.amount
            return .success(
                ReservationGrant(
                    id: request.id,
                    amount: request.amount,
                    expiresAtMillis: request.expiresAtMillis,
                    day: state.status(.day, period: request.day, budget: budget),
                    month: state.status(.month, period: request.month, budget: budget)
                )
            )
        }
        return try result.get()
    }

    /// Gives a reservation up; true when it was open.
    public func release(reservation: String) -> Bool {
        state.withLock { $0.settle(reservation) }
    }

    static func reservedKey(_ scope: BudgetScope, _ period: String) -> String {
        (scope == .day ? "d:" : "m:") + period
    }

    // MARK: - Backlog (Redis mode)

    /// Keeps a record Redis could not take, with the reservation it settles; acknowledged once
    /// it is on disk here. Returns the spend then waiting in the backlog for the record's day
    /// and month (kept as running totals: O(1) however long the backlog).
    func appendBacklog(_ record: SpendRecord, reservation: String?, on eventLoop: any EventLoop)
        -> EventLoopFuture<(day: Money, month: Money)>
    {
        let month = PeriodCalendar.monthKey(ofDay: record.day)
        let (sequence, waiting) = state.withLock { state -> (UInt64, (day: Money, month: Money)) in
            state.backlog.add(record, reservation: reservation)
            let waiting = (day: state.backlog.spend(.day, period: record.day), month: state.backlog.spend(.month, period: month))
            return (writer.append(LedgerEntry.backlog(record, reservation: reservation)), waiting)
        }
        return writer.whenDurable(sequence, on: eventLoop).map { waiting }
    }

    /// The records still to replay into Redis, oldest first.
    func pendingBacklog(limit: Int = .max) -> [Backlog.Entry] {
        state.withLock { $0.backlog.pending(limit: limit) }
    }

    public var backlogCount: Int { state.withLock { $0.backlog.count } }

    /// Marks records as counted in Redis.
    public func markReplayed(_ recordIds: [String]) {
        guard !recordIds.isEmpty else { return }
        state.withLock { state in
            state.backlog.remove(recordIds)
            writer.append(LedgerEntry.replayed(recordIds))
        }
    }

    // MARK: - Compaction

    private func compactionIfDue(_ state: inout State, nowMillis: Int64) -> (() -> Void)? {
        guard !state.compacting, writer.bytesInCurrentLog > settings.compactAfterBytes else { return nil }
        return compaction(&state, nowMillis: nowMillis)
    }

    /// Writes a snapshot of the book and starts a new log; the old logs are deleted once the
    /// snapshot is durable. Call with the state locked; run the returned closure after unlocking.
    private func compaction(_ state: inout State, nowMillis: Int64) -> () -> Void {
        state.compacting = true
        let oldest = PeriodCalendar.days(endingAt: SpendLedger.utcDay(nowMillis), count: settings.historyDays).first
        if let oldest { state.book.forgetDays(before: oldest) }
        state.generation += 1
        let generation = state.generation
        let snapshot = state.snapshot(generation: generation, nowMillis: nowMillis)
        let newLog = SpendLedger.logPath(directory, generation)
        let directory = self.directory
        let logger = self.logger
        return { [writer] in
            writer.rotate(to: newLog) { [self] in
                do {
                    try FileIO.writeAtomically(snapshot, to: directory + "/snapshot.json", directory: directory)
                    for name in try FileIO.fileNames(in: directory) {
                        if let old = SpendLedger.generation(ofLog: name), old < generation {
                            unlink(directory + "/" + name)
                        }
                    }
                    logger.info("Compacted ledger", metadata: ["generation": "\(generation)", "snapshot.bytes": "\(snapshot.count)"])
                } catch {
                    logger.error("Ledger compaction failed", metadata: ["error": "\(error)"])
                }
                self.state.withLock { $0.compacting = false }
            }
        }
    }

    // MARK: - Recovery

    static func logPath(_ directory: String, _ generation: Int) -> String {
        let digits = String(generation)
        return directory + "/ledger-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".log"
    }

    static func generation(ofLog name: String) -> Int? {
        guard name.hasPrefix("ledger-"), name.hasSuffix(".log") else { return nil }
        return Int(name.dropFirst("ledger-".count).dropLast(".log".count))
    }

    static func utcDay(_ unixMillis: Int64) -> String {
        var calendar = PeriodCalendar.utc
        return calendar.dayKey(unixMillis: unixMillis)
    }

    /// Loads the snapshot and replays the logs after it; returns the log to append to.
    private static func recover(
        into state: inout State, directory: String, settings: LedgerSettings, nowMillis: Int64, logger: Logger
    ) throws -> (String, Int64) {
        if let bytes = try FileIO.readAll(directory + "/snapshot.json") {
            try state.load(snapshot: try JSONParser.parse(bytes, limits: .unlimited), nowMillis: nowMillis)
        }
        let generations = try FileIO.fileNames(in: directory).compactMap(generation(ofLog:)).sorted()
        var entries = 0
        var lastPath = logPath(directory, state.generation)
        var lastSize: Int64 = 0
        for generation in generations where generation >= state.generation {
            let path = logPath(directory, generation)
            let (count, validLength, fileLength) = try replay(path, into: &state, nowMillis: nowMillis)
            entries += count
            if validLength < fileLength {
                logger.warning(
                    "Cut a torn entry off the ledger",
                    metadata: ["path": "\(path)", "kept.bytes": "\(validLength)", "dropped.bytes": "\(fileLength - validLength)"]
                )
                guard truncate(path, off_t(validLength)) == 0 else { throw SystemError("truncate \(path)", errno: errno) }
            }
            state.generation = generation
            lastPath = path
            lastSize = Int64(validLength)
        }
        logger.info("Opened ledger", metadata: ["directory": "\(directory)", "replayed.entries": "\(entries)"])
        return (lastPath, lastSize)
    }

    private static func replay(_ path: String, into state: inout State, nowMillis: Int64) throws -> (Int, Int, Int) {
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
            state.apply(entry: json, sequence: 0, nowMillis: nowMillis)
            offset = start + length
            count += 1
        }
        return (count, offset, bytes.count)
    }
}
