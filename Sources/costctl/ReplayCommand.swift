import ArgumentParser
import CostdClient
import CostdCore
import Foundation

/// `costctl replay`: a recorded or synthetic workload through the running daemon, exactly as a
/// client would send it, and what costd saved against sending everything to one model.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a trace through costd and show the cost cut, split by routing, caching and max-token caps.",
        discussion: """
            Each line of the trace is a JSON object: {"task", "prompt", "inputTokens"?, "outputTokens",
            "user"?, "feature"?}. For each, costctl asks costd to route it, looks it up in the cache
            (a namespace of its own, so every replay starts cold), and on a miss "makes the call"
            (the trace's token counts, the output capped at the routed maxTokens), stores the answer
            and records it; a hit is recorded as a call the cache avoided. Prompt tokens are counted
            with the model's tokenizer when the line has none.

            Baseline: every request on --baseline-model, no cache, no caps. The saving telescopes:
            routing (the same tokens on the routed model), caps (the output cut to maxTokens),
            caching (calls avoided); costd's cost is what remains.
            """
    )
    @OptionGroup var options: ClientOptions
    @Option(name: .customLong("baseline-model"), help: "The model every call of the trace would use without costd.")
    var baselineModel = "gpt-4o"
    @Option(help: "Cache namespace for the replay (default: a new one per run).") var namespace: String?
    @Option(help: "Feature recorded for lines without one.") var feature = "replay"
    @Argument(help: "The trace (JSON lines).") var trace: String

    struct Line {
        var task: String
        var prompt: String
        var inputTokens: Int64?
        var outputTokens: Int64
        var user: String?
        var feature: String?
    }

    static func parse(_ text: String, path: String) throws -> [Line] {
        var lines: [Line] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let json = try? JSONParser.parse(trimmed),
                let task = json["task"]?.stringValue, let prompt = json["prompt"]?.stringValue,
                let output = json["outputTokens"]?.numberValue?.int64, output >= 0
            else { throw ValidationError("\(path):\(number + 1): needs task, prompt and outputTokens") }
            lines.append(
                Line(
                    task: task, prompt: prompt, inputTokens: json["inputTokens"]?.numberValue?.int64, outputTokens: output,
                    user: json["user"]?.stringValue, feature: json["feature"]?.stringValue
                )
            )
        }
        return lines
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: trace), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read \(trace)")
        }
        let lines = try Replay.parse(text, path: trace)
        let connection = try options.connect()
        let prices = PriceLookup(connection: connection)
        let namespace = self.namespace ?? "replay-\(UInt64.random(in: 0..<UInt64.max))"
        var tokenCounts: [String: Int64] = [:]  // "<model>\u{0}<prompt>" → tokens
        func tokens(_ prompt: String, model: String) throws -> Int64 {
            let key = model + "\u{0}" + prompt
            if let known = tokenCounts[key] { return known }
            let counted = try connection.call("tokens", ["text": .string(prompt), "model": .string(model)])["tokens"]?.numberValue?.int64 ?? 0
            tokenCounts[key] = counted
            return counted
        }

        var totals = ReplayTotals()
        for line in lines {
            let routed = try connection.call("route", ["task": .string(line.task), "prompt": .string(line.prompt)])
            guard let model = routed["model"]?.stringValue, let maxTokens = routed["maxTokens"]?.numberValue?.int64 else {
                throw ValidationError("unexpected route answer: \(routed.jsonString)")
            }
            let routedInput = try line.inputTokens ?? tokens(line.prompt, model: model)
            let baselineInput = try line.inputTokens ?? tokens(line.prompt, model: baselineModel)
            let cappedOutput = min(line.outputTokens, maxTokens)
            let baselineCost = try prices.cost(baselineModel, input: baselineInput, output: line.outputTokens)
            let routedCost = try prices.cost(model, input: routedInput, output: line.outputTokens)
            let cappedCost = try prices.cost(model, input: routedInput, output: cappedOutput)
            totals.baseline += baselineCost
            totals.routing += baselineCost - routedCost
            totals.caps += routedCost - cappedCost
            if model != baselineModel { totals.routedDown += 1 }
            if cappedOutput < line.outputTokens { totals.capped += 1 }

            let key: JSONValue = ["model": .string(model), "prompt": .string(line.prompt), "namespace": .string(namespace)]
            let lookup = try connection.call("cacheGet", key)
            var record: JSONObject = [
                "model": .string(model), "inputTokens": .int(routedInput), "user": .string(line.user ?? "replay"),
                "feature": .string(line.feature ?? feature),
            ]
            if lookup["hit"]?.boolValue == true {
                // The call the hit avoided is this line's call: its tokens are what was saved.
                record.append("outputTokens", .int(cappedOutput))
                record.append("cached", true)
                let answer = try connection.call("record", .object(record))
                totals.caching += answer["savedUsd"]?.numberValue.flatMap { Money(usd: $0) } ?? .zero
                totals.hits += 1
            } else {
                guard case .object(var stored) = key else { continue }
                stored.append("value", ["outputTokens": .int(cappedOutput)])
                _ = try connection.call("cacheSet", .object(stored))
                record.append("outputTokens", .int(cappedOutput))
                let answer = try connection.call("record", .object(record))
                totals.costd += answer["costUsd"]?.numberValue.flatMap { Money(usd: $0) } ?? .zero
            }
            totals.requests += 1
        }
        totals.print(trace: trace, baselineModel: baselineModel, socket: options.socketPath, json: options.json)
    }
}

struct ReplayTotals {
    var requests = 0
    var hits = 0
    var routedDown = 0
    var capped = 0
    var baseline = Money.zero
    var costd = Money.zero
    var routing = Money.zero
    var caps = Money.zero
    var caching = Money.zero

    var saved: Money { baseline - costd }

    func print(trace: String, baselineModel: String, socket: String, json: Bool) {
        func number(_ money: Money) -> JSONValue { .number(JSONNumber(validatedLiteral: money.decimalString)) }
        if json {
            Swift.print(
                JSONValue.object([
                    "requests": .int(requests), "baselineModel": .string(baselineModel),
                    "baselineUsd": number(baseline), "costdUsd": number(costd), "savedUsd": number(saved),
                    "savedByRoutingUsd": number(routing), "savedByCachingUsd": number(caching), "savedByCapsUsd": number(caps),
                    "cacheHits": .int(hits), "routedDown": .int(routedDown), "capped": .int(capped),
                ]).jsonString
            )
            return
        }
        func usd(_ money: Money) -> String { "$" + money.decimalString }
        func share(_ money: Money) -> String {
            baseline.nanos > 0 ? String(format: "%.1f%%", Double(money.nanos) / Double(baseline.nanos) * 100) : "-"
        }
        func row(_ label: String, _ money: Money, _ note: String) {
            Swift.print("  \(Format.pad(label, 44)) \(Format.padLeft(usd(money), 14))   \(note)")
        }
        Swift.print("replayed \(requests) requests of \(trace) through costd (\(socket))")
        row("baseline: all on \(baselineModel), no cache, no caps", baseline, "")
        row("with costd", costd, "\(share(costd)) of the baseline")
        row("saved", saved, share(saved))
        row("  by routing", routing, "\(routedDown) requests on a cheaper tier")
        row("  by caching", caching, "\(hits) cache hits of \(requests) (\(requests > 0 ? String(format: "%.1f%%", Double(hits) / Double(requests) * 100) : "-"))")
        row("  by max-token caps", caps, "\(capped) answers capped at maxTokens")
    }
}

/// Per-model prices, asked of the daemon once per model (so a replay prices exactly as the
/// daemon's own table, overrides included), and the same rounding as the daemon: one call's
/// cost is its token classes at their prices, summed, rounded once to a nano-dollar.
final class PriceLookup {
    private let connection: CostdConnection
    private var known: [String: ModelPrice] = [:]

    init(connection: CostdConnection) {
        self.connection = connection
    }

    /// The model's USD per million input and output tokens, as the daemon prices them.
    func price(_ model: String) throws -> ModelPrice {
        if let price = known[model] { return price }
        func ask(input: Int64, output: Int64) throws -> Money {
            let result = try connection.call(
                "estimate", ["model": .string(model), "dailyRequests": 1, "avgInputTokens": .int(input), "avgOutputTokens": .int(output), "days": 1]
            )
            return result["perRequestUsd"]?.numberValue.flatMap { Money(usd: $0) } ?? .zero
        }
        let price = ModelPrice(inputPerMillion: try ask(input: 1_000_000, output: 0), outputPerMillion: try ask(input: 0, output: 1_000_000))
        known[model] = price
        return price
    }

    func cost(_ model: String, input: Int64, output: Int64) throws -> Money {
        try price(model).cost(inputTokens: input, outputTokens: output)
    }
}
