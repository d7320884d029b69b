import CostdCore

/// Gives a lease up (the call failed) if it is still the caller's, and tells the daemons so
/// that a waiter takes it at once (a `rel` notice).
public struct ReleaseLeaseScript: RedisScriptCall {
    /// Whether the lease was the caller's.
    public typealias Reply = Bool

    public var leaseKey: String
    public var token: String
    public var channel: String
    public var notice: [UInt8]

    public init(key: CacheKey, token: String, notice: [UInt8], keys: RedisKeys) {
        leaseKey = keys.lease(key)
        self.token = token
        channel = keys.events
        self.notice = notice
    }

    public var keys: [String] { [leaseKey] }
    public func appendArguments(to command: inout RedisCommand) {
        command.append(token)
        command.append(channel)
        command.append(notice)
    }

    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Bool {
        guard let released = reply.integer else { throw .unexpected(reply, of: Self.self) }
        return released == 1
    }

    public static let script = RedisScript(
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
