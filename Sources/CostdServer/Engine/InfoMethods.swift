import CostdCore
import CostdProtocol
import CostdRedis
import NIOCore

/// `ping`, `route` and `report`.
extension CostdEngine {
    /// `{}` → `{pong:true, version, uptimeSeconds, store, ...}`.
    func ping(into writer: inout JSONWriter) {
        let status = store.status
        writer.beginObject()
        writer.field("pong", true)
        writer.field("version", CostdEngine.version)
        writer.field("uptimeSeconds", Double((clock.monotonicNanos - startedAtNanos) / 1_000_000) / 1000)
        writer.field("store", status.kind.rawValue)
        CostdEngine.writeStoreStatus(status, into: &writer)
        writer.endObject()
    }

    static func writeStoreStatus(_ status: StoreStatus, into writer: inout JSONWriter) {
        switch status.kind {
        case .embedded:
            writer.field("ledger", status.state)
        case .redis:
            writer.field("redis") { writer in
                writer.beginObject()
                writer.field("state", status.state)
                writer.field("backlog", status.backlog)
                if let error = status.lastError { writer.field("lastError", error) }
                writer.endObject()
            }
        }
    }

    /// `{task?, prompt?, inputTokens?, user?, feature?}` → `{model, tier, reason, maxTokens, ...}`.
    ///
    /// With a hard budget on, the worst-case cost of the routed call is reserved too; when it does
    /// not fit, cheaper tiers are tried before the call is refused (budget exceeded).
    func route(_ params: Params, on eventLoop: any EventLoop, into writer: inout JSONWriter) throws(RPCError) -> MethodReply {
        let rules = self.rules
        let task = try params.name("task")
        _ = try params.name("user")
        _ = try params.name("feature")
        var promptTokens = try params.count("inputTokens")
        var tokensExact = promptTokens != nil
        if promptTokens == nil, let prompt = params.value("prompt") {
            (promptTokens, tokensExact) = self.promptTokens(prompt, rules: rules)
        }
        let decision = rules.router.route(
            RouteRequest(task: task, promptTokens: promptTokens, underBudgetPressure: underBudgetPressure(rules))
        )
        let budget = rules.budget
        guard budget.isHard(.day) || budget.isHard(.month) else {
            CostdEngine.writeRoute(decision, promptTokens: promptTokens, exact: tokensExact, rules: rules, grant: nil, into: &writer)
            return .written
        }
        // Try the routed tier, then each cheaper one, until a reservation fits.
        let tiers = rules.configuration.routing.tiers
        let chosen = tiers.firstIndex { $0.name == decision.tier } ?? 0
        let candidates = (0...chosen).reversed().map { index -> RouteDecision in
            var candidate = decision
            if index != chosen {
                candidate.model = tiers[index].model
                candidate.tier = tiers[index].name
                candidate.reason = .budget
                candidate.detail = "the hard budget has no room for tier '\(decision.tier)': downgraded"
            }
            return candidate
        }
        return .later(
            routeWithReservation(candidates[...], promptTokens: promptTokens ?? 0, rules: rules, on: eventLoop).map { decision, grant in
                var writer = JSONWriter()
                CostdEngine.writeRoute(decision, promptTokens: promptTokens, exact: tokensExact, rules: rules, grant: grant, into: &writer)
                return writer.bytes
            }
        )
    }

    private func routeWithReservation(
        _ candidates: ArraySlice<RouteDecision>, promptTokens: Int64, rules: Rules, on eventLoop: any EventLoop
    ) -> EventLoopFuture<(RouteDecision, ReservationGrant)> {
        guard let decision = candidates.first else {
            return eventLoop.makeFailedFuture(RPCError.internalError("no tier to route to"))
        }
        let amount = rules.prices.price(for: decision.model)?.cost(inputTokens: promptTokens, outputTokens: decision.maxTokens) ?? .zero
        return takeReservation(amount: amount, ttlSeconds: 600, rules: rules, on: eventLoop).map { (decision, $0) }
            .flatMapError { error in
                guard error is BudgetExceeded, candidates.count > 1 else { return eventLoop.makeFailedFuture(error) }
                return self.routeWithReservation(candidates.dropFirst(), promptTokens: promptTokens, rules: rules, on: eventLoop)
            }
    }

    static func writeRoute(
        _ decision: RouteDecision, promptTokens: Int64?, exact: Bool, rules: Rules, grant: ReservationGrant?,
        into writer: inout JSONWriter
    ) {
        writer.beginObject()
        writer.field("model", decision.model)
        writer.field("tier", decision.tier)
        writer.field("reason", decision.reason.rawValue)
        writer.field("maxTokens", decision.maxTokens)
        writer.field("detail", decision.detail)
        if let promptTokens {
            writer.field("inputTokens", promptTokens)
            writer.field("inputTokensExact", exact)
            if let price = rules.prices.price(for: decision.model) {
                writer.field("estimatedCostUsd", price.cost(inputTokens: promptTokens, outputTokens: decision.maxTokens))
            }
        }
        if let grant { writeGrantFields(grant, into: &writer) }
        writer.endObject()
    }

    /// Whether today's or this month's spend is past the downgrade fraction of its budget.
    func underBudgetPressure(_ rules: Rules) -> Bool {
        guard let fraction = rules.configuration.routing.budgetDowngradeFractionPPM else { return false }
        let day = today()
        for (scope, period) in [(BudgetScope.day, day), (.month, PeriodCalendar.monthKey(ofDay: day))] {
            guard let budget = rules.budget.budget(for: scope) else { continue }
            let spent = store.knownSpend(scope, period: period)
            if spent >= budget.scaled(by: fraction, over: 1_000_000) && spent > .zero { return true }
        }
        return false
    }

    /// `{date?, period?, days?}` → spend, budget and cache figures of a day or a month.
    func report(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> EventLoopFuture<[UInt8]> {
        let rules = self.rules
        var date = today()
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
        let days: [String]
        if scope == .day {
            days = [date]
        } else {
            let parts = periodKey.split(separator: "-").compactMap { Int($0) }
            let count = PeriodCalendar.daysInMonth(year: parts[0], month: parts[1])
            days = (1...count).map { PeriodCalendar.dayKey(year: parts[0], month: parts[1], day: $0) }
        }
        let history = PeriodCalendar.days(endingAt: date, count: historyDays)
        let statistics = cache.l1.statistics
        let status = store.status
        return store.totals(days: days, history: history, on: eventLoop).map { stored in
            var writer = JSONWriter(reservingCapacity: 2048)
            ReportWriter.write(
                ReportWriter.Input(
                    date: date, period: scope, periodKey: periodKey, stored: stored, budget: rules.budget.budget(for: scope),
                    baselineModel: rules.configuration.baselineModel, l1: statistics, status: status,
                    waiting: self.cache.waiters.count
                ),
                to: &writer
            )
            return writer.bytes
        }
    }
}

/// The `report` result, in one place.
enum ReportWriter {
    struct Input {
        var date: String
        var period: BudgetScope
        var periodKey: String
        var stored: StoredTotals
        var budget: Money?
        var baselineModel: String
        var l1: L1Cache.Statistics
        var status: StoreStatus
        /// Callers of this daemon waiting now for another's single-flight lease.
        var waiting: Int
    }

    static func write(_ input: Input, to writer: inout JSONWriter) {
        let totals = input.stored.totals
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
        if input.stored.reserved != .zero { writer.field("reservedUsd", input.stored.reserved) }
        writer.field("requests", totals.requests)
        writer.field("cachedRequests", totals.cachedRequests)
        writer.field("inputTokens", totals.inputTokens)
        writer.field("outputTokens", totals.outputTokens)
        writer.field("cachedInputTokens", totals.cachedInputTokens)
        writer.field("byModel") { writeBreakdown(totals.byModel, &$0) }
        writer.field("byUser") { writeBreakdown(totals.byUser, &$0) }
        writer.field("byFeature") { writeBreakdown(totals.byFeature, &$0) }
        writer.field("byUnit") { writeBreakdown(totals.byUnit, &$0) }
        writer.field("byUnixUser") { writeBreakdown(totals.byUnixUser, &$0) }
        writer.field("cache") { writer in
            writer.beginObject()
            totals.cache.total.write(to: &writer)
            writer.field("savedCalls", totals.cache.total.fillHits)
            writer.field("waiting", input.waiting)
            writer.field("savedUsd", totals.savedByCache)
            writer.field("byModel") { writeCounters(totals.cache.byModel, &$0) }
            writer.field("byNamespace") { writeCounters(totals.cache.byNamespace, &$0) }
            writer.field("l1") { writer in
                writer.beginObject()
                writer.field("entries", input.l1.entries)
                writer.field("bytes", input.l1.usedBytes)
                writer.field("capacityBytes", input.l1.capacityBytes)
                writer.field("evictions", Int64(input.l1.evictions))
                writer.field("expirations", Int64(input.l1.expirations))
                writer.endObject()
            }
            if let fleet = input.stored.fleetCache {
                writer.field("fleet") { writer in
                    writer.beginObject()
                    fleet.total.write(to: &writer)
                    writer.field("savedCalls", fleet.total.fillHits)
                    writer.field("byModel") { writeCounters(fleet.byModel, &$0) }
                    writer.field("byNamespace") { writeCounters(fleet.byNamespace, &$0) }
                    writer.endObject()
                }
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
        if !input.stored.history.isEmpty {
            writer.field("daily") { writer in
                writer.beginArray()
                for (day, spent) in input.stored.history {
                    writer.beginObject()
                    writer.field("date", day)
                    writer.field("costUsd", spent)
                    writer.endObject()
                    writer.comma()
                }
                writer.endArray()
            }
        }
        if input.status.kind == .redis {
            CostdEngine.writeStoreStatus(input.status, into: &writer)
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

    private static func writeCounters(_ map: [String: CacheCounters], _ writer: inout JSONWriter) {
        writer.beginObject()
        for (key, counters) in map.sorted(by: { $0.value.lookups > $1.value.lookups || ($0.value.lookups == $1.value.lookups && $0.key < $1.key) }) {
            writer.field(key) { writer in
                writer.beginObject()
                counters.write(to: &writer)
                writer.endObject()
            }
        }
        writer.endObject()
    }
}
