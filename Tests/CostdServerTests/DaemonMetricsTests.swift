import CostdCore
import Testing

@testable import CostdServer

/// The metrics a scrape sees: monotonic counters by model, series that exist only when they mean
/// something, and where they are served.
@Suite("Daemon metrics")
struct DaemonMetricsTests {
    @Test func spendCountersAreMonotonicAcrossADayBoundaryWhileTheDayGaugeStartsAgain() throws {
        let time = ManualClock(wallMillis: 1_796_083_100_000)  // 2026-11-30 23:58:20 UTC
        let metrics = DaemonMetrics(withRedis: false)
        let connection = try RPCConnectionHandlerTests.Connection(clock: time.clock, metrics: metrics)
        try connection.send(RPCConnectionHandlerTests.call(1, "record", #"{"model":"gpt-4o","costUsd":0.1,"inputTokens":10,"outputTokens":5}"#))
        time.advance(millis: 200_000)  // 2026-12-01 00:01:40
        try connection.send(RPCConnectionHandlerTests.call(2, "record", #"{"model":"gpt-4o","costUsd":0.2,"inputTokens":10,"outputTokens":5,"cachedInputTokens":4}"#))
        try connection.send(RPCConnectionHandlerTests.call(3, "record", #"{"model":"gpt-4o","cached":true,"inputTokens":10,"outputTokens":5}"#))
        connection.loop.run()
        #expect(try connection.writes().flatMap { $0 }.count == 3)
        connection.engine.refreshMetrics(connections: 1)
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(text.contains(#"costd_spend_usd_total{model="gpt-4o"} 0.3"#), "both days, exact; the cache hit is no spend")
        #expect(text.contains(#"costd_calls_total{model="gpt-4o"} 2"#))
        #expect(text.contains(#"costd_tokens_total{model="gpt-4o",class="input"} 20"#))
        #expect(text.contains(#"costd_tokens_total{model="gpt-4o",class="cached_input"} 4"#))
        #expect(text.contains(#"costd_spend_usd{period="day"} 0.2"#), "the period gauge started again at midnight")
        #expect(!text.contains("costd_budget_usage_ratio"), "no budget set: no series, never NaN")
        #expect(text.contains("costd_build_info{version=\"\(CostdVersion.current)\"} 1"))
    }

    @Test func modelLabelsAreBoundedAndEscaped() {
        let counters = SpendCounters()
        for index in 0..<(SpendCounters.maxModels + 5) {
            counters.count(SpendRecord(recordId: "\(index)", unixMillis: 0, day: "2026-11-30", model: "m\(index)", cost: Money(nanos: 1)))
        }
        counters.count(SpendRecord(recordId: "q", unixMillis: 0, day: "2026-11-30", model: "m0", cost: Money(nanos: 1)))
        let snapshot = counters.snapshot
        #expect(snapshot.count == SpendCounters.maxModels + 1)
        #expect(snapshot[SpendCounters.otherModel]?.calls == 5)
        #expect(snapshot["m0"]?.calls == 2, "a model already counted keeps its label")
        #expect(SpendCounters.escaped("a\"b\\c\nd") == #"a\"b\\c\nd"#)
    }

    @Test func theListenAddressIsTCPOrAUnixSocket() throws {
        #expect(try MetricsListenAddress(parsing: "127.0.0.1:9464") == .tcp(host: "127.0.0.1", port: 9464))
        #expect(try MetricsListenAddress(parsing: "[::1]:9464") == .tcp(host: "::1", port: 9464))
        #expect(try MetricsListenAddress(parsing: "unix:/run/costd/metrics.sock") == .unix(path: "/run/costd/metrics.sock"))
        #expect(try Configuration(toml: "metrics_listen = \"unix:/run/costd/metrics.sock\"").metricsListen == .unix(path: "/run/costd/metrics.sock"))
        for bad in ["9464", "unix:metrics.sock", ":9464", "host:99999"] {
            #expect(throws: ConfigError.self) { try MetricsListenAddress(parsing: bad) }
        }
    }
}
