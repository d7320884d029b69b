import CostdCore

/// A cache lookup that takes the single-flight lease on a miss.
public struct AcquireLeaseScript: RedisScriptCall {
    public enum Reply: Sendable, Equatable {
        /// The value, its remaining TTL in milliseconds (-1: none) and what its answer cost.
        case hit(value: [UInt8], pttl: Int64, answerCost: Money)
        /// The caller holds the lease now.
        case granted
        /// Another caller holds it.
        case held
    }

    public var valueKey: String
    public var costKey: String
    public var leaseKey: String
    public var token: String
    public var leaseTTLMillis: Int64

    public init(key: CacheKey, namespace: String, token: String, leaseTTLMillis: Int64, keys: RedisKeys) {
        valueKey = keys.cacheValue(key, namespace: namespace)
        costKey = keys.cacheAnswerCost(key, namespace: namespace)
        leaseKey = keys.lease(key)
        self.token = token
        self.leaseTTLMillis = leaseTTLMillis
    }

    public var keys: [String] { [valueKey, leaseKey, costKey] }
    public func appendArguments(to command: inout RedisCommand) {
        command.append(token)
        command.append(leaseTTLMillis)
    }

    /// `{1, value, pttl, cost}` on a hit (cost `""` when not stored), `{2}` when the lease was
    /// granted, `{3, pttl}` when held.
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Reply {
        guard let parts = reply.array, let kind = parts.first?.integer else { throw .unexpected(reply, of: Self.self) }
        switch kind {
        case 1:
            guard parts.count >= 3, let value = parts[1].bytes else { throw .unexpected(reply, of: Self.self) }
            let cost = parts.count > 3 ? parts[3].text.flatMap { Int64($0) } ?? 0 : 0
            return .hit(value: value, pttl: parts[2].integer ?? -1, answerCost: Money(nanos: cost))
        case 2: return .granted
        case 3: return .held
        default: throw .unexpected(reply, of: Self.self)
        }
    }

    public static let script = RedisScript(
        #"""
        local value = redis.call('GET', KEYS[1])
        if value then return {1, value, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[3]) or ''} end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
        return {3, redis.call('PTTL', KEYS[2])}
        """#
    )
}
