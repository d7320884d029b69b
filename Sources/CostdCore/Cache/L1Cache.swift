import Synchronization

/// The in-process cache in front of everything else: ``SieveCache`` shards behind locks.
///
/// Lookups are short critical sections (a hash lookup and a bit set), so a handful of shards
/// keeps two event-loop threads from waiting on each other. A small cache uses one shard so
/// that its byte bound is not split into pieces too small for one entry.
public final class L1Cache: Sendable {
    private final class Shard: Sendable {
        let cache: Mutex<SieveCache>
        init(capacityBytes: Int) { cache = Mutex(SieveCache(capacityBytes: capacityBytes)) }
    }

    public struct Statistics: Sendable, Equatable {
        public var entries: Int
        public var usedBytes: Int
        public var capacityBytes: Int
        public var evictions: UInt64
        public var expirations: UInt64
    }

    private let shards: [Shard]
    public let capacityBytes: Int

    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
        let shardCount = capacityBytes >= 64 << 20 ? 16 : 1
        self.shards = (0..<shardCount).map { _ in Shard(capacityBytes: capacityBytes / shardCount) }
    }

    private func shard(_ key: CacheKey) -> Shard {
        shards[Int(key.shardSeed % UInt64(shards.count))]
    }

    public func get(_ key: CacheKey, now: UInt64) -> SieveCache.Entry? {
        shard(key).cache.withLock { $0.get(key, now: now) }
    }

    @discardableResult
    public func set(_ key: CacheKey, value: [UInt8], namespace: String, expiresAt: UInt64, answerCost: Money = .zero, now: UInt64) -> Bool {
        shard(key).cache.withLock {
            $0.set(key, value: value, namespace: namespace, expiresAt: expiresAt, answerCost: answerCost, now: now)
        }
    }

    @discardableResult
    public func remove(_ key: CacheKey) -> Bool {
        shard(key).cache.withLock { $0.remove(key) }
    }

    /// Drops every entry of `namespace`, or everything when nil; returns how many.
    @discardableResult
    public func removeAll(namespace: String?) -> Int {
        shards.reduce(0) { total, shard in total + shard.cache.withLock { $0.removeAll(namespace: namespace) } }
    }

    @discardableResult
    public func removeExpired(now: UInt64) -> Int {
        shards.reduce(0) { total, shard in total + shard.cache.withLock { $0.removeExpired(now: now) } }
    }

    public var statistics: Statistics {
        var statistics = Statistics(entries: 0, usedBytes: 0, capacityBytes: capacityBytes, evictions: 0, expirations: 0)
        for shard in shards {
            shard.cache.withLock { cache in
                statistics.entries += cache.count
                statistics.usedBytes += cache.usedBytes
                statistics.evictions += cache.evictions
                statistics.expirations += cache.expirations
            }
        }
        return statistics
    }
}
