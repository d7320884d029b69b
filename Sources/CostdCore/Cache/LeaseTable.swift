/// Single-flight leases of one daemon: the first caller to miss a key gets a lease and makes
/// the LLM call; the others wait for it to fill the entry instead of paying for the same call.
/// (With Redis the lease lives there instead, shared by every daemon.)
public struct LeaseTable: Sendable {
    public struct Lease: Sendable, Equatable {
        public var token: String
        public var expiresAt: UInt64
    }

    public enum Outcome: Sendable, Equatable {
        case granted(token: String)
        case heldByAnother(expiresAt: UInt64)
    }

    private var leases: [CacheKey: Lease] = [:]

    public init() {}


    /// Grants `token` a lease on `key` unless a live lease is held by someone else.
    public mutating func acquire(_ key: CacheKey, token: String, now: UInt64, ttl: UInt64) -> Outcome {
        if let lease = leases[key], lease.expiresAt > now {
            return .heldByAnother(expiresAt: lease.expiresAt)
        }
        leases[key] = Lease(token: token, expiresAt: now + ttl)
        return .granted(token: token)
    }

    /// Ends the lease if `token` still holds it; returns whether it did.
    @discardableResult
    public mutating func release(_ key: CacheKey, token: String, now: UInt64) -> Bool {
        guard let lease = leases[key], lease.token == token else { return false }
        leases.removeValue(forKey: key)
        return lease.expiresAt > now
    }

    public mutating func removeExpired(now: UInt64) {
        leases = leases.filter { $0.value.expiresAt > now }
    }
}
