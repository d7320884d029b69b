import CostdCore

/// Takes a reservation against the hard budgets, atomically, after giving back the money of
/// reservations that expired: granted only if `spent + reserved + amount <= limit` for every
/// hard budget (the host's, and each scoped one the call counts toward), so clients that
/// reserve first never push spend past a limit together, in all and per scope. The money is
/// held against every scoped budget the call counts toward, hard or not.
public struct ReserveScript: RedisScriptCall {
    public enum Reply: Sendable, Equatable {
        case granted(daySpent: Money, dayReserved: Money, monthSpent: Money, monthReserved: Money)
        /// `budget`: the index of the scoped budget that refused, nil for the host's.
        case refused(scope: BudgetScope, spent: Money, reserved: Money, budget: Int?)
    }

    /// A scoped budget the call counts toward: its spend field in the day and month hashes,
    /// its limits (when hard) and its reserved-money fields.
    public struct ScopedBudgetArguments: Sendable, Equatable {
        public var spendField: String
        public var dayLimit: Money?
        public var monthLimit: Money?
        public var reservedDayField: String
        public var reservedMonthField: String

        public init(key: String, budget: ScopedBudget?, day: String, month: String) {
            spendField = SpendSchema.budgetSpendField(key)
            dayLimit = budget?.hardLimit(.day)
            monthLimit = budget?.hardLimit(.month)
            reservedDayField = SpendSchema.periodKey(.day, day, budget: key)
            reservedMonthField = SpendSchema.periodKey(.month, month, budget: key)
        }
    }

    // KEYS
    public var dayKey: String
    public var monthKey: String
    public var reservationAmountsKey: String
    public var reservationExpiryKey: String
    public var reservedTotalsKey: String
    public var epochKey: String
    // ARGV
    public var id: String
    public var amount: Money
    public var expiresAtMillis: Int64
    public var nowMillis: Int64
    /// nil where that budget is not hard.
    public var dayLimit: Money?
    public var monthLimit: Money?
    public var day: String
    public var month: String
    /// The spend canary's token this daemon knows (``RecordBatchScript/epochChanged`` otherwise).
    public var epoch: String
    public var scopedBudgets: [ScopedBudgetArguments]

    public init(request: ReservationRequest, budget: BudgetSettings, epoch: String, keys: RedisKeys) {
        dayKey = keys.day(request.day)
        monthKey = keys.month(request.month)
        reservationAmountsKey = keys.reservationAmounts
        reservationExpiryKey = keys.reservationExpiry
        reservedTotalsKey = keys.reservedTotals
        epochKey = keys.spendEpoch
        id = request.id
        amount = request.amount
        expiresAtMillis = request.expiresAtMillis
        nowMillis = request.nowMillis
        dayLimit = budget.isHard(.day) ? budget.daily : nil
        monthLimit = budget.isHard(.month) ? budget.monthly : nil
        day = request.day
        month = request.month
        self.epoch = epoch
        scopedBudgets = request.budgets.map {
            ScopedBudgetArguments(key: $0, budget: budget.scopedBudget(key: $0), day: request.day, month: request.month)
        }
    }

    public var keys: [String] { [dayKey, monthKey, reservationAmountsKey, reservationExpiryKey, reservedTotalsKey, epochKey] }

    public func appendArguments(to command: inout RedisCommand) {
        command.append(id)
        command.append(contentsOf: [amount.nanos, expiresAtMillis, nowMillis, dayLimit?.nanos ?? -1, monthLimit?.nanos ?? -1])
        command.append(contentsOf: [day, month, epoch])
        command.append(scopedBudgets.count)
        for scoped in scopedBudgets {
            command.append(scoped.spendField)
            command.append(contentsOf: [scoped.dayLimit?.nanos ?? -1, scoped.monthLimit?.nanos ?? -1])
            command.append(contentsOf: [scoped.reservedDayField, scoped.reservedMonthField])
        }
    }

    /// `{1, daySpent, dayReserved, monthSpent, monthReserved}` or `{0, scope, spent, reserved,
    /// budget}` (budget 0: the host's; else the scoped budget's index, from 1).
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Reply {
        guard let parts = reply.array, let granted = parts.first?.integer else { throw .unexpected(reply, of: Self.self) }
        let values = parts.dropFirst().map { Money(nanos: $0.integer ?? 0) }
        if granted == 1, values.count == 4 {
            return .granted(daySpent: values[0], dayReserved: values[1], monthSpent: values[2], monthReserved: values[3])
        }
        guard granted == 0, parts.count >= 4, let scope = parts[1].text.flatMap(BudgetScope.init(rawValue:)) else {
            throw .unexpected(reply, of: Self.self)
        }
        let budget = parts.count > 4 ? parts[4].integer.flatMap { $0 > 0 ? Int($0) - 1 : nil } : nil
        return .refused(scope: scope, spent: Money(nanos: parts[2].integer ?? 0), reserved: Money(nanos: parts[3].integer ?? 0), budget: budget)
    }

    public static let script = RedisScript(
        ReservationLua.giveBack + """
            if redis.call('GET', KEYS[6]) ~= ARGV[9] then return redis.error_reply('\(RecordBatchScript.epochChanged) spend canary changed: Redis lost spend') end
            for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[4])) do
              giveBack(KEYS[3], KEYS[4], KEYS[5], id)
            end
            local amount = tonumber(ARGV[2])
            local daySpent = tonumber(redis.call('HGET', KEYS[1], '\(SpendSchema.Total.spent)') or '0')
            local monthSpent = tonumber(redis.call('HGET', KEYS[2], '\(SpendSchema.Total.spent)') or '0')
            local dayReserved = tonumber(redis.call('HGET', KEYS[5], 'd:' .. ARGV[7]) or '0')
            local monthReserved = tonumber(redis.call('HGET', KEYS[5], 'm:' .. ARGV[8]) or '0')
            local dayLimit, monthLimit = tonumber(ARGV[5]), tonumber(ARGV[6])
            if dayLimit >= 0 and daySpent + dayReserved + amount > dayLimit then
              return {0, 'day', string.format('%d', daySpent), string.format('%d', dayReserved), 0}
            end
            if monthLimit >= 0 and monthSpent + monthReserved + amount > monthLimit then
              return {0, 'month', string.format('%d', monthSpent), string.format('%d', monthReserved), 0}
            end
            local scopedFields = {}
            for j = 1, tonumber(ARGV[10]) do
              local base = 11 + (j - 1) * 5
              local field, limits = ARGV[base], {tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])}
              local reservedFields = {ARGV[base + 3], ARGV[base + 4]}
              local spentOf = {tonumber(redis.call('HGET', KEYS[1], field) or '0'), tonumber(redis.call('HGET', KEYS[2], field) or '0')}
              for c = 1, 2 do
                local reserved = tonumber(redis.call('HGET', KEYS[5], reservedFields[c]) or '0')
                if limits[c] >= 0 and spentOf[c] + reserved + amount > limits[c] then
                  return {0, c == 1 and 'day' or 'month', string.format('%d', spentOf[c]), string.format('%d', reserved), j}
                end
                table.insert(scopedFields, reservedFields[c])
              end
            end
            redis.call('HINCRBY', KEYS[5], 'd:' .. ARGV[7], amount)
            redis.call('HINCRBY', KEYS[5], 'm:' .. ARGV[8], amount)
            for _, field in ipairs(scopedFields) do redis.call('HINCRBY', KEYS[5], field, amount) end
            redis.call('HSET', KEYS[3], ARGV[1], string.format('%d|%s|%s|', amount, ARGV[7], ARGV[8]) .. table.concat(scopedFields, '\\30'))
            redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
            return {1, string.format('%d', daySpent), string.format('%d', dayReserved + amount),
                    string.format('%d', monthSpent), string.format('%d', monthReserved + amount)}
            """
    )
}
