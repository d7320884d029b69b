import CostdCore
import CostdRedis
import Foundation
import Logging
import NIOCore
import Synchronization

/// Spend counted in Redis, shared by every daemon on it: a Lua script increments integer
/// totals, decides alerts and remembers each record id (exactly once), for all the records of
/// one event-loop turn at a time. When Redis
/// cannot take a record in time, it goes to the local ledger's backlog, is acknowledged from
/// there, and is replayed into Redis when it is back; the script ignores a record id it has
/// already counted, so a record that did reach Redis before a timeout is not counted twice.
///
/// Spend goes to Redis only while Redis will keep it (``RedisSpendPlacement``): its eviction
/// policy cannot pick spend keys, and its spend canary holds the token this daemon knows. Every
/// record Redis counts is also kept in the ledger (``SpendLedger/keepCounted(_:)``), so that
/// when Redis loses spend (a flush, an eviction, a restart without persistence) each daemon puts
/// its own back, once (``RestoreSpendScript``). Until then records wait in the backlog.
public final class RedisSpendStore: SpendStore {
    let redis: RedisClient
    let ledger: SpendLedger
    let keys: RedisKeys
    let settings: RedisSettings
    let clock: CostdClock
    private let alertsArrived: @Sendable () -> Void
    let logger: Logger
    private let placement = Mutex(RedisSpendPlacement())
    /// Signalled when a spend check ends, for ``waitUntilReady(timeoutMillis:)``.
    private let checked = NSCondition()
    /// Spend of periods as last read from Redis (`d:<day>`, `m:<month>`).
    private let known = Mutex<[String: Money]>([:])
    /// Cache lookups not yet added to the fleet's counters in Redis.
    private let pendingFleetCounters = Mutex<[String: CacheCounterSet]>([:])
    private let replaying = Atomic<Bool>(false)
    private let replayErrorLogged = Atomic<Bool>(false)

    /// `alertsArrived` is called when alerts (any daemon's) came from Redis's stream into the
    /// ledger's alert log.
    public init(
        redis: RedisClient, ledger: SpendLedger, clock: CostdClock = .system, logger: Logger,
        alertsArrived: @escaping @Sendable () -> Void = {}
    ) {
        self.redis = redis
        self.ledger = ledger
        self.alertsArrived = alertsArrived
        self.settings = redis.settings
        self.keys = RedisKeys(prefix: redis.settings.keyPrefix)
        self.clock = clock
        self.logger = logger
    }

    /// Redis is up and keeps spend: records and reservations go to it.
    private var spendGoesToRedis: Bool {
        redis.isAvailable && placement.withLock { $0.spendGoesToRedis }
    }

    // MARK: - Recording

    /// A record waiting for the end of its event-loop turn, to go to Redis with the others.
    private struct PendingRecord: Sendable {
        var call: RecordBatchScript.Record
        var record: SpendRecord
        var budget: BudgetSettings
        var promise: EventLoopPromise<RecordReceipt>
    }

    /// Records of the current event-loop turn, by event loop.
    private let pendingRecords = Mutex<[ObjectIdentifier: [PendingRecord]]>([:])

    public func record(
        _ record: SpendRecord, rememberId: Bool, reservation: String?, budget: BudgetSettings, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RecordReceipt> {
        guard spendGoesToRedis, let epoch = ledger.redisIdentity.epoch else {
            return backlog(record, reservation: reservation, budget: budget, on: eventLoop)
        }
        let promise = eventLoop.makePromise(of: RecordReceipt.self)
        let pending = PendingRecord(
            call: RecordBatchScript.Record(
                record: record, reservation: reservation, budget: budget, epoch: epoch, settings: settings, keys: keys),
            record: record, budget: budget, promise: promise
        )
        let first = pendingRecords.withLock { batches -> Bool in
            let loop = ObjectIdentifier(eventLoop)
            let first = batches[loop]?.isEmpty ?? true
            batches[loop, default: []].append(pending)
            return first
        }
        // After every record of this turn: one script call for all of them.
        if first { eventLoop.execute { self.sendPendingRecords(of: eventLoop) } }
        return promise.futureResult
    }

    /// Sends the turn's records, a batch per day and budget (one script run each); a batch
    /// Redis does not take in time goes to the backlog, record by record.
    private func sendPendingRecords(of eventLoop: any EventLoop) {
        let pending = pendingRecords.withLock { $0.removeValue(forKey: ObjectIdentifier(eventLoop)) } ?? []
        for batch in RecordBatchScript.batches(of: pending, record: \.call) {
            redis.run(RecordBatchScript(records: batch.map(\.call)), timeoutMillis: settings.recordTimeoutMillis, on: eventLoop)
                .whenComplete { result in
                    switch result {
                    case .success(let outcomes) where outcomes.count == batch.count:
                        let receipts = zip(batch, outcomes).map { pending, outcome in
                            self.receipt(from: outcome, for: pending.record, budget: pending.budget)
                        }
                        // Kept before they are acknowledged, to be put back if Redis loses them.
                        self.ledger.keepCounted(receipts.filter { !$0.duplicate }.map { ($0.record, $0.alerts) })
                        if receipts.contains(where: { !$0.alerts.isEmpty }) { self.pullAlerts(on: eventLoop) }
                        for (pending, receipt) in zip(batch, receipts) { pending.promise.succeed(receipt) }
                    case .success(let outcomes):
                        // A script that answers for fewer records than it was given is a bug; the
                        // backlog's replay counts each record once all the same.
                        self.logger.error("Record script answered \(outcomes.count) of \(batch.count) records; they go to the backlog")
                        self.backlogAll(batch, on: eventLoop, reason: "short answer")
                    case .failure(let error):
                        self.backlogAll(batch, on: eventLoop, reason: "\(error)")
                        if RedisSpendStore.isEpochChange(error) { self.spendCanaryChanged() }
                    }
                }
        }
    }

    private func backlogAll(_ batch: [PendingRecord], on eventLoop: any EventLoop, reason: String) {
        logger.debug("Records go to the backlog", metadata: ["records": "\(batch.count)", "error": "\(reason)"])
        for pending in batch {
            pending.promise.completeWith(
                backlog(pending.record, reservation: pending.call.reservation, budget: pending.budget, on: eventLoop))
        }
    }

    /// Acknowledges a record from the local backlog, keeping the reservation it settles for the
    /// replay. Its alerts are decided when it reaches Redis.
    private func backlog(_ record: SpendRecord, reservation: String?, budget: BudgetSettings, on eventLoop: any EventLoop)
        -> EventLoopFuture<RecordReceipt>
    {
        ledger.appendBacklog(record, reservation: reservation, on: eventLoop).map { waiting in
            let month = PeriodCalendar.monthKey(ofDay: record.day)
            var receipt = RecordReceipt(
                record: record,
                day: BudgetStatus(spent: self.knownSpend(.day, period: record.day) + waiting.day, budget: budget.daily),
                month: BudgetStatus(spent: self.knownSpend(.month, period: month) + waiting.month, budget: budget.monthly),
                alerts: [],
                duplicate: false
            )
            receipt.backlogged = true
            return receipt
        }
    }

    /// The receipt of what the record script answered; remembers the periods' spend it saw.
    func receipt(from outcome: RecordBatchScript.Outcome, for record: SpendRecord, budget: BudgetSettings) -> RecordReceipt {
        let month = PeriodCalendar.monthKey(ofDay: record.day)
        known.withLock {
            $0[SpendSchema.periodKey(.day, record.day)] = outcome.daySpent
            $0[SpendSchema.periodKey(.month, month)] = outcome.monthSpent
        }
        var alerts = outcome.alerts.compactMap { scope, level -> BudgetAlert? in
            guard let limit = budget.budget(for: scope) else { return nil }
            return BudgetAlert(
                scope: scope, level: level, period: scope == .day ? record.day : month,
                spent: scope == .day ? outcome.daySpent : outcome.monthSpent, budget: limit
            )
        }
        for fired in outcome.scopedAlerts where record.budgets.indices.contains(fired.budget) {
            guard let scoped = budget.scopedBudget(key: record.budgets[fired.budget]), let limit = scoped.limit(fired.scope) else { continue }
            alerts.append(
                BudgetAlert(
                    scope: fired.scope, level: fired.level, period: fired.scope == .day ? record.day : month, spent: fired.spent,
                    budget: limit, budgetScope: scoped.scope))
        }
        var counted = record
        counted.cost = outcome.cost
        return RecordReceipt(
            record: counted,
            day: BudgetStatus(spent: outcome.daySpent, budget: budget.daily),
            month: BudgetStatus(spent: outcome.monthSpent, budget: budget.monthly),
            alerts: alerts,
            duplicate: outcome.duplicate
        )
    }

    // MARK: - Hard budgets

    public func reserve(_ request: ReservationRequest, budget: BudgetSettings, on eventLoop: any EventLoop)
        -> EventLoopFuture<ReservationGrant>
    {
        // A hard budget shared through Redis cannot be enforced without it: refuse rather than guess.
        if let reason = placement.withLock({ $0.reasonSpendIsNotInRedis }) {
            return eventLoop.makeFailedFuture(RedisError.spendNotKept(reason))
        }
        guard spendGoesToRedis, let epoch = ledger.redisIdentity.epoch else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        let reserved = redis.run(
            ReserveScript(request: request, budget: budget, epoch: epoch, keys: keys), timeoutMillis: settings.recordTimeoutMillis,
            on: eventLoop)
        reserved.whenFailure { error in
            if RedisSpendStore.isEpochChange(error) { self.spendCanaryChanged() }
        }
        return reserved
            .flatMapThrowing { reply in
                switch reply {
                case .refused(let scope, let spent, let reserved, let index):
                    let scoped = index.flatMap { request.budgets.indices.contains($0) ? budget.scopedBudget(key: request.budgets[$0]) : nil }
                    throw BudgetExceeded(
                        scope: scope, period: scope == .day ? request.day : request.month, spent: spent, reserved: reserved,
                        budget: (scoped.map { $0.limit(scope) } ?? budget.budget(for: scope)) ?? .zero, requested: request.amount,
                        budgetScope: scoped?.scope ?? .host
                    )
                case .granted(let daySpent, let dayReserved, let monthSpent, let monthReserved):
                    return ReservationGrant(
                        id: request.id,
                        amount: request.amount,
                        expiresAtMillis: request.expiresAtMillis,
                        day: BudgetStatus(spent: daySpent, budget: budget.daily, reserved: dayReserved),
                        month: BudgetStatus(spent: monthSpent, budget: budget.monthly, reserved: monthReserved)
                    )
                }
            }
    }

    public func budgetStandings(day: String, budget: BudgetSettings, on eventLoop: any EventLoop) -> EventLoopFuture<[BudgetStanding]> {
        let month = PeriodCalendar.monthKey(ofDay: day)
        let scopedKeys = budget.scoped.map(\.scope.key)
        let spendFields = [SpendSchema.Total.spent] + scopedKeys.map(SpendSchema.budgetSpendField)
        var reservedFields = [SpendSchema.periodKey(.day, day), SpendSchema.periodKey(.month, month)]
        for key in scopedKeys {
            reservedFields += [SpendSchema.periodKey(.day, day, budget: key), SpendSchema.periodKey(.month, month, budget: key)]
        }
        let commands: [RedisCommand] = [
            .make(["HMGET", keys.day(day)] + spendFields), .make(["HMGET", keys.month(month)] + spendFields),
            .make(["HMGET", keys.reservedTotals] + reservedFields),
        ]
        let ledger = self.ledger
        return redis.execute(commands, timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).map { replies in
            func values(_ reply: RedisReply, _ names: [String]) -> [String: Money] {
                var found: [String: Money] = [:]
                for (name, value) in zip(names, reply.array ?? []) { found[name] = Money(nanos: value.text.flatMap { Int64($0) } ?? 0) }
                return found
            }
            let daySpent = values(replies[0], [""] + scopedKeys)
            let monthSpent = values(replies[1], [""] + scopedKeys)
            let reserved = values(replies[2], reservedFields)
            // Records acknowledged from the backlog and not yet in Redis count too.
            var waiting = SpendBook()
            for entry in ledger.pendingBacklog() { waiting.apply(entry.record) }
            return BudgetStanding.all(
                budget, day: day,
                spent: { key, period, periodKey in
                    let stored = (period == .day ? daySpent : monthSpent)[key ?? ""] ?? .zero
                    return stored + waiting.spent(period, period: periodKey, budget: key)
                },
                reserved: { key, period, periodKey in
                    reserved[SpendSchema.periodKey(period, periodKey, budget: key)] ?? .zero
                })
        }
    }

    public func release(reservation: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        redis.run(ReleaseReservationScript(id: reservation, keys: keys), timeoutMillis: settings.recordTimeoutMillis, on: eventLoop)
    }

    // MARK: - Reading

    public func totals(days: [String], history: [String], on eventLoop: any EventLoop) -> EventLoopFuture<StoredTotals> {
        var commands: [RedisCommand] = days.map { .make("HGETALL", keys.day($0)) }
        commands += days.map { .make("HGETALL", keys.cacheStatistics($0)) }
        commands += history.map { .make("HGET", keys.day($0), "spent") }
        commands.append(.make("HGET", keys.reservedTotals, StoredTotals.reservedKey(days: days)))
        let ledger = self.ledger
        return redis.execute(commands, timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).map { replies in
            var totals = PeriodTotals()
            var fleet = CacheCounterSet()
            for index in days.indices {
                totals.merge(SpendSchema.periodTotals(fromDayHash: replies[index].fields))
                fleet.add(RedisSpendStore.cacheCounters(fromStatisticsHash: replies[days.count + index].fields))
            }
            // Records acknowledged from the backlog and not yet in Redis belong in the figures too.
            let pending = ledger.pendingBacklog()
            let daySet = Set(days)
            var backlogBook = SpendBook()
            for entry in pending where daySet.contains(entry.record.day) { backlogBook.apply(entry.record) }
            for day in days { totals.merge(backlogBook.totals(day: day)) }
            // This daemon's own cache lookups live in its ledger; the fleet's are in Redis.
            ledger.withBook { book in
                for day in days { totals.cache.add(book.totals(day: day).cache) }
            }
            let historyOffset = 2 * days.count
            let historySpent = history.enumerated().map { index, day -> (day: String, spent: Money) in
                let stored = Money(nanos: replies[historyOffset + index].integer ?? 0)
                let local = pending.filter { $0.record.day == day }.reduce(Money.zero) { $0 + $1.record.spend }
                return (day, stored + local)
            }
            var stored = StoredTotals(totals: totals, history: historySpent, fleetCache: fleet)
            stored.reserved = Money(nanos: replies.last?.integer ?? 0)
            return stored
        }
    }

    public func knownSpend(_ scope: BudgetScope, period: String) -> Money {
        known.withLock { $0[SpendSchema.periodKey(scope, period)] } ?? .zero
    }

    // MARK: - Cache counters

    public func addCacheCounters(_ counters: CacheCounterSet, day: String) {
        guard !counters.isZero else { return }
        ledger.addCacheCounters(counters, day: day)
        pendingFleetCounters.withLock { $0[day, default: CacheCounterSet()].add(counters) }
    }

    private func pushFleetCounters(on eventLoop: any EventLoop) {
        let pending = pendingFleetCounters.withLock { pending -> [String: CacheCounterSet] in
            defer { pending = [:] }
            return pending
        }
        guard !pending.isEmpty else { return }
        var commands: [RedisCommand] = []
        for (day, counters) in pending {
            let key = keys.cacheStatistics(day)
            var increments: [(String, Int64)] = RedisSpendStore.fields(of: counters.total, prefix: "")
            for (model, modelCounters) in counters.byModel {
                increments += RedisSpendStore.fields(of: modelCounters, prefix: "m" + SpendSchema.separator + model + SpendSchema.separator)
            }
            for (namespace, namespaceCounters) in counters.byNamespace {
                increments += RedisSpendStore.fields(of: namespaceCounters, prefix: "n" + SpendSchema.separator + namespace + SpendSchema.separator)
            }
            for (field, amount) in increments where amount != 0 {
                commands.append(.make("HINCRBY", key, field, amount))
            }
            commands.append(.make("EXPIRE", key, settings.dayKeyTTLDays * 86_400))
        }
        redis.execute(commands, timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).whenFailure { _ in
            // Keep them for the next try.
            self.pendingFleetCounters.withLock { current in
                for (day, counters) in pending { current[day, default: CacheCounterSet()].add(counters) }
            }
        }
    }

    static func fields(of counters: CacheCounters, prefix: String) -> [(String, Int64)] {
        CacheCounters.fields.map { (prefix + $0.name, counters[keyPath: $0.value]) }
    }

    static func cacheCounters(fromStatisticsHash fields: [String: [UInt8]]) -> CacheCounterSet {
        var set = CacheCounterSet()
        for (field, value) in fields {
            guard let amount = Int64(String(decoding: value, as: UTF8.self)) else { continue }
            let parts = field.split(separator: Character(SpendSchema.separator), omittingEmptySubsequences: false)
            if parts.count == 1 {
                set.total.add(amount, toField: parts[0])
            } else if parts.count == 3 {
                let name = String(parts[1])
                if parts[0] == "m" { set.byModel[name, default: CacheCounters()].add(amount, toField: parts[2]) }
                if parts[0] == "n" { set.byNamespace[name, default: CacheCounters()].add(amount, toField: parts[2]) }
            }
        }
        return set
    }

    // MARK: - Upkeep

    public var status: StoreStatus {
        let state = redis.state
        var status = StoreStatus(kind: .redis, state: state.up ? "up" : "down", backlog: ledger.backlogCount, lastError: state.lastError)
        placement.withLock { placement in
            status.spendIn = state.up && placement.spendGoesToRedis ? "redis" : "ledger"
            status.spendNote = placement.reasonSpendIsNotInRedis
            status.spendRestores = placement.restores
        }
        return status
    }

    public func maintain(today: String, budget: BudgetSettings, on eventLoop: any EventLoop) {
        guard redis.isAvailable else { return }
        pullAlerts(on: eventLoop)
        pushFleetCounters(on: eventLoop)
        refreshKnownSpend(today: today, on: eventLoop)
        checkSpend(today: today, budget: budget, on: eventLoop)
        purgeOldPeriodsIfDue(today: today, on: eventLoop)
    }

    public func backendBecameAvailable(today: String, budget: BudgetSettings, on eventLoop: any EventLoop) {
        placement.withLock { $0.connected() }
        checkSpend(today: today, budget: budget, on: eventLoop)
    }

    public func waitUntilReady(timeoutMillis: Int64) -> Bool {
        let deadline = Date(timeIntervalSinceNow: Double(timeoutMillis) / 1000)
        checked.lock()
        defer { checked.unlock() }
        while !placement.withLock({ $0.checkedSinceConnect }) {
            guard checked.wait(until: deadline) else { return false }
        }
        return true
    }

    // MARK: - Alerts

    /// Reads the fleet's alert stream (the record script adds each alert to it as it fires)
    /// past the last alert the ledger has, into the ledger, and tells the subscribers.
    private func pullAlerts(on eventLoop: any EventLoop) {
        let start = ledger.lastAlertId.map { "(" + $0.description } ?? "-"
        redis.execute([.make("XRANGE", keys.alertStream, start, "+", "COUNT", 1_000)], timeoutMillis: settings.recordTimeoutMillis, on: eventLoop)
            .whenSuccess { replies in
                let events = (replies[0].array ?? []).compactMap { entry -> AlertEvent? in
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].text, let values = parts[1].array else { return nil }
                    var fields: [String: String] = [:]
                    for index in stride(from: 0, to: values.count - 1, by: 2) {
                        if let name = values[index].text, let value = values[index + 1].text { fields[name] = value }
                    }
                    return RecordBatchScript.alert(streamId: id, fields: fields)
                }
                if self.ledger.mirrorAlerts(events) > 0 { self.alertsArrived() }
            }
    }

    // MARK: - Keeping spend safe

    static func isEpochChange(_ error: any Error) -> Bool {
        "\(error)".contains(RecordBatchScript.epochChanged)
    }

    /// A script found another canary token than this daemon's: records wait in the backlog until
    /// the next upkeep (a second at most) has put this daemon's spend back.
    private func spendCanaryChanged() {
        placement.withLock { $0.canaryChanged() }
    }

    /// Reads the eviction policy when due, then the canary; puts this daemon's spend back when
    /// Redis lost it; then replays the backlog. One check at a time.
    private func checkSpend(today: String, budget: BudgetSettings, on eventLoop: any EventLoop) {
        let now = clock.monotonicNanos
        guard let step = placement.withLock({ $0.beginCheck(nowNanos: now) }) else { return }
        var probe: EventLoopFuture<Void> = eventLoop.makeSucceededVoidFuture()
        if step.readPolicy {
            probe = redis.execute([.make("INFO", "memory")], timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).map { replies in
                let policy = replies.first?.text.flatMap(RedisMemoryPolicy.init(info:))
                if policy == nil { self.logger.warning("INFO memory did not give the eviction policy; spend is kept in Redis") }
                let change = self.placement.withLock { $0.policyRead(policy, nowNanos: now) }
                if let reason = change.newReason {
                    self.logger.critical("Redis will not keep spend safely", metadata: ["reason": "\(reason)"])
                } else if change.becameSafe {
                    self.logger.notice("Redis keeps spend again: the backlog goes to it", metadata: ["policy": "\(policy?.policy ?? "?")"])
                }
            }
        }
        probe.flatMap { () -> EventLoopFuture<Void> in
            guard self.placement.withLock({ $0.reasonSpendIsNotInRedis == nil }) else { return eventLoop.makeSucceededVoidFuture() }
            return self.checkCanary(today: today, fixTTLs: step.firstSinceConnect, on: eventLoop)
        }.whenComplete { result in
            if case .failure(let error) = result {
                self.logger.debug("Spend check failed; tried again at the next upkeep", metadata: ["error": "\(error)"])
            }
            self.placement.withLock { $0.endCheck(succeeded: (try? result.get()) != nil) }
            // Under the waiter's lock, so that a waiter between its test and its wait still hears it.
            self.checked.lock()
            self.checked.broadcast()
            self.checked.unlock()
            if self.spendGoesToRedis { self.replayBacklog(on: eventLoop, budget: budget) }
        }
    }

    /// One round trip in the usual case: the canary and the open periods' alert flags. When the
    /// canary is not this daemon's token, this daemon's spend of the open month goes back.
    private func checkCanary(today: String, fixTTLs: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let month = PeriodCalendar.monthKey(ofDay: today)
        let flags = RedisKeys.alertFlags(day: today)
        let flagKeys = flags.map { keys.alert($0.scope, $0.period, $0.level) }
        var commands: [RedisCommand] = [
            .make("GET", keys.spendEpoch), .make(["MGET"] + flagKeys),
            .make("HKEYS", keys.scopedAlerts(today)), .make("HKEYS", keys.scopedAlerts(month)),
        ]
        if fixTTLs {
            // Keys written by costd before 0.3 carry a TTL, which a volatile-* policy may evict.
            commands += ([keys.day(today), keys.month(month)] + flagKeys).map { .make("PERSIST", $0) }
        }
        let (known, _) = ledger.redisIdentity
        return redis.execute(commands, timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).flatMap { replies in
            var set = zip(flags, replies[1].array ?? []).filter { $0.1.bytes != nil }.map {
                SpendLedger.FiredFlag(scope: $0.0.scope, period: $0.0.period, level: $0.0.level)
            }
            for (scope, period, reply) in [(BudgetScope.day, today, replies[2]), (.month, month, replies[3])] {
                for field in (reply.array ?? []).compactMap(\.text) {
                    guard let (budget, level) = RedisKeys.scopedAlert(field: field) else { continue }
                    set.append(SpendLedger.FiredFlag(scope: scope, period: period, level: level, budget: budget))
                }
            }
            self.ledger.noteFiredInRedis(set)
            if let epoch = replies[0].text, epoch == known { return eventLoop.makeSucceededVoidFuture() }
            return self.restoreSpend(month: month, known: known, lost: replies[0].text == nil, on: eventLoop)
        }
    }

    /// Puts this daemon's spend of `month` back under the canary's token (a new one if Redis
    /// has none), once per daemon and token, and adopts the token.
    private func restoreSpend(month: String, known: String?, lost: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let own = ledger.countedInRedis(month: month)
        var hashes = own.days.map { RestoreSpendScript.Increments(key: keys.day($0.day), fields: SpendSchema.dayHashFields(of: $0.totals)) }
        var monthFields: [(field: String, amount: Int64)] = own.monthSpent == .zero ? [] : [(SpendSchema.Total.spent, own.monthSpent.nanos)]
        for (key, spent) in own.monthBudgetSpent.sorted(by: { $0.key < $1.key }) where spent != .zero {
            monthFields.append((SpendSchema.budgetSpendField(key), spent.nanos))
        }
        if !monthFields.isEmpty { hashes.append(RestoreSpendScript.Increments(key: keys.month(month), fields: monthFields)) }
        // A scoped budget's flag is a field of its period's hash: set (to at least 1) by an increment.
        var scopedFlags: [String: [(field: String, amount: Int64)]] = [:]
        for flag in own.fired {
            if let budget = flag.budget { scopedFlags[flag.period, default: []].append((RedisKeys.scopedAlertField(budget, flag.level), 1)) }
        }
        for (period, fields) in scopedFlags.sorted(by: { $0.key < $1.key }) {
            hashes.append(RestoreSpendScript.Increments(key: keys.scopedAlerts(period), fields: fields))
        }
        let call = RestoreSpendScript(
            knownEpoch: known, newEpoch: UUID().uuidString.lowercased(), daemonId: ledger.redisIdentity.daemonId,
            hashes: hashes, alertKeys: own.fired.filter { $0.budget == nil }.map { keys.alert($0.scope, $0.period, $0.level) }, keys: keys
        )
        return redis.run(call, timeoutMillis: max(settings.recordTimeoutMillis, 5_000), on: eventLoop).map { reply in
            if known != nil {
                self.placement.withLock { $0.restores += 1 }
                self.logger.critical(
                    "Redis lost spend (FLUSHALL or FLUSHDB, an eviction, or a restart without persistence): this daemon's spend of the open month is back in it",
                    metadata: [
                        "canary": "\(lost ? "missing" : "replaced")", "restored": "\(reply.restored)",
                        "spentUsd": "\(own.monthSpent.decimalString)", "days": "\(own.days.count)",
                    ]
                )
            }
            self.ledger.adoptRedisEpoch(reply.epoch)
        }
    }

    /// Totals and alert flags carry no TTL (an eviction policy must never pick them): old periods
    /// are deleted here, hourly, by name. Each pass deletes the 62 days (and their months) just
    /// past the horizons, so a fleet stopped for up to two months leaves nothing behind.
    /// Days past each horizon one purge deletes.
    static let purgeSpanDays = 62

    private func purgeOldPeriodsIfDue(today: String, on eventLoop: any EventLoop) {
        let now = clock.monotonicNanos
        guard placement.withLock({ $0.purgeDue(nowNanos: now) }) else { return }
        let span = RedisSpendStore.purgeSpanDays
        let dayHorizon = PeriodCalendar.days(endingAt: today, count: Int(settings.dayKeyTTLDays) + span)
        let monthHorizon = PeriodCalendar.days(endingAt: today, count: Int(settings.monthKeyTTLDays) + span)
        var names: [String] = []
        for day in dayHorizon.prefix(span) {
            names += [keys.day(day), keys.alert(.day, day, .warning), keys.alert(.day, day, .exceeded), keys.scopedAlerts(day)]
        }
        let oldestKeptMonth = PeriodCalendar.monthKey(ofDay: monthHorizon[span])
        for month in Set(monthHorizon.prefix(span).map(PeriodCalendar.monthKey(ofDay:))) where month < oldestKeptMonth {
            names += [keys.month(month), keys.alert(.month, month, .warning), keys.alert(.month, month, .exceeded), keys.scopedAlerts(month)]
        }
        redis.execute([.make(["UNLINK"] + names)], timeoutMillis: settings.recordTimeoutMillis, on: eventLoop).whenFailure { _ in
            self.placement.withLock { $0.purgeFailed() }
        }
    }

    private func refreshKnownSpend(today: String, on eventLoop: any EventLoop) {
        let month = PeriodCalendar.monthKey(ofDay: today)
        redis.execute(
            [.make("HGET", keys.day(today), "spent"), .make("HGET", keys.month(month), "spent")],
            timeoutMillis: settings.recordTimeoutMillis,
            on: eventLoop
        ).whenSuccess { replies in
            self.known.withLock {
                $0[SpendSchema.periodKey(.day, today)] = Money(nanos: replies[0].integer ?? 0)
                $0[SpendSchema.periodKey(.month, month)] = Money(nanos: replies[1].integer ?? 0)
            }
        }
    }

    /// Sends the backlog to Redis in order, a batch at a time, until it is empty. Alerts are
    /// decided against `budget`, the current one.
    func replayBacklog(on eventLoop: any EventLoop, budget: BudgetSettings) {
        guard ledger.backlogCount > 0, replaying.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        else { return }
        replayNextBatch(on: eventLoop, budget: budget)
    }

    private func replayNextBatch(on eventLoop: any EventLoop, budget: BudgetSettings) {
        let epoch = ledger.redisIdentity.epoch ?? ""
        let pending = ledger.pendingBacklog(limit: 256).map { entry in
            (
                entry.record,
                RecordBatchScript.Record(
                    record: entry.record, reservation: entry.reservation, budget: budget, epoch: epoch, settings: settings, keys: keys)
            )
        }
        guard !pending.isEmpty, spendGoesToRedis else {
            replaying.store(false, ordering: .relaxed)
            return
        }
        // In order, as consecutive batches of one day and budget, all in one pipeline.
        let batches = RecordBatchScript.batches(of: pending, record: \.1)
        let calls = batches.map { RecordBatchScript(records: $0.map(\.1)) }
        redis.registerScript(RecordBatchScript.script)
        redis.execute(calls.map(\.command), timeoutMillis: max(settings.recordTimeoutMillis, 5_000), on: eventLoop).whenComplete { result in
            guard case .success(let replies) = result else {
                self.replaying.store(false, ordering: .relaxed)
                return
            }
            var done: [(record: SpendRecord, alerts: [BudgetAlert])] = []
            var rejected = false
            for (batch, reply) in zip(batches, replies) {
                do {
                    let outcomes = try RecordBatchScript.parse(reply)
                    guard outcomes.count == batch.count else { throw RedisScriptError("answered \(outcomes.count) of \(batch.count) records") }
                    for ((record, _), outcome) in zip(batch, outcomes) {
                        let receipt = self.receipt(from: outcome, for: record, budget: budget)
                        done.append((receipt.record, receipt.alerts))
                        for alert in receipt.alerts where !outcome.duplicate {
                            alert.log(to: self.logger, replayed: true)
                        }
                        if !outcome.duplicate && !receipt.alerts.isEmpty { self.pullAlerts(on: eventLoop) }
                    }
                } catch {
                    if RedisSpendStore.isEpochChange(error) { self.spendCanaryChanged() }
                    if !self.replayErrorLogged.exchange(true, ordering: .relaxed) {
                        self.logger.error("Backlog records rejected by Redis; kept for later", metadata: ["recordId": "\(batch[0].0.recordId)", "error": "\(error)"])
                    }
                    rejected = true
                    break
                }
            }
            self.ledger.markReplayed(done)
            if !rejected && self.ledger.backlogCount > 0 {
                self.replayNextBatch(on: eventLoop, budget: budget)
                return
            }
            if self.ledger.backlogCount == 0 { self.logger.notice("Backlog replayed into Redis") }
            self.replaying.store(false, ordering: .relaxed)
        }
    }

    public func close() {
        redis.shutdown()
        ledger.close()
    }
}
