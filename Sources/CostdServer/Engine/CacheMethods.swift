import CostdCore
import CostdProtocol
import NIOCore

/// `cacheGet`, `cacheSet`, `cacheDelete`, `cacheFlush`, `cacheRelease`: the response cache.
extension CostdEngine {
    struct CacheCall {
        var key: CacheKey
        var model: String
        var namespace: String
    }

    /// The key of a cache call: model, namespace and canonical prompt.
    func cacheCall(_ params: Params) throws(RPCError) -> CacheCall {
        let model = try params.requireName("model")
        let namespace = try params.name("namespace") ?? ""
        guard let prompt = params.request.params["prompt"] else { throw .invalidParams("'prompt' is required") }
        return CacheCall(key: CacheKey(model: model, namespace: namespace, prompt: prompt), model: model, namespace: namespace)
    }

    /// `{model, prompt, namespace?, lease?, waitMs?}` → `{hit:true, value, layer}` or `{hit:false, lease?}`.
    ///
    /// The hot path is an L1 hit: answered here, the stored bytes copied once into the response.
    func cacheGet(_ params: Params, on eventLoop: any EventLoop, into writer: inout JSONWriter) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params)
        let lease = try params.bool("lease") ?? false
        if let value = cache.l1Value(call.key, model: call.model, namespace: call.namespace) {
            CostdEngine.writeLookup(.hit(value: value, layer: .l1), leaseTTLSeconds: 0, into: &writer)
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
                    var writer = JSONWriter()
                    CostdEngine.writeLookup(lookup, leaseTTLSeconds: leaseTTL, into: &writer)
                    return writer.bytes
                }
        )
    }

    static func writeLookup(_ lookup: CacheLookup, leaseTTLSeconds: Int64, into writer: inout JSONWriter) {
        switch lookup {
        case .hit(let value, let layer):
            writer.raw("{\"hit\":true,\"value\":")
            writer.rawJSON(value)
            writer.raw(",\"layer\":\"")
            writer.rawJSON(layer.rawValue.utf8)
            writer.raw("\"}")
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

    /// `{model, prompt, value, ttl?, namespace?, lease?}` → `{stored:true, ttl}`.
    func cacheSet(_ params: Params, on eventLoop: any EventLoop, into writer: inout JSONWriter) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params)
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
        let lease = try params.string("lease", maxLength: 128)
        let capacity = cache.l1.capacityBytes
        guard cache.hasRedis else {
            let outcome = cache.storeLocally(call.key, model: call.model, namespace: call.namespace, value: value, ttlMillis: ttlMillis, lease: lease)
            CostdEngine.writeStore(outcome, ttlMillis: ttlMillis, l1Capacity: capacity, into: &writer)
            return .written
        }
        return .later(
            cache.store(call.key, model: call.model, namespace: call.namespace, value: value, ttlMillis: ttlMillis, lease: lease, on: eventLoop)
                .map { outcome in
                    var writer = JSONWriter()
                    CostdEngine.writeStore(outcome, ttlMillis: ttlMillis, l1Capacity: capacity, into: &writer)
                    return writer.bytes
                }
        )
    }

    static func writeStore(_ outcome: CacheStoreOutcome, ttlMillis: Int64, l1Capacity: Int, into writer: inout JSONWriter) {
        let stored = outcome.storedInL1 || outcome.storedInL2 == true
        writer.beginObject()
        writer.field("stored", stored)
        if !stored {
            writer.field("reason", outcome.storedInL2 == nil ? "the value is larger than the whole L1 cache (\(l1Capacity) bytes)" : "neither L1 nor Redis took the value")
        }
        writer.field("ttl", Double(ttlMillis) / 1000)
        if let shared = outcome.storedInL2 { writer.field("shared", shared) }
        if let leaseHeld = outcome.leaseHeld { writer.field("leaseHeld", leaseHeld) }
        writer.endObject()
    }

    /// `{model, prompt, namespace?}` → `{deleted:Bool}`, here and in every daemon on the Redis.
    func cacheDelete(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params)
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
    func cacheFlush(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let namespace = try params.name("namespace")
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
    func cacheRelease(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        let call = try cacheCall(params)
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
