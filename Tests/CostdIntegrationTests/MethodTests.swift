import Foundation
import CostdClient
import CostdCore
import Testing

/// Every method and field, against a real daemon over its socket.
@Suite(.timeLimit(.minutes(2))) struct MethodTests {
    @Test func ping() throws {
        try withDaemon { daemon in
            let result = try daemon.call("ping")
            #expect(result["pong"] == true)
            #expect(result["version"]?.stringValue?.isEmpty == false)
            #expect(result["store"] == "embedded")
        }
    }

    @Test func routeFollowsTheClassicTiers() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let simple = try connection.call("route", ["task": "extraction", "user": "ann", "feature": "search"])
            #expect(simple["model"] == "gpt-4o-mini")
            #expect(simple["tier"] == "simple")
            #expect(simple["reason"] == "task")
            #expect(simple["maxTokens"]?.int == 512)
            let complex = try connection.call("route", ["task": "reasoning"])
            #expect(complex["model"] == "gpt-4o")
            #expect(complex["tier"] == "complex")
            #expect(complex["reason"] == "default")
            let large = try connection.call("route", ["task": "classification", "inputTokens": 20_000])
            #expect(large["tier"] == "complex")
            #expect(large["reason"] == "prompt-size")
            let fromPrompt = try connection.call("route", ["task": "translation", "prompt": .string(String(repeating: "word ", count: 10_000))])
            #expect(fromPrompt["reason"] == "prompt-size")
            #expect(fromPrompt["estimatedCostUsd"]?.money != nil)
        }
    }

    @Test func routeDowngradesUnderBudgetPressure() throws {
        try withDaemon(["--daily-budget", "1"]) { daemon in
            let connection = try daemon.connect()
            #expect(try connection.call("route", ["task": "reasoning"])["tier"] == "complex")
            // $0.95 of $1: past the 90% downgrade fraction.
            _ = try connection.call("record", ["model": "gpt-4o", "inputTokens": 0, "outputTokens": 0, "costUsd": .number(JSONNumber(validatedLiteral: "0.95"))])
            let routed = try connection.call("route", ["task": "reasoning"])
            #expect(routed["tier"] == "simple")
            #expect(routed["reason"] == "budget")
        }
    }

    @Test func cacheSetThenGetWithCanonicalKeys() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let stored = try connection.call(
                "cacheSet", ["model": "gpt-4o", "prompt": ["a": 1, "b": [true, nil]], "value": ["text": "hi"]]
            )
            #expect(stored["stored"] == true)
            // The same prompt with keys in another order and other white space is the same entry.
            let hit = try connection.roundTrip(
                #"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"gpt-4o","prompt":{ "b" : [true,null], "a" : 1.0 }}}"#
            )
            #expect(hit["result"]?["hit"] == true)
            #expect(hit["result"]?["layer"] == "l1")
            #expect(hit["result"]?["value"] == ["text": "hi"])
            // Another model, another namespace, another prompt: misses.
            #expect(try connection.call("cacheGet", ["model": "gpt-4o-mini", "prompt": ["a": 1, "b": [true, nil]]])["hit"] == false)
            #expect(try connection.call("cacheGet", ["model": "gpt-4o", "prompt": ["a": 1, "b": [true, nil]], "namespace": "x"])["hit"] == false)
            let miss = try connection.call("cacheGet", ["model": "gpt-4o", "prompt": ["a": 2]])
            #expect(miss == ["hit": false])
        }
    }

    @Test func cachedValuesComeBackByteForByte() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            let value = #"{ "z" : 1.50,  "a":[ "é\u00e9\n" ,  1e3 ] }"#
            _ = try connection.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"cacheSet","params":{"model":"m","prompt":"p","value":"# + value + "}}")
            try connection.send(Array(#"{"jsonrpc":"2.0","id":2,"method":"cacheGet","params":{"model":"m","prompt":"p"}}"#.utf8))
            let raw = String(decoding: try #require(try connection.receiveFrame()), as: UTF8.self)
            #expect(raw.contains(#""value":"# + value + ","))
        }
    }

    @Test func cacheDeleteAndFlush() throws {
        try withDaemon { daemon in
            let connection = try daemon.connect()
            for (index, namespace) in ["a", "a", "b"].enumerated() {
                _ = try connection.call("cacheSet", ["model": "m", "prompt": .int(index), "value": "v", "namespace": .string(namespace)])
            }
            #expect(try connection.call("cacheDelete", ["model": "m", "prompt": 0, "namespace": "a"])["deleted"] == true)
            #expect(try connection.call("cacheDelete", ["model": "m", "prompt": 0, "namespace": "a"])["deleted"] == false)
            #expect(try connection.call("cacheFlush", ["namespace": "a"])["flushed"]?.int == 1)
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": 2, "namespace": "b"])["hit"] == true)
            #expect(try connection.call("cacheFlush")["flushed"]?.int == 1)
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": 2, "namespace": "b"])["hit"] == false)
        }
    }

    @Test func recordPricesAndAnswersWithBudgets() throws {
        try withDaemon(["--daily-budget", "10", "--monthly-budget", "100"]) { daemon in
            let connection = try daemon.connect()
            let result = try connection.call(
                "record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500, "user": "ann", "feature": "search"]
            )
            #expect(result["costUsd"]?.money == Money(usd: "0.0075"))
            #expect(result["day"]?["spentUsd"]?.money == Money(usd: "0.0075"))
            #expect(result["day"]?["budgetUsd"]?.money == Money(usd: "10"))
            #expect(result["day"]?["remainingUsd"]?.money == Money(usd: "9.9925"))
            #expect(result["month"]?["budgetUsd"]?.money == Money(usd: "100"))
            #expect(result["alerts"] == [])
            #expect(result["recordId"]?.stringValue?.isEmpty == false)

            let cached = try connection.call("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500, "cached": true])
            #expect(cached["costUsd"]?.money == .zero)
            #expect(cached["savedUsd"]?.money == Money(usd: "0.0075"))

            // 1000 prompt tokens, 600 of them from the provider's prompt cache, in batch mode.
            let detailed = try connection.call(
                "record", ["model": "gpt-4o-mini", "inputTokens": 1_000, "outputTokens": 100, "cachedInputTokens": 600]
            )
            // 400 × 0.15 + 600 × 0.075 + 100 × 0.60 = 165 per M
            #expect(detailed["costUsd"]?.money == Money(usd: "0.000165"))
            let batch = try connection.call("record", ["model": "gpt-4o", "inputTokens": 1_000_000, "outputTokens": 0, "batch": true])
            #expect(batch["costUsd"]?.money == Money(usd: "1.25"))
            let images = try connection.call("record", ["model": "dall-e-3", "images": 2, "imageQuality": "hd"])
            #expect(images["costUsd"]?.money == Money(usd: "0.16"))
            let explicit = try connection.call("record", ["model": "in-house-llm", "costUsd": .number(JSONNumber(validatedLiteral: "0.42"))])
            #expect(explicit["costUsd"]?.money == Money(usd: "0.42"))
        }
    }

    @Test func reportShowsTotalsBreakdownsAndCache() throws {
        try withDaemon(["--daily-budget", "5"]) { daemon in
            let connection = try daemon.connect()
            _ = try connection.call("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500, "user": "ann", "feature": "search"])
            _ = try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 1_000, "outputTokens": 500, "user": "bob", "feature": "chat"])
            _ = try connection.call("record", ["model": "gpt-4o", "inputTokens": 1_000, "outputTokens": 500, "user": "ann", "cached": true])
            _ = try connection.call("cacheSet", ["model": "m", "prompt": "p", "value": 1])
            _ = try connection.call("cacheGet", ["model": "m", "prompt": "p"])
            _ = try connection.call("cacheGet", ["model": "m", "prompt": "q"])
            _ = try connection.call("cacheGet", ["model": "m", "prompt": "r"])
            let report = try connection.call("report")
            #expect(report["period"] == "day")
            #expect(report["totalCostUsd"]?.money == Money(usd: "0.00795"))
            #expect(report["budgetUsd"]?.money == Money(usd: "5"))
            #expect(report["remainingUsd"]?.money == Money(usd: "4.99205"))
            #expect(report["requests"]?.int == 2)
            #expect(report["cachedRequests"]?.int == 1)
            #expect(report["byModel"]?["gpt-4o"]?["costUsd"]?.money == Money(usd: "0.0075"))
            #expect(report["byModel"]?["gpt-4o-mini"]?["costUsd"]?.money == Money(usd: "0.00045"))
            #expect(report["byUser"]?["ann"]?["costUsd"]?.money == Money(usd: "0.0075"))
            #expect(report["byUser"]?["bob"]?["requests"]?.int == 1)
            #expect(report["byFeature"]?["chat"]?["costUsd"]?.money == Money(usd: "0.00045"))
            let cache = try #require(report["cache"])
            #expect(cache["hits"]?.int == 1)
            #expect(cache["misses"]?.int == 2)
            #expect(cache["l1Hits"]?.int == 1)
            #expect(cache["hitRate"]?.numberValue?.double.map { abs($0 - 1.0 / 3.0) < 1e-9 } == true)
            #expect(cache["savedUsd"]?.money == Money(usd: "0.0075"))
            // The month contains today.
            let month = try connection.call("report", ["period": "month", "days": 3])
            #expect(month["totalCostUsd"]?.money == Money(usd: "0.00795"))
            #expect(month["periodKey"]?.stringValue?.count == 7)
            #expect(month["daily"]?.arrayValue?.count == 3)
            // A past day is empty, not an error.
            let past = try connection.call("report", ["date": "2020-01-01"])
            #expect(past["totalCostUsd"]?.money == .zero)
            #expect(past["requests"]?.int == 0)
        }
    }

    @Test func estimate() throws {
        try withDaemon { daemon in
            let result = try daemon.call(
                "estimate", ["model": "gpt-4o-mini", "dailyRequests": 10_000, "avgInputTokens": 500, "avgOutputTokens": 200]
            )
            // 500 × 0.15 + 200 × 0.60 = 195 per M tokens-requests → $0.000195 per request
            #expect(result["perRequestUsd"]?.money == Money(usd: "0.000195"))
            #expect(result["dailyUsd"]?.money == Money(usd: "1.95"))
            #expect(result["monthlyUsd"]?.money == Money(usd: "58.5"))
            let week = try daemon.call(
                "estimate", ["model": "gpt-4o", "dailyRequests": 3, "avgInputTokens": .number(JSONNumber(validatedLiteral: "333.5")), "avgOutputTokens": 0, "days": 7]
            )
            // 3 × 333.5 × 2.5 / 1e6 = 0.00250125 per day
            #expect(week["dailyUsd"]?.money == Money(usd: "0.00250125"))
            #expect(week["monthlyUsd"]?.money == Money(usd: "0.01750875"))
            #expect(rpcErrorCode { try daemon.call("estimate", ["model": "nope", "dailyRequests": 1, "avgInputTokens": 1, "avgOutputTokens": 1]) } == -32001)
        }
    }
}

/// The L1 cache of the embedded default: entries expire at their TTL, and the byte bound holds.
@Suite(.timeLimit(.minutes(2))) struct EmbeddedCacheTests {
    /// Expiry itself is tested on a manual clock (`RPCConnectionHandlerTests`); here, that the
    /// daemon takes and bounds the TTLs it is given.
    @Test func ttlsAreTakenAndBounded() throws {
        try withDaemon { (daemon: TestDaemon) throws in
            let connection = try daemon.connect()
            let stored = try connection.call("cacheSet", ["model": "m", "prompt": "short", "value": 1, "ttl": .number(JSONNumber(validatedLiteral: "0.3"))])
            #expect(stored["ttl"]?.numberValue?.double == 0.3)
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": "short"])["hit"] == true)
            #expect(rpcErrorCode { try connection.call("cacheSet", ["model": "m", "prompt": "p", "value": 1, "ttl": 0]) } == -32602)
            #expect(rpcErrorCode { try connection.call("cacheSet", ["model": "m", "prompt": "p", "value": 1, "ttl": 999_999_999]) } == -32602)
        }
    }

    @Test func theByteBoundHoldsAndHotEntriesStay() throws {
        try withDaemon(["--cache-bytes", "200000"]) { (daemon: TestDaemon) throws in
            let connection = try daemon.connect()
            let value = JSONValue.string(String(repeating: "v", count: 1_000))
            _ = try connection.call("cacheSet", ["model": "m", "prompt": "hot", "value": value])
            for index in 0..<1_000 {
                _ = try connection.call("cacheSet", ["model": "m", "prompt": .int(index), "value": value])
                if index % 10 == 0 { _ = try connection.call("cacheGet", ["model": "m", "prompt": "hot"]) }
            }
            let l1 = try #require(try connection.call("report")["cache"]?["l1"])
            #expect(try #require(l1["bytes"]?.int) <= 200_000)
            #expect(try #require(l1["evictions"]?.int) > 0)
            #expect(try #require(l1["entries"]?.int) < 200)
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": "hot"])["hit"] == true, "a hot entry survives eviction")
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": 0])["hit"] == false, "an old cold one does not")
            #expect(try connection.call("cacheGet", ["model": "m", "prompt": 999])["hit"] == true)
            let tooBig = try connection.call("cacheSet", ["model": "m", "prompt": "huge", "value": .string(String(repeating: "x", count: 300_000))])
            #expect(tooBig["stored"] == false)
        }
    }
}
