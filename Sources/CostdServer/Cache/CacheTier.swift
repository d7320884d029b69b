import CostdCore
import CostdRedis
import Foundation
import Logging
import NIOCore
import Synchronization

/// Where a cached value was found.
enum CacheLayer: String {
    case l1
    case l2
    /// Another caller's lease was filled while this one waited (single-flight).
    case fill
}

/// A cached answer and what it cost when it was made (zero when `cacheSet` was not told): what
/// a hit on it saves.
struct CachedAnswerBytes {
    var value: [UInt8]
    var answerCost: Money
}

enum CacheLookup {
    case hit(CachedAnswerBytes, layer: CacheLayer)
    /// A miss; `lease` is set when this caller now holds the single-flight lease.
    case miss(lease: String?)
}

struct CacheStoreOutcome {
    var storedInL1: Bool
    /// Whether Redis took it (nil without Redis).
    var storedInL2: Bool?
    /// Whether the lease given was still held (nil when none was given).
    var leaseHeld: Bool?
}

/// The cache: the in-process L1 in front of Redis (when configured), single-flight leases,
/// and the notices that keep every daemon's L1 in step (deletes, flushes, fills).
///
/// L1 hits are answered by the caller synchronously (``l1Value(_:model:namespace:)``); the
/// rest returns futures. Redis calls are bounded by the cache timeout: when Redis is slow or
/// down, a lookup is a miss and a store goes to L1 only, never a hang.
final class CacheTier: Sendable {
    let l1: L1Cache
    let counters = CacheCounterTable()
    let waiters = FillWaiters()
    private let localLeases = Mutex(LeaseTable())
    private let redis: RedisClient?
    private let keys: RedisKeys?
    private let cacheTimeoutMillis: Int64
    /// `cache.lease_ttl`, from the current rules (a reload changes it).
    private let currentLeaseTTLMillis: Atomic<Int64>
    private let clock: CostdClock
    private let logger: Logger
    private let origin = UUID().uuidString.prefix(8).lowercased()

    init(l1: L1Cache, redis: RedisClient?, leaseTTLSeconds: Int64, clock: CostdClock, logger: Logger) {
        self.l1 = l1
        self.redis = redis
        self.keys = redis.map { RedisKeys(prefix: $0.settings.keyPrefix) }
        self.cacheTimeoutMillis = redis?.settings.cacheTimeoutMillis ?? 50
        self.currentLeaseTTLMillis = Atomic(leaseTTLSeconds * 1000)
        self.clock = clock
        self.logger = logger
    }

    private var leaseTTLMillis: Int64 { currentLeaseTTLMillis.load(ordering: .relaxed) }

    /// A reload's `cache.lease_ttl`.
    func setLeaseTTL(seconds: Int64) {
        currentLeaseTTLMillis.store(seconds * 1000, ordering: .relaxed)
    }

    var hasRedis: Bool { redis != nil }
    private var redisUp: Bool { redis?.isAvailable ?? false }

    /// Monotonic nanoseconds of the one clock: entry expiry, leases, waits.
    private var now: UInt64 { clock.monotonicNanos }
    private var nowDeadline: NIODeadline { .uptimeNanoseconds(clock.monotonicNanos) }

    /// The L1 entry, counted as an L1 hit when found.
    func l1Value(_ key: CacheKey, model: String, namespace: String) -> SieveCache.Entry? {
        guard let entry = l1.get(key, now: self.now) else { return nil }
        counters.count(.l1Hit, model: model, namespace: namespace)
        return entry
    }

    /// Whether a lookup that missed L1 has anything more to try (Redis, or a lease).
    func needsSlowPath(lease: Bool) -> Bool {
        lease || redisUp
    }

    func countMiss(model: String, namespace: String) {
        counters.count(.miss, model: model, namespace: namespace)
    }

    // MARK: - Lookups past L1

    func lookup(
        _ key: CacheKey, model: String, namespace: String, lease: Bool, waitMillis: Int64, on eventLoop: any EventLoop
    ) -> EventLoopFuture<CacheLookup> {
        let deadline = self.nowDeadline + .milliseconds(waitMillis)
        let result: EventLoopFuture<CacheLookup>
        if lease {
            result = acquire(key, namespace: namespace, deadline: deadline, attempts: 3, on: eventLoop)
        } else {
            result = l2Get(key, namespace: namespace, on: eventLoop).map { answer in
                answer.map { .hit($0, layer: .l2) } ?? .miss(lease: nil)
            }
        }
        return result.map { lookup in
            switch lookup {
            case .hit(_, let layer): self.counters.count(layer == .fill ? .fillHit : layer == .l2 ? .l2Hit : .l1Hit, model: model, namespace: namespace)
            case .miss: self.counters.count(.miss, model: model, namespace: namespace)
            }
            return lookup
        }
    }

    /// GET, PTTL and the answer's cost from Redis; a hit fills L1 until the Redis entry's own expiry.
    private func l2Get(_ key: CacheKey, namespace: String, on eventLoop: any EventLoop) -> EventLoopFuture<CachedAnswerBytes?> {
        guard let redis, let keys, redis.isAvailable else { return eventLoop.makeSucceededFuture(nil) }
        let valueKey = keys.cacheValue(key, namespace: namespace)
        let commands: [RedisCommand] = [.make("GET", valueKey), .make("PTTL", valueKey), .make("GET", keys.cacheAnswerCost(key, namespace: namespace))]
        return redis.execute(commands, timeoutMillis: cacheTimeoutMillis, on: eventLoop)
            .map { replies -> CachedAnswerBytes? in
                guard let value = replies[0].bytes else { return nil }
                let answer = CachedAnswerBytes(value: value, answerCost: Money(nanos: replies[2].text.flatMap { Int64($0) } ?? 0))
                self.fillL1(key, answer: answer, namespace: namespace, pttl: replies[1].integer ?? -1)
                return answer
            }.recover { _ in nil }
    }

    private func fillL1(_ key: CacheKey, answer: CachedAnswerBytes, namespace: String, pttl: Int64) {
        // PTTL is -1 for a key without expiry, -2 when it vanished in between: keep it out of L1 then.
        guard pttl > 0 || pttl == -1 else { return }
        let now = self.now
        let ttl = pttl > 0 ? UInt64(pttl) : UInt64(leaseTTLMillis)
        l1.set(key, value: answer.value, namespace: namespace, expiresAt: now + ttl * 1_000_000, answerCost: answer.answerCost, now: now)
    }

    /// Looks up with single-flight: a hit, a granted lease, or a wait for the leaseholder.
    private func acquire(
        _ key: CacheKey, namespace: String, deadline: NIODeadline, attempts: Int, on eventLoop: any EventLoop
    ) -> EventLoopFuture<CacheLookup> {
        let token = CacheTier.makeToken()
        let attempt: EventLoopFuture<AcquireOutcome>
        if let redis, let keys, redis.isAvailable {
            let call = AcquireLeaseScript(key: key, namespace: namespace, token: token, leaseTTLMillis: leaseTTLMillis, keys: keys)
            attempt = redis.run(call, timeoutMillis: cacheTimeoutMillis, on: eventLoop).map { reply -> AcquireOutcome in
                switch reply {
                case .hit(let value, let pttl, let answerCost):
                    let answer = CachedAnswerBytes(value: value, answerCost: answerCost)
                    self.fillL1(key, answer: answer, namespace: namespace, pttl: pttl)
                    return .hit(answer)
                case .granted: return .granted
                case .held: return .held
                }
            }.recover { _ in .unavailable }
        } else {
            attempt = eventLoop.makeSucceededFuture(.unavailable)
        }
        return attempt.flatMap { outcome -> EventLoopFuture<CacheLookup> in
            switch outcome {
            case .hit(let answer): return eventLoop.makeSucceededFuture(.hit(answer, layer: .l2))
            case .granted: return eventLoop.makeSucceededFuture(.miss(lease: token))
            case .held: return self.waitForFill(key, namespace: namespace, deadline: deadline, attempts: attempts, on: eventLoop)
            case .unavailable:
                // Without Redis (or with Redis down) single-flight still works within this daemon.
                let now = self.now
                if let entry = self.l1.get(key, now: now) {
                    return eventLoop.makeSucceededFuture(.hit(CachedAnswerBytes(entry), layer: .l1))
                }
                let local = self.localLeases.withLock {
                    $0.acquire(key, token: token, now: now, ttl: UInt64(self.leaseTTLMillis) * 1_000_000)
                }
                switch local {
                case .granted: return eventLoop.makeSucceededFuture(.miss(lease: token))
                case .heldByAnother: return self.waitForFill(key, namespace: namespace, deadline: deadline, attempts: attempts, on: eventLoop)
                }
            }
        }
    }

    private enum AcquireOutcome {
        case hit(CachedAnswerBytes)
        case granted
        case held
        case unavailable
    }

    private func waitForFill(
        _ key: CacheKey, namespace: String, deadline: NIODeadline, attempts: Int, on eventLoop: any EventLoop
    ) -> EventLoopFuture<CacheLookup> {
        let remaining = deadline - self.nowDeadline
        guard attempts > 0, remaining > .zero else { return eventLoop.makeSucceededFuture(.miss(lease: nil)) }
        return waiters.wait(for: key, timeoutMillis: max(1, remaining.nanoseconds / 1_000_000), on: eventLoop).flatMap { signal in
            switch signal {
            case .filled:
                if let entry = self.l1.get(key, now: self.now) {
                    return eventLoop.makeSucceededFuture(.hit(CachedAnswerBytes(entry), layer: .fill))
                }
                return self.l2Get(key, namespace: namespace, on: eventLoop).flatMap { answer in
                    if let answer { return eventLoop.makeSucceededFuture(.hit(answer, layer: .fill)) }
                    return self.acquire(key, namespace: namespace, deadline: deadline, attempts: attempts - 1, on: eventLoop)
                }
            case .released:
                return self.acquire(key, namespace: namespace, deadline: deadline, attempts: attempts - 1, on: eventLoop)
            case .timedOut:
                // One last look: the value may be there, or the lease free (its holder crashed).
                return self.acquire(key, namespace: namespace, deadline: self.nowDeadline, attempts: 0, on: eventLoop)
            }
        }
    }

    static func makeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next(), radix: 36) + String(generator.next(), radix: 36)
    }

    // MARK: - Stores, deletes, flushes

    /// Stores in L1 (and ends a local lease): all there is to do without Redis.
    func storeLocally(
        _ key: CacheKey, model: String, namespace: String, answer: CachedAnswerBytes, ttlMillis: Int64, lease: String?
    ) -> CacheStoreOutcome {
        let now = self.now
        let storedInL1 = l1.set(
            key, value: answer.value, namespace: namespace, expiresAt: now + UInt64(ttlMillis) * 1_000_000, answerCost: answer.answerCost,
            now: now)
        counters.count(.set, model: model, namespace: namespace)
        var leaseHeld: Bool? = nil
        if let lease {
            leaseHeld = localLeases.withLock { $0.release(key, token: lease, now: now) }
            waiters.signal(key, .filled)
        }
        return CacheStoreOutcome(storedInL1: storedInL1, storedInL2: redis == nil ? nil : false, leaseHeld: leaseHeld)
    }

    /// Stores in L1 and in Redis (which tells every daemon waiting on the lease).
    func store(
        _ key: CacheKey, model: String, namespace: String, answer: CachedAnswerBytes, ttlMillis: Int64, lease: String?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<CacheStoreOutcome> {
        let local = storeLocally(key, model: model, namespace: namespace, answer: answer, ttlMillis: ttlMillis, lease: lease)
        let storedInL1 = local.storedInL1
        let localLeaseHeld = local.leaseHeld
        guard let redis, let keys, redis.isAvailable else { return eventLoop.makeSucceededFuture(local) }
        if let lease {
            let call = FillLeaseScript(
                key: key, namespace: namespace, value: answer.value, answerCost: answer.answerCost, ttlMillis: ttlMillis, token: lease,
                notice: event("fill", key: key).redisBytes, keys: keys)
            return redis.run(call, timeoutMillis: cacheTimeoutMillis, on: eventLoop).map { held in
                CacheStoreOutcome(storedInL1: storedInL1, storedInL2: true, leaseHeld: held || localLeaseHeld == true)
            }.recover { _ in CacheStoreOutcome(storedInL1: storedInL1, storedInL2: false, leaseHeld: localLeaseHeld) }
        }
        let valueKey = keys.cacheValue(key, namespace: namespace)
        let costKey = keys.cacheAnswerCost(key, namespace: namespace)
        // A value stored without a cost replaces one stored with it: the cost goes too.
        let cost: RedisCommand = answer.answerCost == .zero ? .make("DEL", costKey) : .make("SET", costKey, answer.answerCost.nanos, "PX", ttlMillis)
        return redis.execute([.make("SET", valueKey, answer.value, "PX", ttlMillis), cost], timeoutMillis: cacheTimeoutMillis, on: eventLoop)
            .map { replies in CacheStoreOutcome(storedInL1: storedInL1, storedInL2: replies[0].errorMessage == nil, leaseHeld: nil) }
            .recover { _ in CacheStoreOutcome(storedInL1: storedInL1, storedInL2: false, leaseHeld: nil) }
    }

    /// Gives a lease up so that a waiting caller can take it.
    func release(_ key: CacheKey, lease: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let local = localLeases.withLock { $0.release(key, token: lease, now: self.now) }
        waiters.signal(key, .released)
        guard let redis, let keys, redis.isAvailable else { return eventLoop.makeSucceededFuture(local) }
        let call = ReleaseLeaseScript(key: key, token: lease, notice: event("rel", key: key).redisBytes, keys: keys)
        return redis.run(call, timeoutMillis: cacheTimeoutMillis, on: eventLoop).map { $0 || local }.recover { _ in local }
    }

    func delete(_ key: CacheKey, namespace: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let local = l1.remove(key)
        guard let redis, let keys else { return eventLoop.makeSucceededFuture(local) }
        guard redis.isAvailable else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        return redis.execute(
            [
                .make("UNLINK", keys.cacheValue(key, namespace: namespace), keys.cacheAnswerCost(key, namespace: namespace)),
                .make("PUBLISH", keys.events, event("del", key: key)),
            ],
            timeoutMillis: max(cacheTimeoutMillis, 1_000),
            on: eventLoop
        ).map { replies in local || (replies[0].integer ?? 0) > 0 }
    }

    /// Drops every entry of `namespace` (nil: all) here, in Redis, and in every daemon's L1.
    func flush(namespace: String?, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let local = l1.removeAll(namespace: namespace)
        guard let redis, let keys else { return eventLoop.makeSucceededFuture(local) }
        guard redis.isAvailable else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        let pattern = keys.cachePattern(namespace: namespace)
        return scanAndUnlink(pattern: pattern, cursor: "0", removed: 0, redis: redis, on: eventLoop).flatMap { removed in
            var message = JSONWriter()
            message.beginObject()
            message.field("t", "flush")
            if let namespace { message.field("ns", namespace) }
            message.field("o", String(self.origin))
            message.endObject()
            return redis.execute([.make("PUBLISH", keys.events, message.bytes)], timeoutMillis: 1_000, on: eventLoop)
                .map { _ in max(removed, local) }
        }
    }

    private func scanAndUnlink(
        pattern: String, cursor: String, removed: Int, redis: RedisClient, on eventLoop: any EventLoop
    ) -> EventLoopFuture<Int> {
        redis.execute([.make("SCAN", cursor, "MATCH", pattern, "COUNT", 1_000)], timeoutMillis: 5_000, on: eventLoop).flatMap { replies in
            guard let parts = replies[0].array, parts.count == 2, let next = parts[0].text, let found = parts[1].array else {
                return eventLoop.makeFailedFuture(RedisError.connection("unexpected SCAN reply"))
            }
            let names = found.compactMap(\.bytes)
            let unlinked: EventLoopFuture<Int> =
                names.isEmpty
                ? eventLoop.makeSucceededFuture(0)
                : redis.execute([.make([Array("UNLINK".utf8)] + names)], timeoutMillis: 5_000, on: eventLoop).map { Int($0[0].integer ?? 0) }
            return unlinked.flatMap { count in
                next == "0"
                    ? eventLoop.makeSucceededFuture(removed + count)
                    : self.scanAndUnlink(pattern: pattern, cursor: next, removed: removed + count, redis: redis, on: eventLoop)
            }
        }
    }

    private func event(_ type: String, key: CacheKey) -> String {
        "{\"t\":\"\(type)\",\"k\":\"\(key.hex)\",\"o\":\"\(origin)\"}"
    }

    // MARK: - Notices from other daemons

    /// Applies a notice from the events channel (runs on the subscriber's thread).
    func handleEvent(_ payload: [UInt8]) {
        guard let message = try? JSONParser.parse(payload) else { return }
        let key = message["k"]?.stringValue.flatMap(CacheKey.init(hex:))
        switch message["t"]?.stringValue {
        case "del": if let key { l1.remove(key) }
        case "flush": l1.removeAll(namespace: message["ns"]?.stringValue)
        case "fill": if let key { waiters.signal(key, .filled) }
        case "rel": if let key { waiters.signal(key, .released) }
        default: break
        }
    }

    /// After the subscription was down, notices may have been missed: L1 starts over.
    func resynchronize() {
        let dropped = l1.removeAll(namespace: nil)
        logger.notice("Redis subscription restored; L1 cleared to resynchronise", metadata: ["entries": "\(dropped)"])
    }

    func sweep() {
        let now = self.now
        l1.removeExpired(now: now)
        localLeases.withLock { $0.removeExpired(now: now) }
    }
}

extension CachedAnswerBytes {
    init(_ entry: SieveCache.Entry) {
        self.init(value: entry.value, answerCost: entry.answerCost)
    }
}
