import CostdCore
import CostdProtocol
import Logging
import NIOCore

/// `record` and `estimate`: pricing calls and counting them against the budgets.
extension CostdEngine {
    /// Prices a call from `params`: the explicit `costUsd`, or the price table.
    func price(model: String, usage: Usage, explicit: Money?, rules: Rules) throws(RPCError) -> Money {
        if let explicit { return explicit }
        do {
            return try rules.prices.cost(model: model, usage: usage)
        } catch {
            switch error {
            case .unknownModel(let model): throw .unknownModel(model)
            case .cachedTokensExceedInput, .noImagePrice: throw .invalidParams(error.description)
            }
        }
    }

    /// One call to count, however it came in (`record`, or the HTTP endpoint).
    struct RecordCall {
        /// Where a routing saving is measured from.
        enum SavingsBase {
            /// The model the caller asked for (or the baseline when it asked for none), when
            /// costd routed the call elsewhere: a `routeId`'s decision, or the HTTP endpoint's.
            case requested(String)
            /// costd did not route the call.
            case none
        }

        var model: String
        var usage: Usage
        var explicitCost: Money? = nil
        var cached = false
        var user: String? = nil
        var feature: String? = nil
        var clientRecordId: String? = nil
        /// An id costd made for the record (not remembered: costd sends it once).
        var madeRecordId: String? = nil
        var reservation: String? = nil
        var savingsBase = SavingsBase.none
        var estimated = false
    }

    /// Prices `call`, makes its record and counts it in the store: the receipt once durable.
    func record(_ call: RecordCall, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError)
        -> EventLoopFuture<RecordReceipt>
    {
        let rules = self.rules
        let cost = try price(model: call.model, usage: call.usage, explicit: call.explicitCost, rules: rules)
        let routingSaved: Money
        switch call.savingsBase {
        case _ where call.cached || call.usage.images > 0: routingSaved = .zero
        case .requested(let requested): routingSaved = routingSavings(model: call.model, against: requested, usage: call.usage, cost: cost, rules: rules)
        case .none: routingSaved = .zero
        }
        let now = clock.nowMillis
        var record = SpendRecord(
            recordId: call.clientRecordId ?? call.madeRecordId ?? makeRecordId(),
            unixMillis: now,
            day: dayKey(unixMillis: now),
            model: call.model,
            user: call.user ?? caller?.userName,
            feature: call.feature,
            unit: caller?.unit,
            unixUser: caller?.userName,
            cost: cost,
            cached: call.cached,
            inputTokens: call.usage.inputTokens,
            outputTokens: call.usage.outputTokens,
            cachedInputTokens: call.usage.cachedInputTokens,
            routingSaved: routingSaved,
            estimated: call.estimated
        )
        record.budgets = rules.budget.scopedBudgets(matching: SpendAttributes(record)).map(\.scope.key)
        let logger = self.logger
        let metrics = self.metrics
        let alerts = self.alerts
        return store.record(record, rememberId: call.clientRecordId != nil, reservation: call.reservation, budget: rules.budget, on: eventLoop)
            .map { receipt in
                if !receipt.duplicate {
                    for alert in receipt.alerts { alert.log(to: logger) }
                    // The ledger has them in its alert log (with Redis they come through the stream,
                    // and this finds nothing new yet).
                    if !receipt.alerts.isEmpty { alerts.deliver() }
                    if !receipt.record.cached { metrics?.recorded(receipt.record) }
                }
                return receipt
            }
    }

    /// Counts what a hit on an entry stored with its answer's cost saved, for `cacheGet` and the
    /// HTTP endpoint alike: a cached record at that cost, made by costd and not waited for (it is
    /// not spend, and a hit must stay fast). Returns its id, the hit's `hitId`.
    func countCacheSaving(
        model: String, cost: Money, usage: Usage = Usage(inputTokens: 0, outputTokens: 0), user: String?, feature: String?,
        caller: CallerIdentity?, on eventLoop: any EventLoop
    ) -> String {
        let id = makeRecordId()
        var saving = RecordCall(model: model, usage: usage, explicitCost: cost, cached: true, user: user, feature: feature)
        saving.madeRecordId = id
        let logger = self.logger
        do {
            try record(saving, caller: caller, on: eventLoop).whenFailure {
                logger.warning("A cache hit's saving was not recorded", metadata: ["hit": "\(id)", "error": "\($0)"])
            }
        } catch {
            logger.warning("A cache hit's saving was not recorded", metadata: ["hit": "\(id)", "error": "\(error)"])
        }
        return id
    }

    /// `{model, inputTokens, outputTokens, cachedInputTokens?, images?, batch?, cached?, user?,
    /// feature?, costUsd?, recordId?, reservation?, routeId?, hitId?}` → `{costUsd, day, month,
    /// alerts, routingSavedUsd?}` once durable.
    ///
    /// `{cached: true, hitId}` names a hit whose saving costd counted when it served it: it is
    /// not counted again (`{recordId: hitId, costUsd: 0, savedUsd: 0, countedAtHit: true}`).
    func record(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError)
        -> EventLoopFuture<[UInt8]>
    {
        if let hitId = try params.string("hitId", maxLength: 128) {
            guard try params.bool("cached") == true else { throw .invalidParams("'hitId' names a cache hit: it needs 'cached': true") }
            _ = try params.requireName("model")
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("recordId", hitId)
            writer.field("costUsd", Money.zero)
            writer.field("savedUsd", Money.zero)
            writer.field("countedAtHit", true)
            writer.endObject()
            return eventLoop.makeSucceededFuture(writer.bytes)
        }
        let model = try params.requireName("model")
        let images = try params.count("images", max: 1_000_000) ?? 0
        let explicitCost = try params.money("costUsd")
        // Token counts are required unless the call is priced otherwise (images, or an explicit cost).
        let tokensRequired = images == 0 && explicitCost == nil
        let inputTokens = tokensRequired ? try params.requireCount("inputTokens") : try params.count("inputTokens") ?? 0
        let outputTokens = tokensRequired ? try params.requireCount("outputTokens") : try params.count("outputTokens") ?? 0
        let usage = Usage(
            inputTokens: inputTokens,
            outputTokens: outputTokens,
            cachedInputTokens: try params.count("cachedInputTokens") ?? 0,
            cacheWriteInputTokens: try params.count("cacheWriteInputTokens") ?? 0,
            images: images,
            imageQuality: try params.name("imageQuality") ?? "standard",
            batch: try params.bool("batch") ?? false
        )
        guard usage.cachedInputTokens + usage.cacheWriteInputTokens <= usage.inputTokens else {
            throw .invalidParams("cachedInputTokens plus cacheWriteInputTokens exceed inputTokens")
        }
        let clientRecordId = try params.name("recordId")
        if let clientRecordId, clientRecordId.isEmpty { throw .invalidParams("'recordId' must not be empty") }
        var call = RecordCall(
            model: model, usage: usage, explicitCost: explicitCost, cached: try params.bool("cached") ?? false,
            user: try params.name("user"), feature: try params.name("feature"), clientRecordId: clientRecordId,
            reservation: try params.name("reservation"))
        let routeId = try params.string("routeId", maxLength: 128)
        var routeIgnored: String? = nil
        if let routeId {
            switch claimRoute(routeId, model: model) {
            case .success(let requested): call.savingsBase = .requested(requested)
            case .failure(let reason): routeIgnored = reason.rawValue
            }
        }
        return try record(call, caller: caller, on: eventLoop).map { receipt in
            var writer = JSONWriter(reservingCapacity: 384)
            CostdEngine.writeReceipt(receipt, routeId: routeId, routeIgnored: routeIgnored, to: &writer)
            return writer.bytes
        }
    }

    /// `{model, inputTokens, maxOutputTokens, user?, feature?, ttl?}` → `{reservation, amountUsd, …}`:
    /// sets the worst-case cost of a call aside against the hard budgets before the call is made,
    /// or refuses with budget exceeded (-32000). `record {reservation}` settles it.
    func reserve(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError) -> EventLoopFuture<[UInt8]> {
        let rules = self.rules
        let model = try params.requireName("model")
        let inputTokens = try params.requireCount("inputTokens")
        let maxOutputTokens = try params.requireCount("maxOutputTokens")
        let attributes = CostdEngine.attributes(user: try params.name("user"), feature: try params.name("feature"), model: model, caller: caller)
        guard let price = rules.prices.price(for: model) else { throw .unknownModel(model) }
        let amount = price.cost(inputTokens: inputTokens, outputTokens: maxOutputTokens)
        let ttlSeconds = try params.count("ttl", max: 86_400) ?? 600
        guard ttlSeconds > 0 else { throw .invalidParams("'ttl' must be at least 1 second") }
        return takeReservation(amount: amount, ttlSeconds: ttlSeconds, for: attributes, owner: caller?.uid, rules: rules, on: eventLoop).map { grant in
            var writer = JSONWriter()
            writer.beginObject()
            CostdEngine.writeGrantFields(grant, into: &writer)
            writer.endObject()
            return writer.bytes
        }
    }

    /// The attributes scoped budgets match a call by, as its record will carry them: `user`
    /// defaults to the caller's Unix user, as in `record`.
    static func attributes(user: String?, feature: String?, model: String, caller: CallerIdentity?) -> SpendAttributes {
        SpendAttributes(user: user ?? caller?.userName, feature: feature, unixUser: caller?.userName, unit: caller?.unit, model: model)
    }

    /// Sets `amount` aside against the hard budgets (the host's, and the scoped ones a call with
    /// `attributes` counts toward), for `owner` (the uid that may release it).
    func takeReservation(
        amount: Money, ttlSeconds: Int64, for attributes: SpendAttributes, owner: UInt32?, rules: Rules, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ReservationGrant> {
        let now = clock.nowMillis
        let day = dayKey(unixMillis: now)
        let request = ReservationRequest(
            id: CostdEngine.reservationId(owner: owner), amount: amount, day: day, month: PeriodCalendar.monthKey(ofDay: day),
            nowMillis: now, expiresAtMillis: now + ttlSeconds * 1000,
            budgets: rules.budget.scopedBudgets(matching: attributes).map(\.scope.key)
        )
        return store.reserve(request, budget: rules.budget, on: eventLoop)
    }

    /// Writes the fields of a grant into an object the caller has begun.
    static func writeGrantFields(_ grant: ReservationGrant, into writer: inout JSONWriter) {
        writer.field("reservation", grant.id)
        writer.field("amountUsd", grant.amount)
        writer.field("expiresAt", grant.expiresAtMillis)
        writer.field("day") { grant.day.write(to: &$0) }
        writer.field("month") { grant.month.write(to: &$0) }
    }

    /// `{reservation}` → `{released:Bool}`: the caller's own reservation, or anyone's for an admin.
    func releaseReservation(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError) -> EventLoopFuture<[UInt8]> {
        guard let id = try params.name("reservation") else { throw .invalidParams("'reservation' is required") }
        try requireReservationOwner(id, caller: caller)
        return store.release(reservation: id, on: eventLoop).map { released in
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("released", released)
            writer.endObject()
            return writer.bytes
        }
    }

    /// Why a `routeId` a record carried claims no routing saving.
    enum UnclaimedRoute: String, Error {
        case unknown = "unknown or expired routeId (or already claimed by another record)"
        case otherModel = "the call used another model than the one routed to"
    }

    /// The model a `routeId`'s caller asked for, if costd routed that call to `model`. A
    /// decision is claimed once.
    func claimRoute(_ routeId: String, model: String) -> Result<String, UnclaimedRoute> {
        let now = clock.nowMillis
        guard routeId.hasPrefix(routeIdPrefix), let number = UInt64(routeId.dropFirst(routeIdPrefix.count)),
            let decision = issuedRoutes.withLock({ $0.claim(number, nowMillis: now) })
        else { return .failure(.unknown) }
        guard decision.routedModel == model else { return .failure(.otherModel) }
        return .success(decision.requestedModel)
    }

    static func writeReceipt(_ receipt: RecordReceipt, routeId: String? = nil, routeIgnored: String? = nil, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("recordId", receipt.record.recordId)
        writer.field("costUsd", receipt.record.spend)
        if receipt.record.cached { writer.field("savedUsd", receipt.record.cost) }
        if routeId != nil { writer.field("routingSavedUsd", receipt.record.routingSaved) }
        if let routeIgnored { writer.field("routeIgnored", routeIgnored) }
        writer.field("day") { receipt.day.write(to: &$0) }
        writer.field("month") { receipt.month.write(to: &$0) }
        writer.field("alerts") { writer in
            writer.beginArray()
            for alert in receipt.alerts {
                alert.write(to: &writer)
                writer.comma()
            }
            writer.endArray()
        }
        if receipt.duplicate { writer.field("duplicate", true) }
        if receipt.backlogged { writer.field("backlogged", true) }
        writer.endObject()
    }

    /// What the same usage costs on the `requested` model minus what it costs on the routed
    /// `model`, both from the price table (`cost`, the call's own, when the routed model has no
    /// price): the saving routing made. Negative when costd routed a call up to a dearer model,
    /// so that the total is what routing really did; zero when the call used that model, or
    /// when the requested model has no price.
    func routingSavings(model: String, against requested: String, usage: Usage, cost: Money, rules: Rules) -> Money {
        guard model != requested, let requestedPrice = rules.prices.price(for: requested),
            let requestedCost = try? requestedPrice.cost(of: usage, model: requested)
        else { return .zero }
        let routedCost = (try? rules.prices.price(for: model)?.cost(of: usage, model: model)) ?? cost
        return requestedCost - routedCost
    }

    /// `{model, dailyRequests, avgInputTokens, avgOutputTokens, days?}` → `{dailyUsd, monthlyUsd}`.
    ///
    /// Averages may have fractions (to a thousandth of a token); the totals are exact and
    /// rounded once.
    func estimate(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let rules = self.rules
        let model = try params.requireString("model", maxLength: 256)
        guard let price = rules.prices.price(for: model) else { throw .unknownModel(model) }
        guard let dailyRequests = try params.decimal("dailyRequests", decimals: 3),
            let averageInput = try params.decimal("avgInputTokens", decimals: 3),
            let averageOutput = try params.decimal("avgOutputTokens", decimals: 3)
        else { throw .invalidParams("'dailyRequests', 'avgInputTokens' and 'avgOutputTokens' are required") }
        let days = try params.count("days", max: 3_660) ?? 30
        guard days > 0 else { throw .invalidParams("'days' must be at least 1") }
        // milli-tokens × nanos-per-million-tokens: divide by 10^3 × 10^6 for nanos.
        let perRequestNumerator = Int128(averageInput) * Int128(price.inputPerMillion.nanos)
            + Int128(averageOutput) * Int128(price.outputPerMillion.nanos)
        let perRequest = Money.divideRounded(perRequestNumerator, by: 1_000_000_000)
        let daily = Money.divideRounded(perRequestNumerator * Int128(dailyRequests), by: 1_000_000_000_000)
        let monthly = Money.divideRounded(perRequestNumerator * Int128(dailyRequests) * Int128(days), by: 1_000_000_000_000)
        writer.beginObject()
        writer.field("model", model)
        writer.field("perRequestUsd", Money(nanos: Int64(clamping: perRequest)))
        writer.field("dailyUsd", Money(nanos: Int64(clamping: daily)))
        writer.field("monthlyUsd", Money(nanos: Int64(clamping: monthly)))
        writer.field("days", days)
        writer.endObject()
    }
}
