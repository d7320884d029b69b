import CostdCore

/// Takes a reservation against the hard budgets, atomically, after giving back the money of
/// reservations that expired: granted only if `spent + reserved + amount <= limit` for every
/// hard budget, so clients that reserve first never push spend past a limit together.
public struct ReserveScript: RedisScriptCall {
    public enum Reply: Sendable, Equatable {
        case granted(daySpent: Money, dayReserved: Money, monthSpent: Money, monthReserved: Money)
        case refused(scope: BudgetScope, spent: Money, reserved: Money)
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
    }

    public var keys: [String] { [dayKey, monthKey, reservationAmountsKey, reservationExpiryKey, reservedTotalsKey, epochKey] }

    public var arguments: [[UInt8]] {
        [
            id.redisBytes, amount.nanos.redisBytes, expiresAtMillis.redisBytes, nowMillis.redisBytes,
            (dayLimit?.nanos ?? -1).redisBytes, (monthLimit?.nanos ?? -1).redisBytes, day.redisBytes, month.redisBytes,
            epoch.redisBytes,
        ]
    }

    /// `{1, daySpent, dayReserved, monthSpent, monthReserved}` or `{0, scope, spent, reserved}`.
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Reply {
        guard let parts = reply.array, let granted = parts.first?.integer else { throw .unexpected(reply, of: Self.self) }
        let values = parts.dropFirst().map { Money(nanos: $0.integer ?? 0) }
        if granted == 1, values.count == 4 {
            return .granted(daySpent: values[0], dayReserved: values[1], monthSpent: values[2], monthReserved: values[3])
        }
        guard granted == 0, parts.count == 4, let scope = parts[1].text.flatMap(BudgetScope.init(rawValue:)) else {
            throw .unexpected(reply, of: Self.self)
        }
        return .refused(scope: scope, spent: Money(nanos: parts[2].integer ?? 0), reserved: Money(nanos: parts[3].integer ?? 0))
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
              return {0, 'day', string.format('%d', daySpent), string.format('%d', dayReserved)}
            end
            if monthLimit >= 0 and monthSpent + monthReserved + amount > monthLimit then
              return {0, 'month', string.format('%d', monthSpent), string.format('%d', monthReserved)}
            end
            redis.call('HINCRBY', KEYS[5], 'd:' .. ARGV[7], amount)
            redis.call('HINCRBY', KEYS[5], 'm:' .. ARGV[8], amount)
            redis.call('HSET', KEYS[3], ARGV[1], string.format('%d|%s|%s', amount, ARGV[7], ARGV[8]))
            redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
            return {1, string.format('%d', daySpent), string.format('%d', dayReserved + amount),
                    string.format('%d', monthSpent), string.format('%d', monthReserved + amount)}
            """
    )
}
