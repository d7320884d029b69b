import CostdClient
import CostdCore
import Foundation
import Testing

/// Single-flight and hard budgets on the embedded default, shared by every client of one daemon.
@Suite(.timeLimit(.minutes(2))) struct EmbeddedSharingTests {
    @Test func singleFlightWithinOneDaemon() throws {
        try withDaemon { daemon in
            let holder = try daemon.connect()
            let lease = try #require(try holder.call("cacheGet", ["model": "m", "prompt": "p", "lease": true])["lease"])
            let answers = Collector<JSONValue>()
            let thread = Thread {
                try? runConcurrently(2) { _ in
                    answers.add(try daemon.connect().call("cacheGet", ["model": "m", "prompt": "p", "lease": true, "waitMs": 10_000]))
                }
            }
            thread.start()
            #expect(try eventually { try holder.call("report")["cache"]?["waiting"]?.int == 2 })
            #expect(try holder.call("cacheSet", ["model": "m", "prompt": "p", "value": 42, "lease": lease])["leaseHeld"] == true)
            #expect(eventually { answers.values.count == 2 })
            #expect(answers.values.allSatisfy { $0["layer"] == "fill" && $0["value"] == 42 })
            #expect(try holder.call("report")["cache"]?["savedCalls"]?.int == 2)
            // A waiter that times out gets no value and no lease while the lease is held.
            _ = try holder.call("cacheGet", ["model": "m", "prompt": "other", "lease": true])
            let timedOut = try daemon.call("cacheGet", ["model": "m", "prompt": "other", "lease": true, "waitMs": 100])
            #expect(timedOut == ["hit": false])
        }
    }

    @Test func hardBudgetWithinOneDaemon() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start(extraArguments: ["--config", daemon.writeFile("costd.toml", "[budget]\ndaily = 0.1\nhard_daily = true\n")])
        let granted = Counter()
        try runConcurrently(8) { _ in
            let connection = try daemon.connect()
            while true {
                do {
                    let grant = try connection.call("reserve", ["model": "gpt-4o-mini", "inputTokens": 10_000, "maxOutputTokens": 1_000])
                    #expect(grant["amountUsd"]?.money == Money(usd: "0.0021"))
                    granted.add(1)
                    _ = try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 10_000, "outputTokens": 1_000, "reservation": try #require(grant["reservation"])])
                } catch ClientError.rpc(let code, _, let data) where code == -32000 {
                    #expect(data?["scope"] == [:])  // the host's budget
                    #expect(data?["budgetPeriod"] == "day")
                    return
                }
            }
        }
        let report = try daemon.call("report")
        #expect(report["totalCostUsd"]?.money == Money(usd: "0.0021")! * Int64(granted.value))
        #expect(try #require(report["totalCostUsd"]?.money) <= Money(usd: "0.1")!)
        #expect(granted.value == 47)
        // A released reservation gives its money back.
        let daemon2 = try daemon.connect()
        #expect(rpcErrorCode { try daemon2.call("reserve", ["model": "gpt-4o-mini", "inputTokens": 10_000, "maxOutputTokens": 1_000]) } == -32000)
    }

    @Test func routeFallsBackToACheaperTierThatFitsTheHardBudget() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        try daemon.start(extraArguments: ["--config", daemon.writeFile("costd.toml", "[budget]\ndaily = 0.05\nhard_daily = true\n")])
        // gpt-4o for 10k in + 1024 out costs $0.03524 and fits; twice does not, but gpt-4o-mini does.
        let first = try daemon.call("route", ["task": "reasoning", "inputTokens": 10_000])
        #expect(first["model"] == "gpt-4o")
        #expect(first["reservation"]?.stringValue != nil)
        let second = try daemon.call("route", ["task": "reasoning", "inputTokens": 10_000])
        #expect(second["model"] == "gpt-4o-mini")
        #expect(second["reason"] == "budget")
        // Giving the first reservation back makes room again.
        #expect(try daemon.call("releaseReservation", ["reservation": try #require(first["reservation"])])["released"] == true)
        #expect(try daemon.call("route", ["task": "reasoning", "inputTokens": 10_000])["model"] == "gpt-4o")
    }
}
