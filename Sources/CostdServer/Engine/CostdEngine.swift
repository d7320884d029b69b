import CostdCore
import CostdProtocol
import CostdRedis
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
    /// The caller's primary group, as the kernel reports it.
    public var gid: UInt32?

    public init(uid: UInt32, pid: Int32, userName: String?, unit: String?, gid: UInt32? = nil) {
        self.uid = uid
        self.pid = pid
        self.userName = userName
        self.unit = unit
        self.gid = gid
    }
}

/// The daemon's state and its methods: the cache, the spend store, the rules.
///
/// Each method validates its params, does its work against the pure core, and writes its
/// result. Methods that touch only memory answer on the calling event loop at once; the others
/// (a `record` waiting for the disk or Redis, an L2 lookup) answer through a future.
public final class CostdEngine: Sendable {
    public static let version = CostdVersion.current

    private let currentRules: Mutex<Rules>
    private let calendar: Mutex<PeriodCalendar>
    let cache: CacheTier
    public let store: any SpendStore
    /// The local ledger: the store itself when embedded, the backlog's keeper with Redis.
    let ledger: SpendLedger
    let logger: Logger
    let tokenizers: Tokenizers
    /// Prometheus metrics, when `--metrics-listen` is given.
    public let metrics: DaemonMetrics?
    /// The one clock (see ``CostdClock``); the daemon's is the system's.
    let clock: CostdClock
    let startedAtNanos: UInt64
    private let recordIdCounter = Atomic<UInt64>(0)
    /// Calls answered since start (for the status line).
    let callsServed = Atomic<UInt64>(0)
    /// When expired L1 entries were last swept (monotonic nanoseconds); every `cache.sweep_interval`.
    private let lastSweep = Atomic<UInt64>(0)
    private let recordIdPrefix: String
    /// The connections subscribed to alerts.
    let alerts: AlertHub
    /// `route`'s decisions until a `record` claims their routing saving.
    let issuedRoutes = Mutex(IssuedRoutes())
    let routeIdPrefix = "rt-" + UUID().uuidString.lowercased().prefix(8) + "-"
    /// The user the daemon runs as: an admin, like root.
    let daemonUID = geteuid()

    /// The embedded default, or Redis when `redis` is given (the ledger then keeps its backlog);
    /// spend goes to `spendRedis` when it is a Redis of its own (`redis.spend_url`).
    public init(
        rules: Rules, ledger: SpendLedger, redis: RedisClient?, spendRedis: RedisClient? = nil, tokenizers: Tokenizers,
        metrics: DaemonMetrics? = nil,
        clock: CostdClock = .system, logger: Logger
    ) throws {
        self.clock = clock
        self.ledger = ledger
        let alerts = AlertHub(ledger: ledger)
        self.alerts = alerts
        self.startedAtNanos = clock.monotonicNanos
        self.metrics = metrics
        self.tokenizers = tokenizers
        self.currentRules = Mutex(rules)
        self.calendar = Mutex(try PeriodCalendar(timeZoneIdentifier: rules.configuration.timeZone))
        let cacheSettings = rules.configuration.cache
        self.cache = CacheTier(
            l1: L1Cache(capacityBytes: cacheSettings.maxBytes), redis: redis, leaseTTLSeconds: cacheSettings.leaseTTLSeconds,
            clock: clock, logger: logger
        )
        // Spend goes to its own Redis when `redis.spend_url` gives one, else to the cache's.
        if let redis = spendRedis ?? redis {
            self.store = RedisSpendStore(redis: redis, ledger: ledger, clock: clock, logger: logger) { alerts.deliver() }
        } else {
            self.store = ledger
        }
        self.logger = logger
        // Daemon-made record ids: unique across restarts and hosts without coordination.
        self.recordIdPrefix = "costd-" + UUID().uuidString.lowercased().prefix(13) + "-"
    }

    public var rules: Rules { currentRules.withLock { $0 } }

    /// Swaps in new rules (a reload). The L1 size and the Redis connection are fixed at start.
    public func replaceRules(_ rules: Rules) throws {
        let newCalendar = try PeriodCalendar(timeZoneIdentifier: rules.configuration.timeZone)
        currentRules.withLock { $0 = rules }
        calendar.withLock { $0 = newCalendar }
        cache.setLeaseTTL(seconds: rules.configuration.cache.leaseTTLSeconds)
    }

    // MARK: - Clocks

    func today() -> String {
        dayKey(unixMillis: clock.nowMillis)
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
        let counters = cache.counters.take()
        metrics?.cacheCounted(counters.total)
        store.addCacheCounters(counters, day: today())
    }

    /// Brings the metrics' gauges up to date (before a scrape).
    public func refreshMetrics(connections: Int) {
        guard let metrics else { return }
        flushCacheCounters()
        let day = today()
        metrics.update(
            spent: [.day: store.knownSpend(.day, period: day), .month: store.knownSpend(.month, period: PeriodCalendar.monthKey(ofDay: day))],
            budgets: rules.budget,
            store: store.status,
            l1: cache.l1.statistics,
            ledger: ledger.durability,
            connections: connections
        )
    }

    /// Expired entries out of L1; Redis upkeep (backlog replay, fleet counters, known spend).
    public func maintain(on eventLoop: any EventLoop) {
        let rules = self.rules
        let now = clock.monotonicNanos
        let interval = UInt64(rules.configuration.cache.sweepIntervalSeconds) * 1_000_000_000
        if now &- lastSweep.load(ordering: .relaxed) >= interval {
            lastSweep.store(now, ordering: .relaxed)
            cache.sweep()
        }
        store.maintain(today: today(), budget: rules.budget, on: eventLoop)
        if let metrics, !rules.budget.scoped.isEmpty {
            store.budgetStandings(day: today(), budget: rules.budget, on: eventLoop).whenSuccess { metrics.scopedStandings($0) }
        } else {
            metrics?.scopedStandings([])
        }
    }

    /// Applies a notice from other daemons (Redis pub/sub).
    public func handleEvent(_ payload: [UInt8]) {
        cache.handleEvent(payload)
    }

    public func resynchronizeCache() {
        cache.resynchronize()
    }

    /// Tells the store that Redis came back, so the backlog goes in at once.
    public func redisBecameAvailable(on eventLoop: any EventLoop) {
        store.backendBecameAvailable(today: today(), budget: rules.budget, on: eventLoop)
    }

    /// A one-line summary for logs and service managers.
    public func statusLine() -> String {
        let rules = self.rules
        let day = today()
        let cacheCounts = cache.counters.peek().total
        var line = "\(callsServed.load(ordering: .relaxed)) calls served, today \(store.knownSpend(.day, period: day))"
        if let daily = rules.budget.daily { line += " of \(daily)" }
        let permille = Int((cacheCounts.hitRate * 1000).rounded())
        line += ", cache hit rate \(permille / 10).\(permille % 10)%, \(cache.l1.statistics.entries) cached"
        let status = store.status
        if status.kind == .redis { line += ", redis \(status.state), backlog \(status.backlog)" }
        return line
    }

    public func close() {
        store.close()
    }
}
