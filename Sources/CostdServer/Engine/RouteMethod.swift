import CostdCore
import CostdProtocol
import CostdRedis
import NIOCore

/// `route`: which model a call should use, and with a hard budget its reservation.
extension CostdEngine {
    /// `{task?, prompt?, inputTokens?, model?, user?, feature?}` → `{model, tier, reason, maxTokens,
    /// routeId, ...}`.
    ///
    /// `model` is the model the caller would use without costd (`baseline_model` when not
    /// given): a `record` that carries the `routeId` back claims, as routing savings, that
    /// model's cost minus the routed one's on the call's usage.
    ///
    /// With a hard budget on, the worst-case cost of the routed call is reserved too; when it does
    /// not fit, cheaper tiers are tried before the call is refused (budget exceeded).
    func route(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop, into writer: inout JSONWriter) throws(RPCError) -> MethodReply {
        let rules = self.rules
        let task = try params.name("task")
        let requestedModel = try params.name("model") ?? rules.configuration.baselineModel
        let user = try params.name("user")
        let feature = try params.name("feature")
        var promptTokens = try params.count("inputTokens")
        var tokensExact = promptTokens != nil
        if promptTokens == nil, let prompt = params.value("prompt") {
            (promptTokens, tokensExact) = self.promptTokens(prompt, rules: rules)
        }
        let requester = Requester(user: user, feature: feature, caller: caller)
        switch plannedRoute(task: task, promptTokens: promptTokens, for: requester, rules: rules, on: eventLoop) {
        case .decided(let decision):
            let routeId = issueRoute(decision, requestedModel: requestedModel)
            CostdEngine.writeRoute(decision, routeId: routeId, promptTokens: promptTokens, exact: tokensExact, rules: rules, grant: nil, into: &writer)
            return .written
        case .reserving(let reserved):
            return .later(
                reserved.map { [promptTokens, tokensExact] decision, grant in
                    let routeId = self.issueRoute(decision, requestedModel: requestedModel)
                    var writer = JSONWriter()
                    CostdEngine.writeRoute(decision, routeId: routeId, promptTokens: promptTokens, exact: tokensExact, rules: rules, grant: grant, into: &writer)
                    return writer.bytes
                }
            )
        }
    }

    /// Remembers a decision until a `record` claims its saving; its id: this daemon's prefix
    /// (new at each start) and the decision's number. Ids are not secrets: one names a decision,
    /// claimed once, by whoever records its call.
    private func issueRoute(_ decision: RouteDecision, requestedModel: String) -> String {
        let now = clock.nowMillis
        let issued = IssuedRoutes.Decision(requestedModel: requestedModel, routedModel: decision.model)
        let number = issuedRoutes.withLock { $0.issue(issued, nowMillis: now) }
        return routeIdPrefix + String(number)
    }

    /// Who a call is for: what scoped budgets match it by (with its model) and who may release
    /// its reservation.
    struct Requester {
        var user: String?
        var feature: String?
        var caller: CallerIdentity?

        func attributes(model: String) -> SpendAttributes {
            CostdEngine.attributes(user: user, feature: feature, model: model, caller: caller)
        }
    }

    /// A routing decision, made at once, or (with a hard budget on) once its reservation is taken.
    enum RoutePlan {
        case decided(RouteDecision)
        case reserving(EventLoopFuture<(RouteDecision, ReservationGrant)>)
    }

    /// Routes a call, for `route` and the HTTP endpoint alike. With a hard budget on, the
    /// worst-case cost of the routed call is reserved too; when it does not fit, cheaper tiers
    /// are tried before the call is refused (budget exceeded).
    func plannedRoute(task: String?, promptTokens: Int64?, for requester: Requester, rules: Rules, on eventLoop: any EventLoop) -> RoutePlan {
        let decision = rules.router.route(
            RouteRequest(task: task, promptTokens: promptTokens, underBudgetPressure: underBudgetPressure(rules))
        )
        // Only a hard budget (the host's, or a scoped one of this user, feature... or model) can
        // refuse the call: without one, nothing is reserved.
        let tiers = rules.configuration.routing.tiers
        let chosen = tiers.firstIndex { $0.name == decision.tier } ?? 0
        guard tiers[...chosen].contains(where: { rules.budget.hasHardBudget(for: requester.attributes(model: $0.model)) })
            || rules.budget.hasHardBudget(for: requester.attributes(model: decision.model))
        else { return .decided(decision) }
        // Try the routed tier, then each cheaper one, until a reservation fits.
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
        return .reserving(routeWithReservation(candidates[...], promptTokens: promptTokens ?? 0, for: requester, rules: rules, on: eventLoop))
    }

    private func routeWithReservation(
        _ candidates: ArraySlice<RouteDecision>, promptTokens: Int64, for requester: Requester, rules: Rules, on eventLoop: any EventLoop
    ) -> EventLoopFuture<(RouteDecision, ReservationGrant)> {
        guard let decision = candidates.first else {
            return eventLoop.makeFailedFuture(RPCError.internalError("no tier to route to"))
        }
        let amount = rules.prices.price(for: decision.model)?.cost(inputTokens: promptTokens, outputTokens: decision.maxTokens) ?? .zero
        return takeReservation(
            amount: amount, ttlSeconds: 600, for: requester.attributes(model: decision.model), owner: requester.caller?.uid, rules: rules,
            on: eventLoop
        ).map { (decision, $0) }
            .flatMapError { error in
                guard error is BudgetExceeded, candidates.count > 1 else { return eventLoop.makeFailedFuture(error) }
                return self.routeWithReservation(candidates.dropFirst(), promptTokens: promptTokens, for: requester, rules: rules, on: eventLoop)
            }
    }

    static func writeRoute(
        _ decision: RouteDecision, routeId: String, promptTokens: Int64?, exact: Bool, rules: Rules, grant: ReservationGrant?,
        into writer: inout JSONWriter
    ) {
        writer.beginObject()
        writer.field("model", decision.model)
        writer.field("routeId", routeId)
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
}
