import CostdCore

/// Checks Redis's spend canary and, when it does not hold the token the daemon knows, puts the
/// daemon's own spend of the open periods back, exactly once per daemon and canary.
///
/// A flush, an eviction or a restart without persistence loses the canary with the spend. The
/// first daemon to notice sets a new token; each daemon then adds what it counted itself
/// (from its ledger: the open month's day hashes, the month's spend, the alert flags it has
/// seen set) under a `<token>:<daemon>` field of `P{s}:restored`, set with HSETNX in the same
/// script, so a daemon that asks twice adds once. Records and reservations are refused
/// (``RecordBatchScript/epochChanged``) by a daemon whose token is old, so none are counted into
/// the new totals before that daemon's own are back. No daemon needs to know another's records.
public struct RestoreSpendScript: RedisScriptCall {
    /// The canary's token now, and whether this call put the daemon's spend back.
    public struct Reply: Sendable, Equatable {
        public var epoch: String
        public var restored: Bool
    }

    /// One hash's increments.
    public struct Increments: Sendable {
        public var key: String
        public var fields: [(field: String, amount: Int64)]

        public init(key: String, fields: [(field: String, amount: Int64)]) {
            self.key = key
            self.fields = fields
        }
    }

    // KEYS
    public var epochKey: String
    public var restoredKey: String
    public var hashes: [Increments]
    public var alertKeys: [String]
    // ARGV
    /// The token the daemon knows ("" for none yet).
    public var knownEpoch: String
    /// The token to set if the canary is missing.
    public var newEpoch: String
    public var daemonId: String

    public init(knownEpoch: String?, newEpoch: String, daemonId: String, hashes: [Increments], alertKeys: [String], keys: RedisKeys) {
        epochKey = keys.spendEpoch
        restoredKey = keys.spendRestored
        self.hashes = hashes
        self.alertKeys = alertKeys
        self.knownEpoch = knownEpoch ?? ""
        self.newEpoch = newEpoch
        self.daemonId = daemonId
    }

    /// The canary, the restored marks, each hash, then each alert flag.
    public var keys: [String] { [epochKey, restoredKey] + hashes.map(\.key) + alertKeys }

    /// Known token, new token, daemon, hash count, then per hash: its field count and its
    /// `field, amount` pairs.
    public func appendArguments(to command: inout RedisCommand) {
        command.append(contentsOf: [knownEpoch, newEpoch, daemonId])
        command.append(hashes.count)
        for hash in hashes {
            command.append(hash.fields.count)
            for (field, amount) in hash.fields {
                command.append(field)
                command.append(amount)
            }
        }
    }

    /// `{token, 0|1}`.
    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Reply {
        guard let parts = reply.array, parts.count == 2, let epoch = parts[0].text, let restored = parts[1].integer else {
            throw .unexpected(reply, of: Self.self)
        }
        return Reply(epoch: epoch, restored: restored == 1)
    }

    public static let script = RedisScript(
        """
        local current = redis.call('GET', KEYS[1])
        if not current then
          redis.call('SET', KEYS[1], ARGV[2])
          current = ARGV[2]
        end
        if current == ARGV[1] then return {current, 0} end
        if redis.call('HSETNX', KEYS[2], current .. ':' .. ARGV[3], '1') == 0 then return {current, 0} end
        local hashes = tonumber(ARGV[4])
        local at = 5
        for k = 3, 2 + hashes do
          local count = tonumber(ARGV[at])
          at = at + 1
          for i = 1, count do
            redis.call('HINCRBY', KEYS[k], ARGV[at], ARGV[at + 1])
            at = at + 2
          end
        end
        for k = 3 + hashes, #KEYS do redis.call('SET', KEYS[k], '1') end
        return {current, 1}
        """
    )
}
