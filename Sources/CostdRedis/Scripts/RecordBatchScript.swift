import CostdCore

/// Counts records of one day exactly once each, in order, in one script run: the records one
/// event loop took in a turn, or a slice of the backlog being replayed. A busy daemon pays Redis
/// one script call per turn rather than one per record, and each spend field (`spent`, a model's
/// `cost`) is written once per batch.
///
/// For each record: if its id was counted before (within the window, or earlier in this batch)
/// the first result is its answer and nothing changes; otherwise it settles the reservation it
/// names, adds to the running totals, and for each of day/warning, day/exceeded, month/warning,
/// month/exceeded whose threshold the running total has reached, `SET P{s}:a:… 1 NX`: only the
/// run that creates the flag reports the alert, so across any number of daemons each alert fires
/// once per period and level, for the record that crossed the line. Its result is remembered
/// under its id for `redis.record_id_window`. A script runs atomically, so concurrent batches
/// from many daemons see one total.
///
/// The batch is refused whole (``epochChanged``) unless Redis's spend canary holds the token
/// the daemon knows: after a flush nothing is counted into totals that lost the daemon's earlier
/// records until it has put them back (``RestoreSpendScript``). Totals and alert flags carry no
/// TTL, so a `volatile-*` eviction policy never picks them; maintenance deletes old periods.
///
/// Money is integer nano-dollars throughout (HINCRBY, never INCRBYFLOAT); Lua's numbers are
/// doubles, exact for integers up to 2^53 nano-dollars (about $9 million a day), and results are
/// printed with `%d`. The field names are ``SpendSchema``'s.
public struct RecordBatchScript: RedisScriptCall {
    /// What the script answered for one record.
    public struct Outcome: Sendable {
        /// The record id had been counted before: nothing changed, and this is the first result.
        public var duplicate: Bool
        public var cost: Money
        public var daySpent: Money
        public var monthSpent: Money
        /// Alerts this record fired, as `(scope, level)`.
        public var alerts: [(BudgetScope, AlertLevel)]
        /// Alerts of scoped budgets this record fired: which of its ``Record/scopedBudgets``,
        /// and that budget's spend in the period.
        public var scopedAlerts: [(budget: Int, scope: BudgetScope, level: AlertLevel, spent: Money)] = []
    }

    /// A scoped budget a record counts toward: its spend field (in the day and month hashes),
    /// its alert fields and thresholds.
    public struct ScopedBudgetArguments: Sendable, Equatable {
        public var key: String
        /// `b␟<scope key>␟cost`.
        public var spendField: String
        public var warningField: String
        public var exceededField: String
        /// Day warning, day exceeded, month warning, month exceeded; nil where no limit is set
        /// (or the budget is no longer configured).
        public var thresholds: [Money?]

        public init(key: String, budget: ScopedBudget?) {
            self.key = key
            spendField = SpendSchema.budgetSpendField(key)
            warningField = RedisKeys.scopedAlertField(key, .warning)
            exceededField = RedisKeys.scopedAlertField(key, .exceeded)
            thresholds = [
                budget?.threshold(.warning, .day), budget?.threshold(.exceeded, .day), budget?.threshold(.warning, .month),
                budget?.threshold(.exceeded, .month),
            ]
        }
    }

    /// One record as the batch takes it: its id key, its amounts, and the batch's settings it
    /// shares with the others (the first record's are used).
    public struct Record: Sendable {
        // KEYS, made when asked for: a batch needs the shared ones of its first record only.
        private let redisKeys: RedisKeys
        public var recordId: String
        public var recordIdKey: String { redisKeys.record(recordId) }
        public var dayKey: String { redisKeys.day(day) }
        public var monthKey: String { redisKeys.month(month) }
        /// Alert flags: day warning, day exceeded, month warning, month exceeded.
        public var alertKeys: [String] {
            RedisKeys.alertFlags(day: day).map { redisKeys.alert($0.scope, $0.period, $0.level) }
        }
        public var reservationAmountsKey: String { redisKeys.reservationAmounts }
        public var reservationExpiryKey: String { redisKeys.reservationExpiry }
        public var reservedTotalsKey: String { redisKeys.reservedTotals }
        public var epochKey: String { redisKeys.spendEpoch }
        public var dayScopedAlertsKey: String { redisKeys.scopedAlerts(day) }
        public var monthScopedAlertsKey: String { redisKeys.scopedAlerts(month) }
        public var alertStreamKey: String { redisKeys.alertStream }

        // ARGV
        public var recordIdWindowSeconds: Int64
        /// The spend canary's token this daemon knows: the batch is refused when Redis holds another.
        public var epoch: String
        public var cost: Money
        public var cached: Bool
        /// Alert thresholds in the order of `alertKeys`; nil where no budget is set.
        public var thresholds: [Money?]
        public var reservation: String?
        public var inputTokens: Int64
        public var outputTokens: Int64
        public var cachedInputTokens: Int64
        public var routingSaved: Money
        /// When the record was made: the time of the alerts it fires.
        public var unixMillis: Int64
        public var day: String
        public var month: String
        /// `<kind>␟<name>` of every breakdown the record counts under (``SpendSchema``).
        public var breakdowns: [String]
        /// The scoped budgets the record counts toward (``SpendRecord/budgets``).
        public var scopedBudgets: [ScopedBudgetArguments]

        public init(
            record: SpendRecord, reservation: String?, budget: BudgetSettings, epoch: String, settings: RedisSettings, keys: RedisKeys
        ) {
            let month = PeriodCalendar.monthKey(ofDay: record.day)
            redisKeys = keys
            recordId = record.recordId
            recordIdWindowSeconds = settings.recordIdWindowSeconds
            self.epoch = epoch
            cost = record.cost
            cached = record.cached
            func threshold(_ scope: BudgetScope, _ level: AlertLevel) -> Money? {
                budget.budget(for: scope).map { budget.threshold(level, of: $0) }
            }
            thresholds = [threshold(.day, .warning), threshold(.day, .exceeded), threshold(.month, .warning), threshold(.month, .exceeded)]
            self.reservation = reservation
            inputTokens = record.inputTokens
            outputTokens = record.outputTokens
            cachedInputTokens = record.cachedInputTokens
            routingSaved = record.routingSaved
            unixMillis = record.unixMillis
            day = record.day
            self.month = month
            breakdowns = SpendSchema.kinds.flatMap { kind in kind.names(record).map { SpendSchema.breakdownPrefix(kind, $0) } }
            scopedBudgets = record.budgets.map { ScopedBudgetArguments(key: $0, budget: budget.scopedBudget(key: $0)) }
        }
    }

    /// `{0, result}` for a new record, `{1, first result}` for a duplicate; a result is
    /// `cost|daySpent|monthSpent|alerts`, alerts a comma list of `day:warning`… and, for scoped
    /// budgets, `day:warning:<index of the budget>:<its spend>`.
    static func parseOutcome(_ reply: RedisReply) throws(RedisScriptError) -> Outcome {
        guard let parts = reply.array, parts.count == 2, let flag = parts[0].integer, let result = parts[1].text else {
            throw .unexpected(reply, of: Self.self)
        }
        let fields = result.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 4, let cost = Int64(fields[0]), let daySpent = Int64(fields[1]), let monthSpent = Int64(fields[2]) else {
            throw .unexpected(reply, of: Self.self)
        }
        var alerts: [(BudgetScope, AlertLevel)] = []
        var scopedAlerts: [(budget: Int, scope: BudgetScope, level: AlertLevel, spent: Money)] = []
        for name in fields[3].split(separator: ",") {
            let parts = name.split(separator: ":")
            guard parts.count >= 2, let scope = BudgetScope(rawValue: String(parts[0])), let level = AlertLevel(rawValue: String(parts[1]))
            else { continue }
            if parts.count == 4, let index = Int(parts[2]), let spent = Int64(parts[3]) {
                scopedAlerts.append((index - 1, scope, level, Money(nanos: spent)))
            } else if parts.count == 2 {
                alerts.append((scope, level))
            }
        }
        return Outcome(
            duplicate: flag == 1, cost: Money(nanos: cost), daySpent: Money(nanos: daySpent), monthSpent: Money(nanos: monthSpent),
            alerts: alerts, scopedAlerts: scopedAlerts)
    }

    /// One outcome per record, in order.
    public typealias Reply = [Outcome]

    /// The records of the batch, in order (one day's, with the same budget).
    public var records: [Record]

    public init(records: [Record]) {
        precondition(!records.isEmpty, "a batch has records")
        precondition(records.allSatisfy { $0.day == records[0].day }, "a batch is one day's")
        self.records = records
    }

    /// Splits items into runs of consecutive records that one batch may hold (the same day and
    /// budget), keeping their order: almost always one run; a turn or a backlog that spans
    /// midnight, or a reload that changed the budgets, makes more.
    public static func batches<Item>(of items: [Item], record: (Item) -> Record) -> [[Item]] {
        var batches: [[Item]] = []
        for item in items {
            if let last = batches.last?.last, record(last).day == record(item).day, record(last).thresholds == record(item).thresholds,
                record(last).epoch == record(item).epoch
            {
                batches[batches.count - 1].append(item)
            } else {
                batches.append([item])
            }
        }
        return batches
    }

    /// day, month, four alert flags, reservation amounts, expiry, totals, the canary, the day's
    /// and month's scoped alert flags, the alert stream, then each record id.
    public var keys: [String] {
        let first = records[0]
        return [first.dayKey, first.monthKey] + first.alertKeys
            + [first.reservationAmountsKey, first.reservationExpiryKey, first.reservedTotalsKey, first.epochKey]
            + [first.dayScopedAlertsKey, first.monthScopedAlertsKey, first.alertStreamKey]
            + records.map(\.recordIdKey)
    }

    /// The batch's settings (record id window, canary token, four thresholds), then per record:
    /// cost, cached, reservation, input, output, cached input, routing saved, breakdown count,
    /// scoped budget count, its time (ms), breakdowns, and per scoped budget its spend field,
    /// warning and exceeded fields, four thresholds and its scope key.
    public func appendArguments(to command: inout RedisCommand) {
        let first = records[0]
        command.append(first.recordIdWindowSeconds)
        command.append(first.epoch)
        for threshold in first.thresholds { command.append(threshold?.nanos ?? -1) }
        for record in records {
            command.append(record.cost.nanos)
            command.append(record.cached ? "1" : "0")
            command.append(record.reservation ?? "")
            command.append(contentsOf: [record.inputTokens, record.outputTokens, record.cachedInputTokens, record.routingSaved.nanos])
            command.append(record.breakdowns.count)
            command.append(record.scopedBudgets.count)
            command.append(record.unixMillis)
            command.append(contentsOf: record.breakdowns)
            for scoped in record.scopedBudgets {
                command.append(contentsOf: [scoped.spendField, scoped.warningField, scoped.exceededField])
                for threshold in scoped.thresholds { command.append(threshold?.nanos ?? -1) }
                command.append(scoped.key)
            }
        }
    }

    /// An array of `{flag, result}` pairs, one per record.
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> [Outcome] {
        guard let parts = reply.array else { throw .unexpected(reply, of: Self.self) }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(parts.count)
        for part in parts { outcomes.append(try parseOutcome(part)) }
        return outcomes
    }

    /// The stream keeps the latest alerts (about this many), for followers that were away.
    public static let alertStreamLength = 10_000

    /// An alert as the script adds it to the stream (the entry's id is the alert's): its
    /// budget's scope key (`{}` for the host's), period, level, spend and limit in nano-dollars,
    /// and time. Returns nil for an entry that is not one.
    public static func alert(streamId: String, fields: [String: String]) -> AlertEvent? {
        guard let id = AlertId(streamId), let period = fields["p"].flatMap(BudgetScope.init(rawValue:)),
            let level = fields["l"].flatMap(AlertLevel.init(rawValue:)), let spent = fields["spent"].flatMap({ Int64($0) }),
            let budget = fields["budget"].flatMap({ Int64($0) }), let at = fields["at"].flatMap({ Int64($0) })
        else { return nil }
        return AlertEvent(
            id: id, scope: fields["s"].flatMap { SpendScope(key: $0) } ?? .host, period: period, level: level, spent: Money(nanos: spent),
            budget: Money(nanos: budget), at: at)
    }

    /// The error a batch gets when Redis's canary is not the token the daemon knows.
    public static let epochChanged = "COSTDEPOCH"

    public static let script = RedisScript(
        ReservationLua.giveBack + """
            if redis.call('GET', KEYS[10]) ~= ARGV[2] then return redis.error_reply('\(RecordBatchScript.epochChanged) spend canary changed: Redis lost spend') end
            local day, month = KEYS[1], KEYS[2]
            local sep = '\\31'
            local daySpent = tonumber(redis.call('HGET', day, '\(SpendSchema.Total.spent)') or '0')
            local monthSpent = tonumber(redis.call('HGET', month, '\(SpendSchema.Total.spent)') or '0')
            local dayFields, monthFields, order = {}, {}, {}
            local function add(field, amount)
              if amount == 0 then return end
              if dayFields[field] == nil then
                dayFields[field] = 0
                table.insert(order, field)
              end
              dayFields[field] = dayFields[field] + amount
            end
            local monthAdded = 0
            -- Scoped budgets' spend this batch adds to the month, by field, and their running
            -- totals (read from the hashes at first sight, then kept here).
            local monthBudgetFields, monthOrder, dayBudget, monthBudget = {}, {}, {}, {}
            local thresholds = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])}
            local names = {'day:warning', 'day:exceeded', 'month:warning', 'month:exceeded'}
            local periods, levels = {'day', 'day', 'month', 'month'}, {'warning', 'exceeded', 'warning', 'exceeded'}
            -- Fired alerts go to the fleet's stream in the same run as their flags: never lost,
            -- never twice. The limit is the exceeded threshold.
            local function publish(scope, c, spent, limits, at)
              redis.call('XADD', KEYS[13], 'MAXLEN', '~', '\(RecordBatchScript.alertStreamLength)', '*', 's', scope,
                'p', periods[c], 'l', levels[c], 'spent', string.format('%d', spent),
                'budget', string.format('%d', limits[c <= 2 and 2 or 4]), 'at', at)
            end
            local results = {}
            local at = 7
            for r = 14, #KEYS do
              local cost, cached, reservation = tonumber(ARGV[at]), ARGV[at + 1] == '1', ARGV[at + 2]
              local input, output, cachedInput = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
              local routingSaved, count, scopedCount = tonumber(ARGV[at + 6]), tonumber(ARGV[at + 7]), tonumber(ARGV[at + 8])
              local madeAt = ARGV[at + 9]
              local scopedAt = at + 10 + count
              local first = redis.call('GET', KEYS[r])
              if first then
                table.insert(results, {1, first})
              else
                if reservation ~= '' then giveBack(KEYS[7], KEYS[8], KEYS[9], reservation) end
                if cached then
                  add('\(SpendSchema.Total.cachedRequests)', 1)
                  add('\(SpendSchema.Total.savedByCache)', cost)
                  for i = at + 10, at + 9 + count do
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.cachedRequests)', 1)
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.saved)', cost)
                  end
                else
                  daySpent = daySpent + cost
                  monthSpent = monthSpent + cost
                  monthAdded = monthAdded + cost
                  add('\(SpendSchema.Total.spent)', cost)
                  add('\(SpendSchema.Total.requests)', 1)
                  add('\(SpendSchema.Total.inputTokens)', input)
                  add('\(SpendSchema.Total.outputTokens)', output)
                  add('\(SpendSchema.Total.cachedInputTokens)', cachedInput)
                  add('\(SpendSchema.Total.savedByRouting)', routingSaved)
                  for i = at + 10, at + 9 + count do
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.cost)', cost)
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.requests)', 1)
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.inputTokens)', input)
                    add(ARGV[i] .. sep .. '\(SpendSchema.Breakdown.outputTokens)', output)
                  end
                end
                local alerts = {}
                local totals = {daySpent, daySpent, monthSpent, monthSpent}
                for c = 1, 4 do
                  if thresholds[c] >= 0 and totals[c] > 0 and totals[c] >= thresholds[c] then
                    if redis.call('SET', KEYS[2 + c], '1', 'NX') then
                      table.insert(alerts, names[c])
                      publish('{}', c, totals[c], thresholds, madeAt)
                    end
                  end
                end
                for j = 1, scopedCount do
                  local base = scopedAt + (j - 1) * 8
                  local field = ARGV[base]
                  if dayBudget[field] == nil then
                    dayBudget[field] = tonumber(redis.call('HGET', day, field) or '0')
                    monthBudget[field] = tonumber(redis.call('HGET', month, field) or '0')
                  end
                  if not cached then
                    dayBudget[field] = dayBudget[field] + cost
                    monthBudget[field] = monthBudget[field] + cost
                    if monthBudgetFields[field] == nil then
                      monthBudgetFields[field] = 0
                      table.insert(monthOrder, field)
                    end
                    monthBudgetFields[field] = monthBudgetFields[field] + cost
                  end
                  local spentOf = {dayBudget[field], dayBudget[field], monthBudget[field], monthBudget[field]}
                  local flags = {ARGV[base + 1], ARGV[base + 2], ARGV[base + 1], ARGV[base + 2]}
                  local limits = {tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4]), tonumber(ARGV[base + 5]), tonumber(ARGV[base + 6])}
                  for c = 1, 4 do
                    local threshold = tonumber(ARGV[base + 2 + c])
                    if threshold >= 0 and spentOf[c] > 0 and spentOf[c] >= threshold then
                      if redis.call('HSETNX', KEYS[c <= 2 and 11 or 12], flags[c], '1') == 1 then
                        table.insert(alerts, names[c] .. ':' .. j .. ':' .. string.format('%d', spentOf[c]))
                        publish(ARGV[base + 7], c, spentOf[c], limits, madeAt)
                      end
                    end
                  end
                end
                local result = string.format('%d|%d|%d|', cost, daySpent, monthSpent) .. table.concat(alerts, ',')
                redis.call('SET', KEYS[r], result, 'EX', ARGV[1])
                table.insert(results, {0, result})
              end
              at = at + 10 + count + 8 * scopedCount
            end
            for _, field in ipairs(order) do redis.call('HINCRBY', day, field, dayFields[field]) end
            if monthAdded ~= 0 then redis.call('HINCRBY', month, '\(SpendSchema.Total.spent)', monthAdded) end
            for _, field in ipairs(monthOrder) do redis.call('HINCRBY', month, field, monthBudgetFields[field]) end
            return results
            """
    )
}
