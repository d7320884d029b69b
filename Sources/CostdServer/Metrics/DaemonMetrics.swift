import CoreMetrics
import CostdProtocol
import CostdCore
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics, through swift-metrics with a swift-prometheus factory of
/// its own (no global bootstrap): made only when `--metrics-listen` is given, so a daemon without
/// it pays nothing per request.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    private struct MethodMetrics: Sendable {
        let succeeded: CoreMetrics.Counter
        let failed: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    private let methods: [String: MethodMetrics]
    private let other: MethodMetrics
    private let cacheLookups: [String: CoreMetrics.Counter]
    private let spend: [BudgetScope: CoreMetrics.Gauge]
    private let budget: [BudgetScope: CoreMetrics.Gauge]
    /// Only with Redis configured: an embedded daemon has no Redis to be up or down.
    private let redisUp: CoreMetrics.Gauge?
    private let backlog: CoreMetrics.Gauge?
    /// 1 while spend goes to Redis, 0 while it is kept in the local ledger (Redis down, its
    /// eviction policy unsafe, or its canary being checked).
    private let spendInRedis: CoreMetrics.Gauge?
    /// Times this daemon put its spend back after Redis lost it.
    private let spendRestores: CoreMetrics.Counter?
    private let spendRestoresCounted = Atomic<Int>(0)
    /// Spend, calls and tokens by model, monotonic (rendered by hand: exact decimals).
    let spendCounters = SpendCounters()
    /// Spent over budget per period, of the budgets that are set (none, no series: never NaN).
    private let budgetRatios = Mutex<[(period: String, ratio: Double)]>([])
    private let scopedBudgetRatios = Mutex<[(scope: String, period: String, ratio: Double)]>([])
    private let l1Entries: CoreMetrics.Gauge
    private let l1Bytes: CoreMetrics.Gauge
    private let connections: CoreMetrics.Gauge
    private let unsyncedEntries: CoreMetrics.Gauge
    private let syncWindowP50: CoreMetrics.Gauge
    private let syncWindowP99: CoreMetrics.Gauge
    private let syncWindowMax: CoreMetrics.Gauge

    /// Every method's label, and `invalid` for calls that named none; the HTTP endpoint's calls
    /// as `http.` and their endpoint (`http.chat.completions`), `http.passthrough` for other
    /// paths; anything else is `other`.
    static let knownMethods = RPCMethod.allCases.map(\.rawValue) + ["invalid"]
        + ProviderEndpoint.Kind.allCases.map { ProviderEndpoint($0).metricsLabel } + ["http.passthrough"]

    /// `withRedis`: whether to export the Redis state and backlog.
    public init(withRedis: Bool) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests take microseconds when answered from memory and milliseconds when they wait
        // on the disk or Redis: buckets from 10 µs to 1 s.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        self.factory = factory
        func methodMetrics(_ method: String) -> MethodMetrics {
            MethodMetrics(
                succeeded: CoreMetrics.Counter(label: "costd_requests_total", dimensions: [("method", method), ("outcome", "ok")], factory: factory),
                failed: CoreMetrics.Counter(label: "costd_requests_total", dimensions: [("method", method), ("outcome", "error")], factory: factory),
                duration: CoreMetrics.Timer(label: "costd_request_duration_seconds", dimensions: [("method", method)], factory: factory)
            )
        }
        var methods: [String: MethodMetrics] = [:]
        for method in Self.knownMethods { methods[method] = methodMetrics(method) }
        self.methods = methods
        other = methodMetrics("other")
        var lookups: [String: CoreMetrics.Counter] = [:]
        for layer in ["l1", "l2", "fill", "miss"] {
            lookups[layer] = CoreMetrics.Counter(label: "costd_cache_lookups_total", dimensions: [("result", layer)], factory: factory)
        }
        lookups["set"] = CoreMetrics.Counter(label: "costd_cache_sets_total", dimensions: [], factory: factory)
        cacheLookups = lookups
        spend = [
            .day: CoreMetrics.Gauge(label: "costd_spend_usd", dimensions: [("period", "day")], factory: factory),
            .month: CoreMetrics.Gauge(label: "costd_spend_usd", dimensions: [("period", "month")], factory: factory),
        ]
        budget = [
            .day: CoreMetrics.Gauge(label: "costd_budget_usd", dimensions: [("period", "day")], factory: factory),
            .month: CoreMetrics.Gauge(label: "costd_budget_usd", dimensions: [("period", "month")], factory: factory),
        ]
        redisUp = withRedis ? CoreMetrics.Gauge(label: "costd_redis_up", dimensions: [], factory: factory) : nil
        backlog = withRedis ? CoreMetrics.Gauge(label: "costd_backlog_records", dimensions: [], factory: factory) : nil
        spendInRedis = withRedis ? CoreMetrics.Gauge(label: "costd_redis_spend_kept", dimensions: [], factory: factory) : nil
        spendRestores = withRedis ? CoreMetrics.Counter(label: "costd_redis_spend_restores_total", dimensions: [], factory: factory) : nil
        l1Entries = CoreMetrics.Gauge(label: "costd_l1_entries", dimensions: [], factory: factory)
        l1Bytes = CoreMetrics.Gauge(label: "costd_l1_bytes", dimensions: [], factory: factory)
        connections = CoreMetrics.Gauge(label: "costd_connections", dimensions: [], factory: factory)
        unsyncedEntries = CoreMetrics.Gauge(label: "costd_ledger_unsynced_entries", dimensions: [], factory: factory)
        // What a power loss could lose in `batched` mode: quantiles over the last syncs, as gauges
        // (the windows are measured on the sync thread, not per request).
        func syncWindow(_ quantile: String) -> CoreMetrics.Gauge {
            CoreMetrics.Gauge(label: "costd_ledger_sync_window_seconds", dimensions: [("quantile", quantile)], factory: factory)
        }
        (syncWindowP50, syncWindowP99, syncWindowMax) = (syncWindow("0.5"), syncWindow("0.99"), syncWindow("1"))
    }

    func request(_ method: String, succeeded: Bool, nanoseconds: Int64) {
        let metrics = methods[method] ?? other
        (succeeded ? metrics.succeeded : metrics.failed).increment(by: 1)
        metrics.duration.recordNanoseconds(nanoseconds)
    }

    func cacheCounted(_ counters: CacheCounters) {
        for (layer, amount) in [("l1", counters.l1Hits), ("l2", counters.l2Hits), ("fill", counters.fillHits), ("miss", counters.misses), ("set", counters.sets)]
        where amount > 0 {
            cacheLookups[layer]?.increment(by: amount)
        }
    }

    func update(
        spent: [BudgetScope: Money], budgets: BudgetSettings, store: StoreStatus, l1: L1Cache.Statistics, ledger: LedgerDurability,
        connections count: Int
    ) {
        var ratios: [(period: String, ratio: Double)] = []
        for scope in BudgetScope.allCases {
            spend[scope]?.record((spent[scope] ?? .zero).dollars)
            // No budget is not a budget of zero: NaN, which no alert rule compares true against.
            budget[scope]?.record(budgets.budget(for: scope)?.dollars ?? .nan)
            if let limit = budgets.budget(for: scope), limit > .zero {
                ratios.append((scope == .day ? "day" : "month", Double((spent[scope] ?? .zero).nanos) / Double(limit.nanos)))
            }
        }
        budgetRatios.withLock { $0 = ratios }
        redisUp?.record(store.state == "up" ? 1 : 0)
        backlog?.record(store.backlog)
        spendInRedis?.record(store.spendIn == "redis" ? 1 : 0)
        let restored = store.spendRestores - spendRestoresCounted.exchange(store.spendRestores, ordering: .relaxed)
        if restored > 0 { spendRestores?.increment(by: restored) }
        l1Entries.record(l1.entries)
        l1Bytes.record(l1.usedBytes)
        connections.record(count)
        unsyncedEntries.record(ledger.unsyncedEntries)
        syncWindowP50.record(Double(ledger.syncWindows.p50Nanos) / 1e9)
        syncWindowP99.record(Double(ledger.syncWindows.p99Nanos) / 1e9)
        syncWindowMax.record(Double(ledger.syncWindows.maxNanos) / 1e9)
    }

    /// The `[[budgets]]` entries' standings (refreshed by the upkeep): their usage ratios.
    func scopedStandings(_ standings: [BudgetStanding]) {
        let ratios = standings.filter { !$0.scope.isHost && $0.limit > .zero }.map { standing in
            (scope: DaemonMetrics.label(standing.scope), period: standing.period.rawValue, ratio: Double(standing.spent.nanos) / Double(standing.limit.nanos))
        }
        scopedBudgetRatios.withLock { $0 = ratios }
    }

    /// A scope as a label value: `user=ann,feature=etl` (`host` for the host's budget).
    static func label(_ scope: SpendScope) -> String {
        guard !scope.isHost else { return "host" }
        let text = scope.values.map { "\($0.dimension.rawValue)=\($0.value)" }.joined(separator: ",")
        return text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Counts an acknowledged record (not a duplicate, not a cache hit) in the monotonic counters.
    func recorded(_ record: SpendRecord) {
        spendCounters.count(record)
    }

    /// The exposition text: swift-prometheus's metrics, then the ones written here (exact
    /// decimals, and series that exist only when they mean something).
    public func render() -> [UInt8] {
        var text = ""
        spendCounters.render(into: &text)
        let ratios = budgetRatios.withLock { $0 }
        let scopedRatios = scopedBudgetRatios.withLock { $0 }
        if !ratios.isEmpty || !scopedRatios.isEmpty {
            text += "# HELP costd_budget_usage_ratio Spent over budget in the current period, by budget (scope: host, or a [[budgets]] entry's); no series for a budget that is not set.\n"
            text += "# TYPE costd_budget_usage_ratio gauge\n"
            for (period, ratio) in ratios { text += "costd_budget_usage_ratio{scope=\"host\",period=\"\(period)\"} \(ratio)\n" }
            for (scope, period, ratio) in scopedRatios {
                text += "costd_budget_usage_ratio{scope=\"\(scope)\",period=\"\(period)\"} \(ratio)\n"
            }
        }
        text += "# HELP costd_build_info The running costd's version.\n# TYPE costd_build_info gauge\n"
        text += "costd_build_info{version=\"\(CostdVersion.current)\"} 1\n"
        return registry.emitToBuffer() + Array(text.utf8)
    }
}
