import CostdCore
import Synchronization

/// Monotonic counters of what this daemon recorded, by model: spend (exact, in nano-dollars, so
/// the exported USD is the exact decimal), calls and tokens by class. Unlike the per-period
/// `costd_spend_usd` gauge they never go back at a day's or month's end, so `rate()` and
/// `increase()` work on them. At most ``maxModels`` model labels: the others are counted as
/// `other`, so a client naming ever new models cannot grow the series without end.
final class SpendCounters: Sendable {
    struct Totals: Sendable, Equatable {
        var nanos: Int64 = 0
        var calls: Int64 = 0
        var inputTokens: Int64 = 0
        var outputTokens: Int64 = 0
        var cachedInputTokens: Int64 = 0
    }

    static let maxModels = 200
    static let otherModel = "other"

    private let byModel = Mutex<[String: Totals]>([:])

    /// Counts a record Redis or the ledger took (not a duplicate, not a cache hit).
    func count(_ record: SpendRecord) {
        byModel.withLock { byModel in
            let label = byModel[record.model] != nil || byModel.count < Self.maxModels ? record.model : Self.otherModel
            var totals = byModel[label, default: Totals()]
            totals.nanos += record.cost.nanos
            totals.calls += 1
            totals.inputTokens += record.inputTokens
            totals.outputTokens += record.outputTokens
            totals.cachedInputTokens += record.cachedInputTokens
            byModel[label] = totals
        }
    }

    var snapshot: [String: Totals] { byModel.withLock { $0 } }

    /// The counters in the Prometheus text format.
    func render(into text: inout String) {
        let models = snapshot.sorted { $0.key < $1.key }
        guard !models.isEmpty else { return }
        text += "# HELP costd_spend_usd_total Spend recorded by this daemon since it started, exact to the nano-dollar.\n"
        text += "# TYPE costd_spend_usd_total counter\n"
        for (model, totals) in models {
            text += "costd_spend_usd_total{model=\"\(Self.escaped(model))\"} \(Money(nanos: totals.nanos).decimalString)\n"
        }
        text += "# HELP costd_calls_total LLM calls recorded by this daemon since it started.\n"
        text += "# TYPE costd_calls_total counter\n"
        for (model, totals) in models { text += "costd_calls_total{model=\"\(Self.escaped(model))\"} \(totals.calls)\n" }
        text += "# HELP costd_tokens_total Tokens of the calls recorded by this daemon since it started (cached_input is part of input).\n"
        text += "# TYPE costd_tokens_total counter\n"
        for (model, totals) in models {
            for (tokenClass, count) in [("input", totals.inputTokens), ("output", totals.outputTokens), ("cached_input", totals.cachedInputTokens)] {
                text += "costd_tokens_total{model=\"\(Self.escaped(model))\",class=\"\(tokenClass)\"} \(count)\n"
            }
        }
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    static func escaped(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
