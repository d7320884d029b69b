import CostdCore
import CostdProtocol

/// `ping`, `route` and `report`.
extension CostdEngine {
    /// `{}` → `{pong:true, version, ...}`.
    func ping(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("pong", true)
        writer.field("version", CostdEngine.version)
        writer.field("uptimeSeconds", Double((CostdEngine.monotonicNanos() - startedAt.uptimeNanoseconds) / 1_000_000) / 1000)
        writer.field("store", "embedded")
        writer.field("ledger", ledger.isFailed ? "failed" : "ok")
        writer.endObject()
    }

    /// `{task?, prompt?, inputTokens?, user?, feature?}` → `{model, tier, reason, maxTokens}`.
    func route(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let rules = self.rules
        let task = try params.string("task", maxLength: 256)
        _ = try params.string("user", maxLength: 256)
        _ = try params.string("feature", maxLength: 256)
        var promptTokens = try params.count("inputTokens")
        var tokensCounted = promptTokens != nil
        if promptTokens == nil, let prompt = params.value("prompt") {
            let utf8Count: Int
            if case .string(let text) = prompt {
                utf8Count = text.utf8.count
            } else {
                utf8Count = prompt.canonicalBytes().count
            }
            promptTokens = Router.estimateTokens(utf8Count: utf8Count)
            tokensCounted = false
        }
        let decision = rules.router.route(
            RouteRequest(task: task, promptTokens: promptTokens, underBudgetPressure: underBudgetPressure(rules))
        )
        writer.beginObject()
        writer.field("model", decision.model)
        writer.field("tier", decision.tier)
        writer.field("reason", decision.reason.rawValue)
        writer.field("maxTokens", decision.maxTokens)
        writer.field("detail", decision.detail)
        if let promptTokens {
            writer.field("inputTokens", promptTokens)
            writer.field("inputTokensExact", tokensCounted)
            if let price = rules.prices.price(for: decision.model) {
                writer.field("estimatedCostUsd", price.cost(inputTokens: promptTokens, outputTokens: decision.maxTokens))
            }
        }
        writer.endObject()
    }

    /// Whether today's or this month's spend is past the downgrade fraction of its budget.
    func underBudgetPressure(_ rules: Rules) -> Bool {
        guard let fraction = rules.configuration.routing.budgetDowngradeFractionPPM else { return false }
        let day = today()
        for (scope, period) in [(BudgetScope.day, day), (.month, PeriodCalendar.monthKey(ofDay: day))] {
            guard let budget = rules.budget.budget(for: scope) else { continue }
            let spent = ledger.status(scope, period: period, budget: rules.budget).spent
            if spent >= budget.scaled(by: fraction, over: 1_000_000) && spent > .zero { return true }
        }
        return false
    }

    /// `{date?, period?, days?}` → spend, budget and cache figures of a day or a month.
    func report(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let rules = self.rules
        let today = self.today()
        var date = today
        if let requested = try params.string("date", maxLength: 32) {
            guard let day = PeriodCalendar.parseDay(requested) else {
                throw .invalidParams("'date' must be a date as YYYY-MM-DD")
            }
            date = day
        }
        let scope: BudgetScope
        switch try params.string("period", maxLength: 16) ?? "day" {
        case "day": scope = .day
        case "month": scope = .month
        default: throw .invalidParams("'period' must be \"day\" or \"month\"")
        }
        let historyDays = Int(try params.count("days", max: 400) ?? 0)
        flushCacheCounters()
        let periodKey = scope == .day ? date : PeriodCalendar.monthKey(ofDay: date)
        let (totals, history) = ledger.withBook { book in
            (
                scope == .day ? book.totals(day: date) : book.totals(month: periodKey),
                PeriodCalendar.days(endingAt: date, count: historyDays).map { ($0, book.totals(day: $0).spent) }
            )
        }
        let budget = rules.budget.budget(for: scope)
        ReportWriter.write(
            ReportWriter.Input(
                date: date, period: scope, periodKey: periodKey, totals: totals, budget: budget,
                baselineModel: rules.configuration.baselineModel, l1: l1.statistics, history: history
            ),
            to: &writer
        )
    }
}

/// The `report` result, in one place.
enum ReportWriter {
    struct Input {
        var date: String
        var period: BudgetScope
        var periodKey: String
        var totals: PeriodTotals
        var budget: Money?
        var baselineModel: String
        var l1: L1Cache.Statistics
        var history: [(String, Money)]
    }

    static func write(_ input: Input, to writer: inout JSONWriter) {
        let totals = input.totals
        writer.beginObject()
        writer.field("date", input.date)
        writer.field("period", input.period.rawValue)
        writer.field("periodKey", input.periodKey)
        writer.field("totalCostUsd", totals.spent)
        writer.key("budgetUsd")
        if let budget = input.budget { writer.money(budget) } else { writer.null() }
        writer.comma()
        writer.key("remainingUsd")
        if let budget = input.budget { writer.money(budget - totals.spent) } else { writer.null() }
        writer.comma()
        writer.field("requests", totals.requests)
        writer.field("cachedRequests", totals.cachedRequests)
        writer.field("inputTokens", totals.inputTokens)
        writer.field("outputTokens", totals.outputTokens)
        writer.field("cachedInputTokens", totals.cachedInputTokens)
        writer.field("byModel") { writeBreakdown(totals.byModel, &$0) }
        writer.field("byUser") { writeBreakdown(totals.byUser, &$0) }
        writer.field("byFeature") { writeBreakdown(totals.byFeature, &$0) }
        writer.field("byUnit") { writeBreakdown(totals.byUnit, &$0) }
        writer.field("cache") { writer in
            writer.beginObject()
            totals.cache.write(to: &writer)
            writer.field("savedUsd", totals.savedByCache)
            writer.field("l1") { writer in
                writer.beginObject()
                writer.field("entries", input.l1.entries)
                writer.field("bytes", input.l1.usedBytes)
                writer.field("capacityBytes", input.l1.capacityBytes)
                writer.field("evictions", Int64(input.l1.evictions))
                writer.field("expirations", Int64(input.l1.expirations))
                writer.endObject()
            }
            writer.endObject()
        }
        writer.field("savings") { writer in
            writer.beginObject()
            writer.field("cacheUsd", totals.savedByCache)
            writer.field("routingUsd", totals.savedByRouting)
            writer.field("totalUsd", totals.savedByCache + totals.savedByRouting)
            writer.field("baselineModel", input.baselineModel)
            writer.endObject()
        }
        if !input.history.isEmpty {
            writer.field("daily") { writer in
                writer.beginArray()
                for (day, spent) in input.history {
                    writer.beginObject()
                    writer.field("date", day)
                    writer.field("costUsd", spent)
                    writer.endObject()
                    writer.comma()
                }
                writer.endArray()
            }
        }
        writer.endObject()
    }

    private static func writeBreakdown(_ map: [String: SpendBreakdown], _ writer: inout JSONWriter) {
        writer.beginObject()
        for (key, value) in map.sorted(by: { $0.value.cost > $1.value.cost || ($0.value.cost == $1.value.cost && $0.key < $1.key) }) {
            writer.field(key) { value.write(to: &$0) }
        }
        writer.endObject()
    }
}
