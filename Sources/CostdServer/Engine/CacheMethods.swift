import CostdCore
import CostdProtocol

/// `cacheGet`, `cacheSet`, `cacheDelete`, `cacheFlush`: the response cache.
extension CostdEngine {
    /// The key of a cache call: model, namespace and canonical prompt.
    func cacheKey(_ params: Params) throws(RPCError) -> (key: CacheKey, namespace: String) {
        let model = try params.requireString("model", maxLength: 256)
        let namespace = try params.string("namespace", maxLength: 256) ?? ""
        guard let prompt = params.request.params["prompt"] else { throw .invalidParams("'prompt' is required") }
        return (CacheKey(model: model, namespace: namespace, prompt: prompt), namespace)
    }

    /// `{model, prompt, namespace?}` → `{hit:true, value, layer:"l1"}` or `{hit:false}`.
    ///
    /// The hot path: the stored value's bytes go into the response as they are.
    func cacheGet(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let (key, _) = try cacheKey(params)
        if let entry = l1.get(key, now: CostdEngine.monotonicNanos()) {
            counters.l1Hits.add(1, ordering: .relaxed)
            writer.raw("{\"hit\":true,\"value\":")
            writer.rawJSON(entry.value)
            writer.raw(",\"layer\":\"l1\"}")
        } else {
            counters.misses.add(1, ordering: .relaxed)
            writer.raw("{\"hit\":false}")
        }
    }

    /// `{model, prompt, value, ttl?, namespace?}` → `{stored:true}`.
    func cacheSet(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let (key, namespace) = try cacheKey(params)
        guard params.request.params["value"] != nil, let value = params.raw("value") else {
            throw .invalidParams("'value' is required")
        }
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
        let now = CostdEngine.monotonicNanos()
        let stored = l1.set(key, value: value, namespace: namespace, expiresAt: now + UInt64(ttlMillis) * 1_000_000, now: now)
        counters.sets.add(1, ordering: .relaxed)
        writer.beginObject()
        writer.field("stored", stored)
        if !stored { writer.field("reason", "the value is larger than the whole L1 cache (\(l1.capacityBytes) bytes)") }
        writer.field("ttl", Double(ttlMillis) / 1000)
        writer.endObject()
    }

    /// `{model, prompt, namespace?}` → `{deleted:Bool}`.
    func cacheDelete(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let (key, _) = try cacheKey(params)
        let deleted = l1.remove(key)
        writer.beginObject()
        writer.field("deleted", deleted)
        writer.endObject()
    }

    /// `{namespace?}` → `{flushed:N}`: every entry of the namespace, or every entry.
    func cacheFlush(_ params: Params, into writer: inout JSONWriter) throws(RPCError) {
        let namespace = try params.string("namespace", maxLength: 256)
        let flushed = l1.removeAll(namespace: namespace)
        logger.info("Flushed cache", metadata: ["namespace": "\(namespace ?? "*")", "entries": "\(flushed)"])
        writer.beginObject()
        writer.field("flushed", flushed)
        writer.endObject()
    }
}
