/// What a Redis will do with costd's keys when its memory is full: its `maxmemory` and
/// `maxmemory-policy`, as `INFO memory` reports them (`INFO` still works where `CONFIG` has
/// been renamed away, as managed Redis services do).
///
/// Spend must never be a candidate for eviction. Spend keys carry no TTL, so a `volatile-*`
/// policy never picks them; an `allkeys-*` policy may pick any key, so spend is not kept in such
/// a Redis at all (the cache still is: losing a cached answer costs one more call).
public struct RedisMemoryPolicy: Sendable, Equatable {
    /// Bytes; 0 is no limit.
    public var maxMemory: Int64
    /// `noeviction`, `allkeys-lru`, `volatile-ttl`…
    public var policy: String

    public init(maxMemory: Int64, policy: String) {
        self.maxMemory = maxMemory
        self.policy = policy
    }

    /// Reads the reply of `INFO memory` (`name:value` lines); nil when it has no policy line.
    public init?(info: String) {
        var maxMemory: Int64 = 0
        var policy: String?
        for line in info.split(whereSeparator: \.isNewline) {  // "\r\n" is one Character
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...]
            switch line[..<colon] {
            case "maxmemory": maxMemory = Int64(value) ?? 0
            case "maxmemory_policy": policy = String(value)
            default: break
            }
        }
        guard let policy else { return nil }
        self.init(maxMemory: maxMemory, policy: policy)
    }

    /// May Redis evict a key without a TTL? Only an `allkeys-*` policy does, and only once a
    /// memory limit is set.
    public var evictsKeysWithoutTTL: Bool {
        maxMemory > 0 && policy.hasPrefix("allkeys-")
    }

    /// Why spend is not kept in this Redis, for the log, `ping` and `report`; nil when it is.
    public var reasonSpendIsNotKept: String? {
        guard evictsKeysWithoutTTL else { return nil }
        return "maxmemory-policy \(policy) with maxmemory \(maxMemory) may evict any key, spend included: "
            + "spend stays in the local ledger until the policy is noeviction or volatile-*"
    }
}
