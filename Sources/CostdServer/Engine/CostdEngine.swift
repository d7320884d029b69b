import CostdCore
import CostdProtocol
import Foundation
import Logging
import NIOCore
import Synchronization

/// Who is on the other end of a connection, as the kernel tells it (SO_PEERCRED).
public struct CallerIdentity: Sendable, Equatable {
    public var uid: UInt32
    public var pid: Int32
    public var userName: String?
    /// The caller's systemd unit (`backup.service`), when it runs in one.
    public var unit: String?

    public init(uid: UInt32, pid: Int32, userName: String?, unit: String?) {
        self.uid = uid
        self.pid = pid
        self.userName = userName
        self.unit = unit
    }
}

/// The daemon's state and its methods: the cache, the ledger, the rules, the counters.
///
/// Each method validates its params, does its work against the pure core, and writes its
/// result. Methods that touch only memory answer on the calling event loop at once; `record`
/// answers when its ledger entry is durable.
public final class CostdEngine: Sendable {
    public static let version = "0.1.0"

    private let currentRules: Mutex<Rules>
    private let calendar: Mutex<PeriodCalendar>
    let l1: L1Cache
    let ledger: SpendLedger
    let counters = CacheCounterCells()
    let logger: Logger
    let startedAt = NIODeadline.now()
    private let recordIdCounter = Atomic<UInt64>(0)
    private let recordIdPrefix: String

    public init(rules: Rules, ledger: SpendLedger, logger: Logger) throws {
        self.currentRules = Mutex(rules)
        self.calendar = Mutex(try PeriodCalendar(timeZoneIdentifier: rules.configuration.timeZone))
        self.l1 = L1Cache(capacityBytes: rules.configuration.cache.maxBytes)
        self.ledger = ledger
        self.logger = logger
        // Daemon-made record ids: unique across restarts and hosts without coordination.
        self.recordIdPrefix = "costd-" + UUID().uuidString.lowercased().prefix(13) + "-"
    }

    public var rules: Rules { currentRules.withLock { $0 } }

    /// Swaps in new rules (a reload). The L1 size is fixed at start.
    public func replaceRules(_ rules: Rules) throws {
        let newCalendar = try PeriodCalendar(timeZoneIdentifier: rules.configuration.timeZone)
        currentRules.withLock { $0 = rules }
        calendar.withLock { $0 = newCalendar }
    }

    // MARK: - Clocks

    static func nowMillis() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    static func monotonicNanos() -> UInt64 {
        NIODeadline.now().uptimeNanoseconds
    }

    func today() -> String {
        dayKey(unixMillis: CostdEngine.nowMillis())
    }

    func dayKey(unixMillis: Int64) -> String {
        calendar.withLock { $0.dayKey(unixMillis: unixMillis) }
    }

    func makeRecordId() -> String {
        let next = recordIdCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return recordIdPrefix + String(next)
    }

    // MARK: - Periodic work

    /// Moves the cache counters gathered since the last call into today's totals.
    public func flushCacheCounters() {
        ledger.addCacheCounters(counters.take(), day: today())
    }

    public func sweepExpiredCacheEntries() {
        l1.removeExpired(now: CostdEngine.monotonicNanos())
    }

    /// A one-line summary for logs and service managers.
    public func statusLine() -> String {
        let rules = self.rules
        let day = today()
        let totals = ledger.withBook { $0.totals(day: day) }
        let cache = totals.cache + counters.peek()
        let hitRate = String(format: "%.1f%%", cache.hitRate * 100)
        var line = "today \(totals.spent)"
        if let daily = rules.budget.daily { line += " of \(daily)" }
        line += ", \(totals.requests) calls, cache hit rate \(hitRate), \(l1.statistics.entries) cached"
        return line
    }
}

/// Cache lookups counted as they happen, lock-free; moved into the ledger's day totals by
/// ``CostdEngine/flushCacheCounters()``.
final class CacheCounterCells: Sendable {
    let l1Hits = Atomic<Int64>(0)
    let l2Hits = Atomic<Int64>(0)
    let fillHits = Atomic<Int64>(0)
    let misses = Atomic<Int64>(0)
    let sets = Atomic<Int64>(0)

    func take() -> CacheCounters {
        CacheCounters(
            l1Hits: l1Hits.exchange(0, ordering: .relaxed),
            l2Hits: l2Hits.exchange(0, ordering: .relaxed),
            fillHits: fillHits.exchange(0, ordering: .relaxed),
            misses: misses.exchange(0, ordering: .relaxed),
            sets: sets.exchange(0, ordering: .relaxed)
        )
    }

    func peek() -> CacheCounters {
        CacheCounters(
            l1Hits: l1Hits.load(ordering: .relaxed),
            l2Hits: l2Hits.load(ordering: .relaxed),
            fillHits: fillHits.load(ordering: .relaxed),
            misses: misses.load(ordering: .relaxed),
            sets: sets.load(ordering: .relaxed)
        )
    }
}
