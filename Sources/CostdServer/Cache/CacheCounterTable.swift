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
/// that event loops rarely wait on each other, and keyed by (model, namespace) so that a count
/// is one hash lookup; the totals by model and by namespace are summed when the counts are
/// taken (``take()``) into the day's totals.
final class CacheCounterTable: Sendable {
    private struct Pair: Hashable {
        var model: String
        var namespace: String
    }

    private final class Shard: Sendable {
        let counts = Mutex<[Pair: CacheCounters]>([:])
    }

    private let shards: [Shard] = (0..<8).map { _ in Shard() }

    func count(_ outcome: CacheOutcome, model: String, namespace: String) {
        let shard = shards[Int(truncatingIfNeeded: UInt(pthread_self()) >> 12) & 7]
        shard.counts.withLock { counts in
            CacheCounterTable.add(outcome, to: &counts[Pair(model: model, namespace: namespace), default: CacheCounters()])
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
        collect(reset: true)
    }

    /// The counts since the last `take()`, without taking them.
    func peek() -> CacheCounterSet {
        collect(reset: false)
    }

    private func collect(reset: Bool) -> CacheCounterSet {
        var set = CacheCounterSet()
        for shard in shards {
            let counts = shard.counts.withLock { counts -> [Pair: CacheCounters] in
                let taken = counts
                if reset { counts = [:] }
                return taken
            }
            for (pair, counters) in counts {
                set.total += counters
                set.byModel[pair.model, default: CacheCounters()] += counters
                set.byNamespace[pair.namespace, default: CacheCounters()] += counters
            }
        }
        return set
    }
}
