import CostdCore

/// Counts a batch of records of one day in one script run: what ``RecordScript`` does for each,
/// in order, with each spend field incremented once for the whole batch. Records arriving in
/// one event-loop turn go together, so a busy daemon pays Redis one script call per turn rather
/// than one per record, and the same field (`spent`, a model's `cost`) is written once.
///
/// Each record is still counted exactly once (its id is checked and remembered as it is
/// reached, so a repeat within the batch is a duplicate too), settles its own reservation, and
/// sees the running totals, so alerts fire for the record that crossed the line, once per
/// period and level, as with one call per record.
public struct RecordBatchScript: RedisScriptCall {
    /// One outcome per record, in order.
    public typealias Reply = [RecordScript.Outcome]

    /// Every record of the batch, as it would be called alone (their day must be the same).
    public var records: [RecordScript]

    public init(records: [RecordScript]) {
        precondition(!records.isEmpty, "a batch has records")
        precondition(records.allSatisfy { $0.day == records[0].day }, "a batch is one day's")
        self.records = records
    }

    /// day, month, four alert flags, reservation amounts, expiry, totals, then each record id.
    public var keys: [String] {
        let first = records[0]
        return [first.dayKey, first.monthKey] + first.alertKeys
            + [first.reservationAmountsKey, first.reservationExpiryKey, first.reservedTotalsKey] + records.map(\.recordIdKey)
    }

    /// The batch's settings (window, TTLs, thresholds, alert TTL), then per record:
    /// cost, cached, reservation, input, output, cached input, routing saved, breakdown count,
    /// breakdowns.
    public var arguments: [[UInt8]] {
        let first = records[0]
        var arguments: [[UInt8]] = [
            first.recordIdWindowSeconds.redisBytes, first.dayTTLSeconds.redisBytes, first.monthTTLSeconds.redisBytes,
        ]
        arguments += first.thresholds.map { ($0?.nanos ?? -1).redisBytes }
        arguments.append(first.alertTTLSeconds.redisBytes)
        for record in records {
            arguments += [
                record.cost.nanos.redisBytes, (record.cached ? "1" : "0").redisBytes, (record.reservation ?? "").redisBytes,
                record.inputTokens.redisBytes, record.outputTokens.redisBytes, record.cachedInputTokens.redisBytes,
                record.routingSaved.nanos.redisBytes, record.breakdowns.count.redisBytes,
            ]
            arguments += record.breakdowns.map(\.redisBytes)
        }
        return arguments
    }

    /// An array of `{flag, result}` pairs, as ``RecordScript`` answers each.
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> [RecordScript.Outcome] {
        guard let parts = reply.array else { throw .unexpected(reply, of: Self.self) }
        var outcomes: [RecordScript.Outcome] = []
        outcomes.reserveCapacity(parts.count)
        for part in parts { outcomes.append(try RecordScript.parse(part)) }
        return outcomes
    }

    public static let script = RedisScript(
        ReservationLua.giveBack + """
            local day, month = KEYS[1], KEYS[2]
            local sep = '\\31'
            local daySpent = tonumber(redis.call('HGET', day, '\(SpendSchema.Total.spent)') or '0')
            local monthSpent = tonumber(redis.call('HGET', month, '\(SpendSchema.Total.spent)') or '0')
            local firstOfDay = redis.call('EXISTS', day) == 0
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
            local thresholds = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
            local names = {'day:warning', 'day:exceeded', 'month:warning', 'month:exceeded'}
            local results = {}
            local at = 9
            for r = 10, #KEYS do
              local cost, cached, reservation = tonumber(ARGV[at]), ARGV[at + 1] == '1', ARGV[at + 2]
              local input, output, cachedInput = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
              local routingSaved, count = tonumber(ARGV[at + 6]), tonumber(ARGV[at + 7])
              local first = redis.call('GET', KEYS[r])
              if first then
                table.insert(results, {1, first})
              else
                if reservation ~= '' then giveBack(KEYS[7], KEYS[8], KEYS[9], reservation) end
                if cached then
                  add('\(SpendSchema.Total.cachedRequests)', 1)
                  add('\(SpendSchema.Total.savedByCache)', cost)
                  for i = at + 8, at + 7 + count do
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
                  for i = at + 8, at + 7 + count do
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
                    if redis.call('SET', KEYS[2 + c], '1', 'NX', 'EX', ARGV[8]) then table.insert(alerts, names[c]) end
                  end
                end
                local result = string.format('%d|%d|%d|', cost, daySpent, monthSpent) .. table.concat(alerts, ',')
                redis.call('SET', KEYS[r], result, 'EX', ARGV[1])
                table.insert(results, {0, result})
              end
              at = at + 8 + count
            end
            for _, field in ipairs(order) do redis.call('HINCRBY', day, field, dayFields[field]) end
            if monthAdded ~= 0 then redis.call('HINCRBY', month, '\(SpendSchema.Total.spent)', monthAdded) end
            if firstOfDay and #order > 0 then
              redis.call('EXPIRE', day, ARGV[2])
              redis.call('EXPIRE', month, ARGV[3])
            end
            return results
            """
    )
}
