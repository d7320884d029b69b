import CostdCore

/// Stores a value (and what its answer cost, or no cost) that fills a lease, drops the lease if
/// it is still the caller's, and tells every daemon waiting for it (a `fill` notice on the
/// events channel).
public struct FillLeaseScript: RedisScriptCall {
    /// Whether the lease was still the caller's.
    public typealias Reply = Bool

    public var valueKey: String
    public var costKey: String
    public var leaseKey: String
    public var value: [UInt8]
    public var answerCost: Money
    public var ttlMillis: Int64
    public var token: String
    public var channel: String
    public var notice: [UInt8]

    public init(
        key: CacheKey, namespace: String, value: [UInt8], answerCost: Money = .zero, ttlMillis: Int64, token: String, notice: [UInt8],
        keys: RedisKeys
    ) {
        valueKey = keys.cacheValue(key, namespace: namespace)
        costKey = keys.cacheAnswerCost(key, namespace: namespace)
        leaseKey = keys.lease(key)
        self.value = value
        self.answerCost = answerCost
        self.ttlMillis = ttlMillis
        self.token = token
        channel = keys.events
        self.notice = notice
    }

    public var keys: [String] { [valueKey, leaseKey, costKey] }
    public func appendArguments(to command: inout RedisCommand) {
        command.append(value)
        command.append(ttlMillis)
        command.append(token)
        command.append(channel)
        command.append(notice)
        command.append(answerCost.nanos)
    }

    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Bool {
        guard let held = reply.integer else { throw .unexpected(reply, of: Self.self) }
        return held == 1
    }

    public static let script = RedisScript(
        #"""
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        if ARGV[6] ~= '0' then redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[2]) else redis.call('DEL', KEYS[3]) end
        local held = redis.call('GET', KEYS[2]) == ARGV[3]
        if held then redis.call('DEL', KEYS[2]) end
        redis.call('PUBLISH', ARGV[4], ARGV[5])
        if held then return 1 end
        return 0
        """#
    )
}
