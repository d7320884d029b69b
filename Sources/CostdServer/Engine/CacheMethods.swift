import CostdCore
import CostdProtocol
import NIOCore

/// `cacheGet`, `cacheSet`, `cacheDelete`, `cacheFlush`, `cacheRelease`: the response cache.
extension CostdEngine {
    struct CacheCall {
        var key: CacheKey
        var model: String
        var namespace: String
        var isPrivate: Bool
    }

    /// The key of a cache call: model, namespace (resolved for the caller, who must be allowed
    /// in it) and canonical prompt.
    func cacheCall(_ params: Params, caller: CallerIdentity?, method: RPCMethod) throws(RPCError) -> CacheCall {
        let model = try params.requireName("model")
        let namespace = try cacheNamespace(try params.name("namespace"), caller: caller, method: method)
        guard let prompt = params.request.params["prompt"] else { throw .invalidParams("'prompt' is required") }
        return CacheCall(
            key: CacheKey(model: model, namespace: namespace.name, prompt: prompt), model: model, namespace: namespace.name,
            isPrivate: namespace.owner != nil)
    }

    /// `{model, prompt, namespace?, lease?, waitMs?, user?, feature?}` → `{hit:true, value, layer,
    /// savedUsd?, hitId?}` or `{hit:false, lease?}`.
    ///
    /// A hit on an entry stored with its answer's cost counts that cost as saved by cache (for
    /// `user` and `feature` when given), and says so: `savedUsd`, and a `hitId` that a `record
    /// {cached: true}` of the same hit carries so that it is not counted twice.
    ///
    /// The hot path is an L1 hit: answered here, the stored bytes copied once into the response.
    func cacheGet(
        _ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop, into writer: inout JSONWriter
    ) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params, caller: caller, method: .cacheGet)
        let lease = try params.bool("lease") ?? false
        let saver = CacheSaver(user: try params.name("user"), feature: try params.name("feature"), caller: caller)
        if let entry = cache.l1Value(call.key, model: call.model, namespace: call.namespace) {
            let answer = CachedAnswerBytes(entry)
            let hitId = countSaving(of: answer, model: call.model, by: saver, on: eventLoop)
            CostdEngine.writeLookup(.hit(answer, layer: .l1), hitId: hitId, leaseTTLSeconds: 0, into: &writer)
            return .written
        }
        guard cache.needsSlowPath(lease: lease) else {
            cache.countMiss(model: call.model, namespace: call.namespace)
            writer.raw("{\"hit\":false}")
            return .written
        }
        let settings = rules.configuration.cache
        let waitMillis = try params.count("waitMs", max: settings.maxLeaseWaitMillis) ?? settings.defaultLeaseWaitMillis
        let leaseTTL = settings.leaseTTLSeconds
        return .later(
            cache.lookup(call.key, model: call.model, namespace: call.namespace, lease: lease, waitMillis: waitMillis, on: eventLoop)
                .map { lookup in
                    var hitId: String? = nil
                    if case .hit(let answer, _) = lookup {
                        hitId = self.countSaving(of: answer, model: call.model, by: saver, on: eventLoop)
                    }
                    var writer = JSONWriter()
                    CostdEngine.writeLookup(lookup, hitId: hitId, leaseTTLSeconds: leaseTTL, into: &writer)
                    return writer.bytes
                }
        )
    }

    /// Who a hit's saving is counted for.
    struct CacheSaver {
        var user: String?
        var feature: String?
        var caller: CallerIdentity?
    }

    /// A hit's saving, when its entry was stored with a cost: the `hitId`.
    private func countSaving(of answer: CachedAnswerBytes, model: String, by saver: CacheSaver, on eventLoop: any EventLoop) -> String? {
        guard answer.answerCost != .zero else { return nil }
        return countCacheSaving(
            model: model, cost: answer.answerCost, user: saver.user, feature: saver.feature, caller: saver.caller, on: eventLoop)
    }

    static func writeLookup(_ lookup: CacheLookup, hitId: String?, leaseTTLSeconds: Int64, into writer: inout JSONWriter) {
        switch lookup {
        case .hit(let answer, let layer):
            writer.raw("{\"hit\":true,\"value\":")
            writer.rawJSON(answer.value)
            writer.raw(",\"layer\":\"")
            writer.rawJSON(layer.rawValue.utf8)
            writer.raw("\"")
            if let hitId {
                writer.comma()
                writer.field("savedUsd", answer.answerCost)
                writer.field("hitId", hitId)
            }
            writer.endObject()
        case .miss(let lease?):
            writer.beginObject()
            writer.field("hit", false)
            writer.field("lease", lease)
            writer.field("leaseTtl", leaseTTLSeconds)
            writer.endObject()
        case .miss(nil):
            writer.raw("{\"hit\":false}")
        }
    }

    /// `{model, prompt, value, ttl?, namespace?, lease?, costUsd? | inputTokens?, outputTokens?,
    /// cachedInputTokens?}` → `{stored:true, ttl, costUsd?}`.
    ///
    /// What the answer cost (`costUsd`, or its usage priced on `model`) is kept with it: every
    /// hit on the entry, on any layer and any daemon, counts it as saved by cache.
    func cacheSet(
        _ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop, into writer: inout JSONWriter
    ) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params, caller: caller, method: .cacheSet)
        guard params.request.params["value"] != nil, let value = params.raw("value") else {
            throw .invalidParams("'value' is required")
        }
        let answer = CachedAnswerBytes(value: value, answerCost: try answerCost(params, model: call.model))
        let settings = rules.configuration.cache
        let ttlMillis: Int64
        if let ttl = try params.decimal("ttl", decimals: 3) {
            guard ttl > 0 else { throw .invalidParams("'ttl' must be above 0 seconds") }
            guard ttl <= settings.maxTTLSeconds * 1000 else {
                throw .invalidParams("'ttl' must be at most \(settings.maxTTLSeconds) seconds")
            }
            ttlMillis = ttl
        } else {
            ttlMillis = settings.defaultTTLSeconds * 1000
        }
        let lease = try params.string("lease", maxLength: 128)
        let capacity = cache.l1.capacityBytes
        guard cache.hasRedis else {
            let outcome = cache.storeLocally(call.key, model: call.model, namespace: call.namespace, answer: answer, ttlMillis: ttlMillis, lease: lease)
            CostdEngine.writeStore(outcome, answerCost: answer.answerCost, ttlMillis: ttlMillis, l1Capacity: capacity, into: &writer)
            return .written
        }
        return .later(
            cache.store(call.key, model: call.model, namespace: call.namespace, answer: answer, ttlMillis: ttlMillis, lease: lease, on: eventLoop)
                .map { outcome in
                    var writer = JSONWriter()
                    CostdEngine.writeStore(outcome, answerCost: answer.answerCost, ttlMillis: ttlMillis, l1Capacity: capacity, into: &writer)
                    return writer.bytes
                }
        )
    }

    /// What a stored answer cost: `costUsd`, or its usage priced on the entry's model. Zero when
    /// neither is given, or when the model has no price (the value is stored all the same; hits
    /// on it then save nothing the daemon can count).
    private func answerCost(_ params: Params, model: String) throws(RPCError) -> Money {
        if let explicit = try params.money("costUsd") {
            guard explicit >= .zero else { throw .invalidParams("'costUsd' must not be negative") }
            return explicit
        }
        let inputTokens = try params.count("inputTokens")
        let outputTokens = try params.count("outputTokens")
        guard inputTokens != nil || outputTokens != nil else { return .zero }
        let usage = Usage(
            inputTokens: inputTokens ?? 0, outputTokens: outputTokens ?? 0, cachedInputTokens: try params.count("cachedInputTokens") ?? 0,
            cacheWriteInputTokens: try params.count("cacheWriteInputTokens") ?? 0)
        guard usage.cachedInputTokens + usage.cacheWriteInputTokens <= usage.inputTokens else {
            throw .invalidParams("cachedInputTokens plus cacheWriteInputTokens exceed inputTokens")
        }
        guard rules.prices.price(for: model) != nil else { return .zero }
        return try price(model: model, usage: usage, explicit: nil, rules: rules)
    }

    static func writeStore(_ outcome: CacheStoreOutcome, answerCost: Money, ttlMillis: Int64, l1Capacity: Int, into writer: inout JSONWriter) {
        let stored = outcome.storedInL1 || outcome.storedInL2 == true
        writer.beginObject()
        writer.field("stored", stored)
        if !stored {
            writer.field("reason", outcome.storedInL2 == nil ? "the value is larger than the whole L1 cache (\(l1Capacity) bytes)" : "neither L1 nor Redis took the value")
        }
        if answerCost != .zero { writer.field("costUsd", answerCost) }
        writer.field("ttl", Double(ttlMillis) / 1000)
        if let shared = outcome.storedInL2 { writer.field("shared", shared) }
        if let leaseHeld = outcome.leaseHeld { writer.field("leaseHeld", leaseHeld) }
        writer.endObject()
    }

    /// `{model, prompt, namespace?}` → `{deleted:Bool}`, here and in every daemon on the Redis.
    /// Admins only, but for an entry of the caller's own private namespace.
    func cacheDelete(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params, caller: caller, method: .cacheDelete)
        if !call.isPrivate { try requireAdmin(caller, to: "delete entries of a shared namespace", method: .cacheDelete) }
        return .later(
            cache.delete(call.key, namespace: call.namespace, on: eventLoop).map { deleted in
                var writer = JSONWriter()
                writer.beginObject()
                writer.field("deleted", deleted)
                writer.endObject()
                return writer.bytes
            }
        )
    }

    /// `{namespace?}` → `{flushed:N}`: every entry of the namespace, or every entry, everywhere.
    /// Admins only, but for the caller's own private namespace.
    func cacheFlush(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let namespace: String?
        if let requested = try params.name("namespace") {
            let resolved = try cacheNamespace(requested, caller: caller, method: .cacheFlush)
            if resolved.owner == nil { try requireAdmin(caller, to: "flush a shared namespace", method: .cacheFlush) }
            namespace = resolved.name
        } else {
            try requireAdmin(caller, to: "flush every namespace", method: .cacheFlush)
            namespace = nil
        }
        let logger = self.logger
        return .later(
            cache.flush(namespace: namespace, on: eventLoop).map { flushed in
                logger.info("Flushed cache", metadata: ["namespace": "\(namespace ?? "*")", "entries": "\(flushed)"])
                var writer = JSONWriter()
                writer.beginObject()
                writer.field("flushed", flushed)
                writer.endObject()
                return writer.bytes
            }
        )
    }

    /// `{model, prompt, namespace?, lease}` → `{released:Bool}`: gives a lease up (the call failed),
    /// so that a waiting caller takes it at once instead of waiting for it to expire.
    func cacheRelease(_ params: Params, caller: CallerIdentity?, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params, caller: caller, method: .cacheRelease)
        guard let lease = try params.string("lease", maxLength: 128) else { throw .invalidParams("'lease' is required") }
        return .later(
            cache.release(call.key, lease: lease, on: eventLoop).map { released in
                var writer = JSONWriter()
                writer.beginObject()
                writer.field("released", released)
                writer.endObject()
                return writer.bytes
            }
        )
    }
}
