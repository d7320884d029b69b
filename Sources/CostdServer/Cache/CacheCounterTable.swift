import CostdCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a cache lookup came to.
enum CacheOutcome {
    case l1Hit, l2Hit, fillHit, miss, set
}

/// Cache lookups counted as they happen, by layer, model and namespace. Sharded by thread so
/// that event loops rarely wait on each other; ``take()`` moves the counts out for the day's
/// totals.
final class CacheCounterTable: Sendable {
    private final class Shard: Sendable {
        let counts = Mutex(CacheCounterSet())
    }

    private let shards: [Shard] = (0..<8).map { _ in Shard() }

    func count(_ outcome: CacheOutcome, model: String, namespace: String) {
        let shard = shards[Int(UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) >> 4 % 8) % 8]
        shard.counts.withLock { set in
            CacheCounterTable.add(outcome, to: &set.total)
            CacheCounterTable.add(outcome, to: &set.byModel[model, default: CacheCounters()])
            CacheCounterTable.add(outcome, to: &set.byNamespace[namespace, default: CacheCounters()])
        }
    }

    private static func add(_ outcome: CacheOutcome, to counters: inout CacheCounters) {
        switch outcome {
        case .l1Hit: counters.l1Hits += 1
        case .l2Hit: counters.l2Hits += 1
        case .fillHit: counters.fillHits += 1
        case .miss: counters.misses += 1
        case .set: counters.sets += 1
        }
    }

    /// The counts since the last call, leaving zero behind.
    func take() -> CacheCounterSet {
        var total = CacheCounterSet()
        for shard in shards {
            let counts = shard.counts.withLock { set -> CacheCounterSet in
                defer { set = CacheCounterSet() }
                return set
            }
            total.add(counts)
        }
        return total
    }

    /// The counts since the last `take()`, without taking them.
    func peek() -> CacheCounterSet {
        var total = CacheCounterSet()
        for shard in shards { total.add(shard.counts.withLock { $0 }) }
        return total
    }
}
