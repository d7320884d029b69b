import AsyncHTTPClient
import CostdCore
import CostdProtocol
import Logging
import NIOCore
import NIOHTTP1

/// One LLM call through the HTTP endpoint, from its request to its recorded spend. It holds
/// what the call took (a reservation, a cache lease) and gives back whatever it did not use,
/// whichever way the call ends, the client hanging up included.
struct GatewayCall {
    let gateway: HTTPGateway
    let request: HTTPGateway.Request
    let endpoint: ProviderEndpoint
    let requestId: String
    let eventLoop: any EventLoop
    let rules: Rules
    private(set) var body: GatewayRequestBody
    let requestedModel: String
    let user: String?
    let feature: String?
    let namespace: String
    /// Whether the client asked for a stream's usage chunk (costd always asks upstream).
    let clientWantsStreamUsage: Bool
    private(set) var policy: GatewayCachePolicy
    /// Whether routing is done (or was not asked for); and what a routing saving is measured from.
    private(set) var routed = false
    private var savingsBase = EngineRecordCall.SavingsBase.none
    /// Routing under a hard budget, waiting for its reservation.
    private var pendingRoute: EventLoopFuture<(RouteDecision, ReservationGrant)>?
    private(set) var reservation: String?
    private(set) var lease: String?
    /// The prompt's tokens, counted once (routing, the reservation, estimates).
    private var promptTokenCount: Int64?

    private var engine: CostdEngine { gateway.engine }
    private var settings: HTTPSettings { gateway.settings }
    private var headers: HTTPHeaders { request.head.headers }

    init(gateway: HTTPGateway, request: HTTPGateway.Request, endpoint: ProviderEndpoint, requestId: String) throws {
        self.gateway = gateway
        self.request = request
        self.endpoint = endpoint
        self.requestId = requestId
        self.eventLoop = request.eventLoop
        self.rules = gateway.engine.rules
        do {
            self.body = try GatewayRequestBody(endpoint: endpoint, bytes: request.body, limits: rules.configuration.limits.json)
        } catch {
            throw GatewayError.badRequest(error.message)
        }
        self.requestedModel = body.model
        self.clientWantsStreamUsage = body.clientWantsStreamUsage
        let headers = request.head.headers
        self.user = try GatewayCall.name(headers.first(name: "x-costd-user") ?? body.user, "x-costd-user")
        self.feature = try GatewayCall.name(headers.first(name: "x-costd-feature"), "x-costd-feature")
        let requestedNamespace = try GatewayCall.name(headers.first(name: "x-costd-namespace"), "x-costd-namespace")
        do {
            self.namespace = try gateway.engine.cacheNamespace(requestedNamespace, caller: request.caller, method: .cacheGet).name
        } catch {
            if error.code == RPCError.permissionDeniedCode { throw GatewayError.forbidden(error.message) }
            throw GatewayError.badRequest(error.message)
        }
        self.policy = GatewayCachePolicy(
            mode: gateway.settings.cache, deterministic: body.isDeterministic,
            costdCacheHeader: headers.first(name: "x-costd-cache"), cacheControl: headers[canonicalForm: "cache-control"].joined(separator: ","))
    }

    /// A user, feature or namespace: at most 256 bytes, no control characters.
    private static func name(_ value: String?, _ field: String) throws -> String? {
        guard let value else { return nil }
        guard value.utf8.count <= 256, !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw GatewayError.badRequest("\(field) must be at most 256 bytes, without control characters")
        }
        return value
    }

    /// The rest of the call, after ``routeAtOnce()`` and ``answerInL1()`` (see
    /// ``HTTPGateway/prepare(_:)``): routing that waits for a reservation, the cache past L1
    /// (Redis, single-flight), the hard budget, the upstream, recording and storing.
    mutating func run(pathAndQuery: String, responder: GatewayResponder) async throws {
        do {
            if !routed, needsRouting {
                try await routeWithReservation()
                // `prepare` could not look in L1 before the route, and so the key, was known.
                if let answer = answerInL1() {
                    await giveBack()
                    try await responder.send(hit(answer))
                    return
                }
            }
            // The call runs on its connection's loop (``GatewayWorker``), and resumes there.
            eventLoop.assertInEventLoop()
            let key = cacheKey
            if policy.lookup, let answer = try await lookUp(key) {
                await giveBack()
                try await responder.send(hit(answer))
                return
            }
            // Only a call that goes upstream costs anything: a hit is served whatever the budget.
            try await reserveAgainstHardBudget()
            guard let upstream = gateway.upstreams.upstream(named: endpoint.upstream) else {
                throw GatewayError.notFound("no upstream named '\(endpoint.upstream)'")
            }
            body.requestStreamUsage()
            let response = try await gateway.send(
                to: upstream, pathAndQuery: pathAndQuery, method: .POST, headers: headers, body: body.encoded(), on: eventLoop)
            eventLoop.assertInEventLoop()
            if response.status != .ok {
                try await passError(response, responder: responder)
            } else if body.streams, response.headers.first(name: "content-type")?.contains("text/event-stream") == true {
                try await stream(response, key: key, responder: responder)
            } else {
                try await whole(response, key: key, responder: responder)
            }
        } catch {
            await giveBack()
            throw error
        }
    }

    // MARK: - Before the upstream

    private mutating func promptTokens() -> Int64 {
        if let promptTokenCount { return promptTokenCount }
        let count = engine.promptTokens(.string(body.promptText), rules: rules).tokens
        promptTokenCount = count
        return count
    }

    /// Whether costd is to pick the model: `"model": "auto"`, or an `x-costd-task` header.
    var needsRouting: Bool { requestedModel == "auto" || headers.first(name: "x-costd-task") != nil }

    /// Routes the call if that needs no waiting (always, but for routing under a hard budget,
    /// whose reservation ``routeWithReservation()`` waits for); false when it must wait.
    mutating func routeAtOnce() -> Bool {
        guard needsRouting else { return true }
        let requester = CostdEngine.Requester(user: user, feature: feature, caller: request.caller)
        switch engine.plannedRoute(task: headers.first(name: "x-costd-task"), promptTokens: promptTokens(), for: requester, rules: rules, on: eventLoop) {
        case .decided(let decision):
            apply(decision, grant: nil)
            return true
        case .reserving(let reserving):
            // Routing under a hard budget: the reservation is part of the decision.
            pendingRoute = reserving
            return false
        }
    }

    private mutating func routeWithReservation() async throws {
        guard let pendingRoute else { return }
        self.pendingRoute = nil
        let (decision, grant) = try await budgetChecked(pendingRoute)
        apply(decision, grant: grant)
    }

    private mutating func apply(_ decision: RouteDecision, grant: ReservationGrant?) {
        body.setModel(decision.model)
        body.setMaxOutputTokensIfMissing(decision.maxTokens)
        reservation = grant?.id
        routed = true
        savingsBase = decision.model == requestedModel ? .none : .requested(requestedModel == "auto" ? rules.configuration.baselineModel : requestedModel)
    }

    /// The cache key: the endpoint and the request as it goes upstream (after routing).
    var cacheKey: CacheKey {
        CacheKey(model: body.model, namespace: namespace, prompt: body.cacheKeyPrompt)
    }

    /// The call's answer from L1, when the cache policy lets it be looked up (counted as a hit).
    func answerInL1() -> CachedAnswer? {
        guard policy.lookup, let entry = engine.cache.l1Value(cacheKey, model: body.model, namespace: namespace) else { return nil }
        guard let answer = CachedAnswer(bytes: entry.value) else { return nil }
        countSaving(answer)
        return answer
    }

    /// A hit's response: the stored answer, streamed or whole as asked.
    func hit(_ answer: CachedAnswer) -> GatewayResponse {
        var headers = HTTPHeaders()
        headers.add(name: "x-costd-cache", value: "hit")
        headers.add(name: "x-costd-cost-usd", value: "0")
        headers.add(name: "x-costd-saved-usd", value: answer.cost.decimalString)
        addCostdHeaders(&headers)
        if body.streams, let (events, usageOnly) = answer.events(for: endpoint) {
            headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
            headers.add(name: "cache-control", value: "no-cache")
            let parts = events.enumerated().filter { clientWantsStreamUsage || !usageOnly.contains($0.offset) }.map(\.element.bytes)
            return GatewayResponse(status: .ok, headers: headers, parts: parts, streamed: true)
        }
        headers.add(name: "content-type", value: "application/json")
        return GatewayResponse(status: .ok, headers: headers, parts: [answer.body(for: endpoint) ?? []], streamed: false)
    }

    /// Counts what a hit saved, as `cacheGet` does: the stored cost, for the call's user and feature.
    private func countSaving(_ answer: CachedAnswer) {
        _ = engine.countCacheSaving(
            model: body.model, cost: answer.cost, usage: answer.usage, user: user, feature: feature, caller: request.caller, on: eventLoop)
    }

    /// With a hard budget on, the call's worst case is reserved before it goes upstream
    /// (unless routing reserved already).
    private mutating func reserveAgainstHardBudget() async throws {
        let attributes = CostdEngine.attributes(user: user, feature: feature, model: body.model, caller: request.caller)
        guard reservation == nil, rules.budget.hasHardBudget(for: attributes) else { return }
        guard let price = rules.prices.price(for: body.model) else {
            throw GatewayError.badRequest(
                "costd has no price for model '\(body.model)', so it cannot keep the hard budget; add the model under [prices]")
        }
        let outputTokens = endpoint.kind == .embeddings ? 0 : body.maxOutputTokens ?? settings.defaultMaxOutputTokens
        let amount = price.cost(inputTokens: promptTokens(), outputTokens: outputTokens)
        reservation = try await budgetChecked(
            engine.takeReservation(amount: amount, ttlSeconds: 600, for: attributes, owner: request.caller?.uid, rules: rules, on: eventLoop)
        ).id
    }

    /// Waits for a reservation; a full budget becomes 429, a store that cannot answer 503.
    private func budgetChecked<Value: Sendable>(_ future: EventLoopFuture<Value>) async throws -> Value {
        do {
            return try await future.value()
        } catch {
            let rpcError = CostdEngine.rpcError(error, logger: gateway.logger)
            if rpcError.code == RPCError.budgetExceededCode { throw GatewayError.budgetExceeded(rpcError.message) }
            throw GatewayError.unavailable(rpcError.message)
        }
    }

    /// The stored answer, or nil (and a lease when this call is to fill the entry).
    /// Past L1 (which ``answerInL1()`` has already looked in): Redis, or the single-flight wait.
    private mutating func lookUp(_ key: CacheKey) async throws -> CachedAnswer? {
        let value: [UInt8]?
        let wait = rules.configuration.cache.defaultLeaseWaitMillis
        switch try await engine.cache.lookup(key, model: body.model, namespace: namespace, lease: true, waitMillis: wait, on: eventLoop).value() {
        case .hit(let stored, _): value = stored.value
        case .miss(let lease):
            self.lease = lease
            value = nil
        }
        // An entry some RPC client put there is not an answer: the call goes upstream and its
        // answer replaces it.
        guard let value, let answer = CachedAnswer(bytes: value) else { return nil }
        countSaving(answer)
        return answer
    }

    // MARK: - The upstream's answer

    /// An upstream error: passed on with its status and body, never cached; spend recorded only
    /// if the upstream reported usage.
    private mutating func passError(_ response: UpstreamClient.Response, responder: GatewayResponder) async throws {
        let bytes = try await collect(response)
        if let usage = endpoint.usage(from: (try? JSONParser.parse(bytes))?["usage"]) {
            _ = await recordSpend(usage, estimated: false)
        }
        await giveBack()
        var headers = HTTPGateway.passedOn(response.headers)
        headers.add(name: "x-costd-cache", value: policy.label)
        addCostdHeaders(&headers)
        try await responder.respond(response.status, headers: headers, body: bytes)
    }

    private mutating func whole(_ response: UpstreamClient.Response, key: CacheKey, responder: GatewayResponder) async throws {
        let bytes = try await collect(response)
        var headers = HTTPGateway.passedOn(response.headers)
        headers.add(name: "x-costd-cache", value: policy.label)
        addCostdHeaders(&headers)
        if let usage = endpoint.usage(from: (try? JSONParser.parse(bytes))?["usage"]) {
            if let spend = await recordSpend(usage, estimated: false) {
                headers.add(name: "x-costd-cost-usd", value: spend.decimalString)
                if policy.store {
                    await store(CachedAnswer(model: body.model, cost: spend, usage: usage, body: bytes), key: key)
                }
            }
        } else {
            gateway.logger.warning("An upstream answer carried no usage; not recorded", metadata: ["request": "\(requestId)", "endpoint": "\(endpoint)"])
        }
        await giveBack()
        try await responder.respond(.ok, headers: headers, body: bytes)
    }

    /// A stream: each event passed on as it completes. The whole stream is recorded and stored
    /// as its last event arrives, before that event is passed on, so that a client that sends
    /// the same request the moment the stream ends already gets a hit.
    private mutating func stream(_ response: UpstreamClient.Response, key: CacheKey, responder: GatewayResponder) async throws {
        var headers = HTTPGateway.passedOn(response.headers)
        headers.add(name: "x-costd-cache", value: policy.label)
        addCostdHeaders(&headers)
        try await responder.head(.ok, headers: headers)
        var parser = SSEParser(maxEventBytes: settings.maxResponseBytes)
        var observer = StreamObserver(endpoint: endpoint)
        var kept: [ServerSentEvent]? = policy.store ? [] : nil
        var keptBytes = 0
        var usageOnly = Set<Int>()
        var finished = false
        let clientWantsUsage = clientWantsStreamUsage
        do {
            while let buffer = try await response.nextPart() {
                for event in try parser.feed(buffer.readableBytesView) {
                    let role = observer.observe(event)
                    if kept != nil {
                        if role == .usageOnly { usageOnly.insert(kept!.count) }
                        kept!.append(event)
                        keptBytes += event.bytes.count
                        // Too large to keep, or not storable as it came: passed on, not cached.
                        if keptBytes > settings.maxResponseBytes || !CachedAnswer.canKeep(event) { kept = nil }
                    }
                    switch role {
                    case .content: try await responder.body(event.bytes)
                    case .usageOnly: if clientWantsUsage { try await responder.body(event.bytes) }
                    case .last:
                        finished = true
                        await finishStream(observer, kept: kept, usageOnly: usageOnly, key: key)
                        try await responder.body(event.bytes)
                    }
                }
            }
            if !parser.pending.isEmpty { try await responder.body(parser.pending) }
            if !finished {
                finished = true
                await finishCutShort(observer)
            }
            try await responder.end()
        } catch {
            response.exchange.cancel()
            if !finished { await finishCutShort(observer) }
            throw error
        }
    }

    private mutating func finishStream(_ observer: StreamObserver, kept: [ServerSentEvent]?, usageOnly: Set<Int>, key: CacheKey) async {
        guard let usage = observer.usage else {
            await finishCutShort(observer)
            return
        }
        guard let spend = await recordSpend(usage, estimated: false) else { return }
        if let kept {
            await store(CachedAnswer(model: body.model, cost: spend, usage: usage, events: kept, usageOnlyEvents: usageOnly), key: key)
        }
    }

    /// A stream that ended before its last event (the client hung up, or the upstream did):
    /// the tokens so far are recorded, from the upstream's usage when it came, else counted
    /// with the tokenizer and marked estimated. Nothing is cached.
    private mutating func finishCutShort(_ observer: StreamObserver) async {
        var usage = observer.usage ?? Usage()
        var estimated = false
        if observer.usage == nil || endpoint.isAnthropic {
            // Anthropic's output count is final only in its last message_delta.
            let counted = engine.promptTokens(.string(observer.outputText), rules: rules).tokens
            if observer.usage == nil { usage.inputTokens = promptTokens() }
            if counted > usage.outputTokens {
                usage.outputTokens = counted
                estimated = true
            }
            estimated = estimated || observer.usage == nil
        }
        _ = await recordSpend(usage, estimated: estimated)
        await giveBack()
    }

    // MARK: - Spend and the cache

    typealias EngineRecordCall = CostdEngine.RecordCall

    /// Records the call's spend against its reservation; the spend, or nil when it could not
    /// be recorded (logged: the answer still goes to the client, who paid for it).
    private mutating func recordSpend(_ usage: Usage, estimated: Bool) async -> Money? {
        var call = EngineRecordCall(model: body.model, usage: usage)
        call.reservation = reservation
        call.estimated = estimated
        call.savingsBase = savingsBase
        guard let receipt = await record(call) else { return nil }
        reservation = nil
        return receipt.record.spend
    }

    private func record(_ call: EngineRecordCall) async -> RecordReceipt? {
        var call = call
        call.user = user
        call.feature = feature
        do {
            return try await engine.record(call, caller: request.caller, on: eventLoop).value()
        } catch {
            gateway.logger.warning("An HTTP call was not recorded", metadata: ["request": "\(requestId)", "model": "\(call.model)", "error": "\(error)"])
            return nil
        }
    }

    private mutating func store(_ answer: CachedAnswer, key: CacheKey) async {
        let ttlMillis = (settings.cacheTTLSeconds ?? rules.configuration.cache.defaultTTLSeconds) * 1000
        let lease = self.lease
        self.lease = nil
        // The cost goes with the entry as for `cacheSet`, so an RPC hit on it counts it too.
        let stored = CachedAnswerBytes(value: answer.encoded(), answerCost: answer.cost)
        _ = try? await engine.cache.store(key, model: body.model, namespace: namespace, answer: stored, ttlMillis: ttlMillis, lease: lease, on: eventLoop).value()
    }

    /// Gives back the reservation and the lease the call still holds.
    private mutating func giveBack() async {
        if let reservation {
            self.reservation = nil
            _ = try? await engine.store.release(reservation: reservation, on: eventLoop).value()
        }
        if let lease {
            self.lease = nil
            let key = CacheKey(model: body.model, namespace: namespace, prompt: body.cacheKeyPrompt)
            _ = try? await engine.cache.release(key, lease: lease, on: eventLoop).value()
        }
    }

    private func addCostdHeaders(_ headers: inout HTTPHeaders) {
        headers.add(name: "x-costd-model", value: body.model)
        headers.add(name: "x-costd-request-id", value: requestId)
    }

    /// A whole body, up to `http.max_response_bytes` (past it: 502).
    private func collect(_ response: UpstreamClient.Response) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try await response.nextPart() {
            guard bytes.count + buffer.readableBytes <= settings.maxResponseBytes else {
                response.exchange.cancel()
                throw GatewayError.badGateway("the upstream's answer is larger than http.max_response_bytes (\(settings.maxResponseBytes) bytes)")
            }
            bytes.append(contentsOf: buffer.readableBytesView)
        }
        return bytes
    }
}

extension HTTPGateway {
    /// An upstream's response headers as passed on to the client: without those that describe
    /// the upstream connection (lengths are set anew).
    static func passedOn(_ headers: HTTPHeaders) -> HTTPHeaders {
        var passed = HTTPHeaders()
        for (name, value) in headers where !UpstreamClient.hopByHop.contains(name.lowercased()) {
            passed.add(name: name, value: value)
        }
        return passed
    }
}
