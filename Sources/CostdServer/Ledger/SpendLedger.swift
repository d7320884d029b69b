import CostdCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// The embedded store of spend: the ``SpendBook``, remembered record ids, reservations and
/// (with Redis) the ``Backlog``, kept in a ``LedgerLog`` as entries (``LedgerEntry``) and,
/// now and then, a snapshot.
///
/// A record is acknowledged once its entry is written to the log (``LedgerSettings/Fsync``
/// `batched`), so it survives `kill -9`, or once it is synced too (`always`). On start
/// the snapshot is loaded and every later entry applied again, by the same code that applied it
/// the first time (`SpendLedger+State.swift`).
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
        /// With Redis: the spend this daemon counted there, and the alert flags it has seen set,
        /// kept to put back if Redis loses them (``RestoreSpendScript``).
        var redisBook = SpendBook()
        /// The token of Redis's spend canary that `redisBook` was last put back under or counted in.
        var redisEpoch: String?
        /// This daemon's name among those sharing a Redis: made once, kept in the ledger.
        var daemonId = ""
        /// The alerts to deliver and replay: this daemon's, or with Redis the fleet's stream.
        var alertLog = AlertLog()
    }

    struct Reservation: Sendable {
        var amount: Money
        var day: String
        var month: String
        var expiresAtMillis: Int64
        /// The scoped budgets it holds money against.
        var budgets: [String]
    }

    private let state: Mutex<State>
    private let log: LedgerLog
    private let settings: LedgerSettings
    private let logger: Logger
    /// Dates compactions made outside `commit` (whose caller passes its own time).
    private let clock: CostdClock

    /// `clock` dates the recovery (which remembered record ids have expired); records and
    /// reservations carry their own times, from the engine's clock.
    public init(directory: String, settings: LedgerSettings, clock: CostdClock = .system, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        self.clock = clock
        var state = State()
        state.recordIdWindowMillis = settings.recordIdWindowSeconds * 1000
        state.recordIdCapacity = settings.recordIdCapacity
        let nowMillis = clock.nowMillis
        log = try LedgerLog(
            directory: directory, fsync: settings.fsync, clock: clock, logger: logger,
            loadSnapshot: { json in
                try state.load(snapshot: json, nowMillis: nowMillis)
                return state.generation
            },
            apply: { json in state.apply(entry: json, sequence: 0, nowMillis: nowMillis) }
        )
        state.generation = log.openedGeneration
        if state.daemonId.isEmpty {
            state.daemonId = UUID().uuidString.lowercased()
            log.append(LedgerEntry.daemonId(state.daemonId))
        }
        self.state = Mutex(state)
    }

    /// Writes what is pending and releases the state directory.
    public func close() {
        log.close()
    }

    // MARK: - Recording

    /// Counts `record` (unless its id was counted before) and completes once it may be
    /// acknowledged (``LedgerSettings/Fsync``).
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
        let (receipt, sequence) = state.withLock { state -> (RecordReceipt, UInt64) in
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
                return (receipt, remembered.sequence)
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
                for key in record.budgets {
                    guard let scoped = budget.scopedBudget(key: key) else { continue }
                    let due = budget.alertsDue(
                        scoped, period: scope, periodKey: period, spent: state.book.spent(scope, period: period, budget: key)
                    ) { state.book.hasFired(scope, period: period, level: $0, budget: key) }
                    for alert in due { state.book.markFired(scope, period: period, level: alert.level, budget: key) }
                    alerts += due
                }
            }
            // Replaying the entry appends them again, at the record's time, with the same ids.
            for alert in alerts { state.alertLog.append(alert, at: record.unixMillis) }
            let receipt = RecordReceipt(
                record: record,
                day: state.status(.day, period: record.day, budget: budget),
                month: state.status(.month, period: month, budget: budget),
                alerts: alerts,
                duplicate: false
            )
            let sequence = log.append(LedgerEntry.record(record, alerts: alerts, remember: rememberId))
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
            compactIfDue(&state, nowMillis: nowMillis)
            return (receipt, sequence)
        }
        return log.whenAcknowledged(sequence, on: eventLoop).map { receipt }
    }

    /// Adds cache lookups to a day. Not waited for: losing a second of counters to a crash is
    /// acceptable, losing spend is not.
    public func addCacheCounters(_ counters: CacheCounterSet, day: String) {
        guard !counters.isZero else { return }
        state.withLock { state in
            state.book.addCacheCounters(counters, day: day)
            log.append(LedgerEntry.cacheCounters(counters, day: day))
            compactIfDue(&state, nowMillis: clock.nowMillis)
        }
    }

    public func withBook<Result>(_ body: (SpendBook) -> Result) -> Result {
        state.withLock { body($0.book) }
    }

    /// The alerts after `id` (all kept, for nil), oldest first.
    public func alerts(after id: AlertId?) -> [AlertEvent] {
        state.withLock { Array($0.alertLog.after(id)) }
    }

    /// The last alert's id, if any.
    public var lastAlertId: AlertId? {
        state.withLock { $0.alertLog.lastId }
    }

    /// Keeps alerts read from Redis's stream (every daemon's), in order; returns how many were new.
    @discardableResult
    public func mirrorAlerts(_ events: [AlertEvent]) -> Int {
        state.withLock { state in
            let new = events.filter { state.alertLog.mirror($0) }
            guard !new.isEmpty else { return 0 }
            log.append(LedgerEntry.mirroredAlerts(new))
            compactIfDue(&state, nowMillis: clock.nowMillis)
            return new.count
        }
    }

    /// Reads the book and the reserved money together, under the lock.
    func withState<Result>(_ body: (State) -> Result) -> Result {
        state.withLock { body($0) }
    }

    public func status(_ scope: BudgetScope, period: String, budget: BudgetSettings) -> BudgetStatus {
        state.withLock { $0.status(scope, period: period, budget: budget) }
    }

    public var isFailed: Bool { log.isFailed }

    /// How acknowledgements wait, and how far the disk lags behind the writes.
    public var durability: LedgerDurability { log.durability }

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
                if budget.isHard(scope), let limit = budget.budget(for: scope) {
                    let spent = state.book.spent(scope, period: period)
                    let reserved = state.reserved[SpendSchema.periodKey(scope, period), default: .zero]
                    if spent + reserved + request.amount > limit {
                        return .failure(
                            BudgetExceeded(scope: scope, period: period, spent: spent, reserved: reserved, budget: limit, requested: request.amount)
                        )
                    }
                }
                for key in request.budgets {
                    guard let scoped = budget.scopedBudget(key: key), let limit = scoped.hardLimit(scope) else { continue }
                    let spent = state.book.spent(scope, period: period, budget: key)
                    let reserved = state.reserved[SpendSchema.periodKey(scope, period, budget: key), default: .zero]
                    if spent + reserved + request.amount > limit {
                        return .failure(
                            BudgetExceeded(
                                scope: scope, period: period, spent: spent, reserved: reserved, budget: limit, requested: request.amount,
                                budgetScope: scoped.scope))
                    }
                }
            }
            state.reservations[request.id] = Reservation(
                amount: request.amount, day: request.day, month: request.month, expiresAtMillis: request.expiresAtMillis,
                budgets: request.budgets
            )
            state.hold(request.amount, day: request.day, month: request.month, budgets: request.budgets)
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

    // MARK: - Backlog (Redis mode)

    /// Keeps a record Redis could not take, with the reservation it settles; acknowledged once
    /// its entry is, as a record's would be. Returns the spend then waiting in the backlog for the record's day
    /// and month (kept as running totals: O(1) however long the backlog).
    func appendBacklog(_ record: SpendRecord, reservation: String?, on eventLoop: any EventLoop)
        -> EventLoopFuture<(day: Money, month: Money)>
    {
        let month = PeriodCalendar.monthKey(ofDay: record.day)
        let (sequence, waiting) = state.withLock { state -> (UInt64, (day: Money, month: Money)) in
            state.backlog.add(record, reservation: reservation)
            let waiting = (day: state.backlog.spend(.day, period: record.day), month: state.backlog.spend(.month, period: month))
            let sequence = log.append(LedgerEntry.backlog(record, reservation: reservation))
            compactIfDue(&state, nowMillis: clock.nowMillis)
            return (sequence, waiting)
        }
        return log.whenAcknowledged(sequence, on: eventLoop).map { waiting }
    }

    /// The records still to replay into Redis, oldest first.
    func pendingBacklog(limit: Int = .max) -> [Backlog.Entry] {
        state.withLock { $0.backlog.pending(limit: limit) }
    }

    public var backlogCount: Int { state.withLock { $0.backlog.count } }

    /// Takes replayed records out of the backlog: they are in Redis now (counted by this call,
    /// or by an attempt that timed out after Redis had taken it), so they join ``keepCounted(_:)``.
    public func markReplayed(_ counted: [(record: SpendRecord, alerts: [BudgetAlert])]) {
        guard !counted.isEmpty else { return }
        state.withLock { state in
            let ids = counted.map(\.record.recordId)
            state.backlog.remove(ids)
            log.append(LedgerEntry.replayed(ids))
            keepCounted(counted, in: &state)
        }
    }

    // MARK: - This daemon's spend in Redis

    /// Keeps records Redis counted for this daemon (with the alerts they fired), so that they can
    /// be put back if Redis loses them. Not waited for: Redis holds them already; this copy is
    /// written before the records are acknowledged all the same (``LedgerSettings/Fsync``).
    public func keepCounted(_ counted: [(record: SpendRecord, alerts: [BudgetAlert])]) {
        guard !counted.isEmpty else { return }
        state.withLock { keepCounted(counted, in: &$0) }
    }

    private func keepCounted(_ counted: [(record: SpendRecord, alerts: [BudgetAlert])], in state: inout State) {
        state.keepCounted(counted)
        log.append(LedgerEntry.countedInRedis(counted))
        compactIfDue(&state, nowMillis: clock.nowMillis)
    }

    /// An alert flag set in Redis: the host's budget's (`budget` nil) or a scoped one's.
    public struct FiredFlag: Sendable, Equatable {
        public var scope: BudgetScope
        public var period: String
        public var level: AlertLevel
        public var budget: String?

        public init(scope: BudgetScope, period: String, level: AlertLevel, budget: String? = nil) {
            self.scope = scope
            self.period = period
            self.level = level
            self.budget = budget
        }
    }

    /// Alert flags seen set in Redis (by any daemon), so that a restore sets them again and no
    /// alert fires twice.
    public func noteFiredInRedis(_ alerts: [FiredFlag]) {
        state.withLock { state in
            let new = alerts.filter { !state.redisBook.hasFired($0.scope, period: $0.period, level: $0.level, budget: $0.budget) }
            guard !new.isEmpty else { return }
            for alert in new { state.redisBook.markFired(alert.scope, period: alert.period, level: alert.level, budget: alert.budget) }
            log.append(LedgerEntry.firedInRedis(new))
        }
    }

    /// The canary's token Redis last held for this daemon, and this daemon's id.
    public var redisIdentity: (epoch: String?, daemonId: String) {
        state.withLock { ($0.redisEpoch, $0.daemonId) }
    }

    /// Redis now holds this daemon's spend under `epoch`.
    public func adoptRedisEpoch(_ epoch: String) {
        state.withLock { state in
            guard state.redisEpoch != epoch else { return }
            state.redisEpoch = epoch
            log.append(LedgerEntry.redisEpoch(epoch))
        }
    }

    /// What this daemon counted in Redis in one month, to put back after Redis lost it.
    public struct CountedInRedis: Sendable {
        public var days: [(day: String, totals: PeriodTotals)]
        public var monthSpent: Money
        /// Each scoped budget's spend of the month, by key.
        public var monthBudgetSpent: [String: Money]
        /// The alert flags of the month and its days seen set, the host's and the scoped ones.
        public var fired: [FiredFlag]
    }

    /// What this daemon counted in Redis in `month`: each day's totals, the month's spend (in
    /// all and by scoped budget) and the alert flags of the month and its days seen set.
    public func countedInRedis(month: String) -> CountedInRedis {
        state.withLock { state in
            let book = state.redisBook
            let days = book.days.filter { $0.key.hasPrefix(month) }.sorted { $0.key < $1.key }.map { (day: $0.key, totals: $0.value) }
            var fired: [FiredFlag] = []
            for (scope, period) in [(BudgetScope.month, month)] + PeriodCalendar.daysOf(month: month).map({ (BudgetScope.day, $0) }) {
                for level in [AlertLevel.warning, .exceeded] where book.hasFired(scope, period: period, level: level) {
                    fired.append(FiredFlag(scope: scope, period: period, level: level))
                }
                for scoped in book.firedScopedAlerts(scope, period: period) {
                    fired.append(FiredFlag(scope: scope, period: period, level: scoped.level, budget: scoped.budget))
                }
            }
            return CountedInRedis(days: days, monthSpent: book.spent(.month, period: month), monthBudgetSpent: book.budgetSpent(month: month), fired: fired)
        }
    }

    // MARK: - Compaction

    /// Writes a snapshot of the book and starts a new log once the log has grown past
    /// `compact_after_bytes`; the old logs are deleted once the snapshot is durable. Runs with the
    /// state locked, so that no entry can fall between the snapshot and the new log.
    private func compactIfDue(_ state: inout State, nowMillis: Int64) {
        guard !state.compacting, log.bytesInCurrentLog > settings.compactAfterBytes else { return }
        state.compacting = true
        let oldest = PeriodCalendar.days(endingAt: SpendLedger.utcDay(nowMillis), count: settings.historyDays).first
        if let oldest {
            state.book.forgetDays(before: oldest)
            state.redisBook.forgetDays(before: oldest)
        }
        state.generation += 1
        let generation = state.generation
        let snapshot = state.snapshot(generation: generation, nowMillis: nowMillis)
        log.compact(to: generation, snapshot: snapshot) { [self] in self.state.withLock { $0.compacting = false } }
    }

    static func utcDay(_ unixMillis: Int64) -> String {
        var calendar = PeriodCalendar.utc
        return calendar.dayKey(unixMillis: unixMillis)
    }
}
