import CostdCore

/// Counts one record exactly once, settles the reservation it names, and decides its alerts.
///
/// A script runs atomically, so concurrent records from many daemons see one total; only the
/// run that creates an alert's flag (`SET … NX`) reports it, so across any number of daemons
/// each alert fires once per period and level. The first result of a record id is kept for
/// `redis.record_id_window`, so a retry (or a backlog replay) answers as the first.
public struct RecordScript: RedisScriptCall {
    public typealias Reply = Outcome

    /// What the script answered.
    public struct Outcome: Sendable, Equatable {
        /// The record id had been counted before: nothing changed, and this is the first result.
        public var duplicate: Bool
        public var cost: Money
        public var daySpent: Money
        public var monthSpent: Money
        /// Alerts this record fired, as `(scope, level)`.
        public var alerts: [(BudgetScope, AlertLevel)]

        public static func == (lhs: Outcome, rhs: Outcome) -> Bool {
            lhs.duplicate == rhs.duplicate && lhs.cost == rhs.cost && lhs.daySpent == rhs.daySpent
                && lhs.monthSpent == rhs.monthSpent && lhs.alerts.map { "\($0)\($1)" } == rhs.alerts.map { "\($0)\($1)" }
        }
    }

    // KEYS, made when asked for: a batch needs the shared ones of its first record only.
    private let redisKeys: RedisKeys
    public var recordId: String
    public var recordIdKey: String { redisKeys.record(recordId) }
    public var dayKey: String { redisKeys.day(day) }
    public var monthKey: String { redisKeys.month(month) }
    /// Alert flags: day warning, day exceeded, month warning, month exceeded.
    public var alertKeys: [String] {
        [
            redisKeys.alert(.day, day, .warning), redisKeys.alert(.day, day, .exceeded),
            redisKeys.alert(.month, month, .warning), redisKeys.alert(.month, month, .exceeded),
        ]
    }
    public var reservationAmountsKey: String { redisKeys.reservationAmounts }
    public var reservationExpiryKey: String { redisKeys.reservationExpiry }
    public var reservedTotalsKey: String { redisKeys.reservedTotals }

    // ARGV
    public var recordIdWindowSeconds: Int64
    public var cost: Money
    public var cached: Bool
    public var dayTTLSeconds: Int64
    public var monthTTLSeconds: Int64
    /// Alert thresholds in the order of `alertKeys`; nil where no budget is set.
    public var thresholds: [Money?]
    public var alertTTLSeconds: Int64
    public var reservation: String?
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cachedInputTokens: Int64
    public var routingSaved: Money
    public var day: String
    public var month: String
    /// `<kind>␟<name>` of every breakdown the record counts under (``SpendSchema``).
    public var breakdowns: [String]

    public init(record: SpendRecord, reservation: String?, budget: BudgetSettings, settings: RedisSettings, keys: RedisKeys) {
        let month = PeriodCalendar.monthKey(ofDay: record.day)
        redisKeys = keys
        recordId = record.recordId
        recordIdWindowSeconds = settings.recordIdWindowSeconds
        cost = record.cost
        cached = record.cached
        dayTTLSeconds = settings.dayKeyTTLDays * 86_400
        monthTTLSeconds = settings.monthKeyTTLDays * 86_400
        func threshold(_ scope: BudgetScope, _ level: AlertLevel) -> Money? {
            budget.budget(for: scope).map { budget.threshold(level, of: $0) }
        }
        thresholds = [threshold(.day, .warning), threshold(.day, .exceeded), threshold(.month, .warning), threshold(.month, .exceeded)]
        alertTTLSeconds = settings.monthKeyTTLDays * 86_400
        self.reservation = reservation
        inputTokens = record.inputTokens
        outputTokens = record.outputTokens
        cachedInputTokens = record.cachedInputTokens
        routingSaved = record.routingSaved
        day = record.day
        self.month = month
        breakdowns = SpendSchema.kinds.compactMap { kind in kind.name(record).map { SpendSchema.breakdownPrefix(kind, $0) } }
    }

    public var keys: [String] {
        [recordIdKey, dayKey, monthKey] + alertKeys + [reservationAmountsKey, reservationExpiryKey, reservedTotalsKey]
    }

    public var arguments: [[UInt8]] {
        var arguments: [[UInt8]] = [
            recordIdWindowSeconds.redisBytes, cost.nanos.redisBytes, (cached ? "1" : "0").redisBytes,
            dayTTLSeconds.redisBytes, monthTTLSeconds.redisBytes,
        ]
        arguments += thresholds.map { ($0?.nanos ?? -1).redisBytes }
        arguments += [
            alertTTLSeconds.redisBytes, (reservation ?? "").redisBytes,
            inputTokens.redisBytes, outputTokens.redisBytes, cachedInputTokens.redisBytes, routingSaved.nanos.redisBytes,
            day.redisBytes, month.redisBytes,
        ]
        arguments += breakdowns.map(\.redisBytes)
        return arguments
    }

    /// `{0, result}` for a new record, `{1, first result}` for a duplicate; a result is
    /// `cost|daySpent|monthSpent|alerts`, alerts a comma list of `day:warning`…
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Outcome {
        guard let parts = reply.array, parts.count == 2, let flag = parts[0].integer, let result = parts[1].text else {
            throw .unexpected(reply, of: Self.self)
        }
        let fields = result.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 4, let cost = Int64(fields[0]), let daySpent = Int64(fields[1]), let monthSpent = Int64(fields[2]) else {
            throw .unexpected(reply, of: Self.self)
        }
        let alerts = fields[3].split(separator: ",").compactMap { name -> (BudgetScope, AlertLevel)? in
            let parts = name.split(separator: ":")
            guard parts.count == 2, let scope = BudgetScope(rawValue: String(parts[0])), let level = AlertLevel(rawValue: String(parts[1]))
            else { return nil }
            return (scope, level)
        }
        return Outcome(
            duplicate: flag == 1, cost: Money(nanos: cost), daySpent: Money(nanos: daySpent), monthSpent: Money(nanos: monthSpent),
            alerts: alerts)
    }

    // Money is integer nano-dollars throughout (HINCRBY, never INCRBYFLOAT); Lua's numbers are
    // doubles, exact for integers up to 2^53 nano-dollars (about $9 million a day), and results
    // are printed with `%d` (cjson would round them to 14 digits). The field names are
    // ``SpendSchema``'s. HINCRBY answers the new total, so a record reads nothing back; the
    // keys' expiry is set by the first record of the day.
    public static let script = RedisScript(
        ReservationLua.giveBack + """
            local first = redis.call('GET', KEYS[1])
            if first then return {1, first} end
            local cost = tonumber(ARGV[2])
            local cached = ARGV[3] == '1'
            local day, month = KEYS[2], KEYS[3]
            if ARGV[11] ~= '' then giveBack(KEYS[8], KEYS[9], KEYS[10], ARGV[11]) end
            local sep = '\\31'
            local daySpent, monthSpent, firstOfDay
            if cached then
              firstOfDay = redis.call('HINCRBY', day, '\(SpendSchema.Total.cachedRequests)', 1) == 1
              redis.call('HINCRBY', day, '\(SpendSchema.Total.savedByCache)', cost)
              for i = 18, #ARGV do
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.cachedRequests)', 1)
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.saved)', cost)
              end
              daySpent = tonumber(redis.call('HGET', day, '\(SpendSchema.Total.spent)') or '0')
              monthSpent = tonumber(redis.call('HGET', month, '\(SpendSchema.Total.spent)') or '0')
            else
              daySpent = redis.call('HINCRBY', day, '\(SpendSchema.Total.spent)', cost)
              firstOfDay = redis.call('HINCRBY', day, '\(SpendSchema.Total.requests)', 1) == 1
              redis.call('HINCRBY', day, '\(SpendSchema.Total.inputTokens)', ARGV[12])
              redis.call('HINCRBY', day, '\(SpendSchema.Total.outputTokens)', ARGV[13])
              if ARGV[14] ~= '0' then redis.call('HINCRBY', day, '\(SpendSchema.Total.cachedInputTokens)', ARGV[14]) end
              if ARGV[15] ~= '0' then redis.call('HINCRBY', day, '\(SpendSchema.Total.savedByRouting)', ARGV[15]) end
              monthSpent = redis.call('HINCRBY', month, '\(SpendSchema.Total.spent)', cost)
              for i = 18, #ARGV do
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.cost)', cost)
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.requests)', 1)
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.inputTokens)', ARGV[12])
                redis.call('HINCRBY', day, ARGV[i] .. sep .. '\(SpendSchema.Breakdown.outputTokens)', ARGV[13])
              end
            end
            if firstOfDay then
              redis.call('EXPIRE', day, ARGV[4])
              redis.call('EXPIRE', month, ARGV[5])
            end
            local alerts = {}
            local checks = {{4, 6, daySpent, 'day:warning'}, {5, 7, daySpent, 'day:exceeded'},
                            {6, 8, monthSpent, 'month:warning'}, {7, 9, monthSpent, 'month:exceeded'}}
            for _, check in ipairs(checks) do
              local threshold = tonumber(ARGV[check[2]])
              if threshold >= 0 and check[3] > 0 and check[3] >= threshold then
                if redis.call('SET', KEYS[check[1]], '1', 'NX', 'EX', ARGV[10]) then
                  table.insert(alerts, check[4])
                end
              end
            end
            local result = string.format('%d|%d|%d|', cost, daySpent, monthSpent) .. table.concat(alerts, ',')
            redis.call('SET', KEYS[1], result, 'EX', ARGV[1])
            return {0, result}
            """
    )
}
