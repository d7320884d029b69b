import CostdCore

/// The Lua scripts. Money is integer nano-dollars throughout (HINCRBY, never INCRBYFLOAT);
/// Lua's numbers are doubles, exact for integers up to 2^53 nano-dollars (about $9 million a
/// day), and results are printed with `%d` (cjson would round them to 14 digits).
public enum RedisScripts {
    /// Counts one record exactly once and decides its alerts.
    ///
    /// KEYS: 1 record-id key, 2 day hash, 3 month hash, 4–7 alert flags (day warning, day
    /// exceeded, month warning, month exceeded), 8 reservation amounts, 9 reservation expiry,
    /// 10 reserved totals.
    /// ARGV: 1 record-id window (s), 2 cost, 3 cached (0/1), 4 day TTL (s), 5 month TTL (s),
    /// 6–9 thresholds (day warning, day exceeded, month warning, month exceeded; -1 = none),
    /// 10 alert TTL (s), 11 reservation id or "", 12 input, 13 output, 14 cached input tokens,
    /// 15 routing saving, 16 day key, 17 month key, 18… breakdown prefixes (`m\x1Fgpt-4o`, …).
    ///
    /// Returns `{0, result}` for a new record, `{1, first result}` for a duplicate, where a result
    /// is `cost|daySpent|monthSpent|alerts` and alerts is a comma list of `day:warning`…
    public static let record = RedisScript(
        #"""
        local first = redis.call('GET', KEYS[1])
        if first then return {1, first} end
        local cost = tonumber(ARGV[2])
        local cached = ARGV[3] == '1'
        local day, month = KEYS[2], KEYS[3]
        if ARGV[11] ~= '' then
          local held = redis.call('HGET', KEYS[8], ARGV[11])
          if held then
            local amount, rday, rmonth = string.match(held, '^(%-?%d+)|([^|]*)|([^|]*)$')
            redis.call('HINCRBY', KEYS[10], 'd:' .. rday, -tonumber(amount))
            redis.call('HINCRBY', KEYS[10], 'm:' .. rmonth, -tonumber(amount))
            redis.call('HDEL', KEYS[8], ARGV[11])
            redis.call('ZREM', KEYS[9], ARGV[11])
          end
        end
        local sep = '\31'
        -- HINCRBY answers the new total, so a record needs no HGET to read it back; the keys'
        -- expiry is set by the first record of the day (and kept for history after that).
        local daySpent, monthSpent, firstOfDay
        if cached then
          firstOfDay = redis.call('HINCRBY', day, 'cn', 1) == 1
          redis.call('HINCRBY', day, 'savedCache', cost)
          for i = 18, #ARGV do
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'cn', 1)
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'saved', cost)
          end
        else
          daySpent = redis.call('HINCRBY', day, 'spent', cost)
          firstOfDay = redis.call('HINCRBY', day, 'n', 1) == 1
          redis.call('HINCRBY', day, 'in', ARGV[12])
          redis.call('HINCRBY', day, 'out', ARGV[13])
          redis.call('HINCRBY', day, 'cin', ARGV[14])
          redis.call('HINCRBY', day, 'savedRouting', ARGV[15])
          monthSpent = redis.call('HINCRBY', month, 'spent', cost)
          for i = 18, #ARGV do
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'cost', cost)
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'n', 1)
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'in', ARGV[12])
            redis.call('HINCRBY', day, ARGV[i] .. sep .. 'out', ARGV[13])
          end
        end
        if firstOfDay then
          redis.call('EXPIRE', day, ARGV[4])
          redis.call('EXPIRE', month, ARGV[5])
        end
        if cached then
          daySpent = tonumber(redis.call('HGET', day, 'spent') or '0')
          monthSpent = tonumber(redis.call('HGET', month, 'spent') or '0')
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
        """#
    )

    /// Takes a reservation against hard budgets, atomically, after dropping expired ones.
    ///
    /// KEYS: 1 day hash, 2 month hash, 3 reservation amounts, 4 reservation expiry, 5 reserved totals.
    /// ARGV: 1 id, 2 amount, 3 expires at (ms), 4 now (ms), 5 day limit (-1: not hard),
    /// 6 month limit, 7 day key, 8 month key.
    /// Returns `{1, daySpent, dayReserved, monthSpent, monthReserved}` when granted, or
    /// `{0, scope, spent, reserved}` when it would pass a limit.
    public static let reserve = RedisScript(
        #"""
        local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[4])
        for _, id in ipairs(expired) do
          local held = redis.call('HGET', KEYS[3], id)
          if held then
            local amount, rday, rmonth = string.match(held, '^(%-?%d+)|([^|]*)|([^|]*)$')
            redis.call('HINCRBY', KEYS[5], 'd:' .. rday, -tonumber(amount))
            redis.call('HINCRBY', KEYS[5], 'm:' .. rmonth, -tonumber(amount))
            redis.call('HDEL', KEYS[3], id)
          end
          redis.call('ZREM', KEYS[4], id)
        end
        local amount = tonumber(ARGV[2])
        local daySpent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
        local monthSpent = tonumber(redis.call('HGET', KEYS[2], 'spent') or '0')
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
        """#
    )

    /// Releases a reservation without recording anything. KEYS: amounts, expiry, totals. ARGV: id.
    public static let release = RedisScript(
        #"""
        local held = redis.call('HGET', KEYS[1], ARGV[1])
        if not held then return 0 end
        local amount, rday, rmonth = string.match(held, '^(%-?%d+)|([^|]*)|([^|]*)$')
        redis.call('HINCRBY', KEYS[3], 'd:' .. rday, -tonumber(amount))
        redis.call('HINCRBY', KEYS[3], 'm:' .. rmonth, -tonumber(amount))
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return 1
        """#
    )

    /// A cache lookup that takes the single-flight lease on a miss.
    /// KEYS: 1 value, 2 lease. ARGV: 1 token, 2 lease TTL (ms).
    /// Returns `{1, value, pttl}` on a hit, `{2}` when the lease was granted, `{3, pttl}` when
    /// another caller holds it.
    public static let acquire = RedisScript(
        #"""
        local value = redis.call('GET', KEYS[1])
        if value then return {1, value, redis.call('PTTL', KEYS[1])} end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
        return {3, redis.call('PTTL', KEYS[2])}
        """#
    )

    /// Stores a value that fills a lease, drops the lease if it is still the caller's, and tells
    /// every daemon waiting for it.
    /// KEYS: 1 value, 2 lease. ARGV: 1 value, 2 TTL (ms), 3 token, 4 channel, 5 message.
    /// Returns 1 if the lease was still held, 0 if it had expired or passed to someone else.
    public static let fill = RedisScript(
        #"""
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        local held = redis.call('GET', KEYS[2]) == ARGV[3]
        if held then redis.call('DEL', KEYS[2]) end
        redis.call('PUBLISH', ARGV[4], ARGV[5])
        if held then return 1 end
        return 0
        """#
    )

    /// Gives a lease up (the call failed): KEYS: 1 lease. ARGV: 1 token, 2 channel, 3 message.
    public static let releaseLease = RedisScript(
        #"""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], ARGV[3])
          return 1
        end
        return 0
        """#
    )
}
