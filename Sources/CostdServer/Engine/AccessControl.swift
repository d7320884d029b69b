import CostdCore
import CostdProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Who may do what (docs/SECURITY.md): decided from the kernel's peer credentials and
/// `[access]`, in one place for every method and both doors.
extension CostdEngine {
    /// Whether `caller` is an admin. A caller the kernel did not name is not.
    func isAdmin(_ caller: CallerIdentity?) -> Bool {
        guard let caller else { return false }
        return rules.configuration.access.isAdmin(uid: caller.uid, userName: caller.userName, daemonUID: daemonUID) {
            PeerIdentity.groupNames(userName: caller.userName, primaryGID: caller.gid)
        }
    }

    /// Throws permission denied (-32007) unless `caller` is an admin.
    func requireAdmin(_ caller: CallerIdentity?, to action: String, method: RPCMethod) throws(RPCError) {
        guard isAdmin(caller) else {
            throw .permissionDenied(action, method: method.rawValue, user: caller?.userName ?? "unknown")
        }
    }

    /// The cache namespace a call names (`namespace`, else `cache.default_namespace`), resolved
    /// for `caller`: a private namespace is open to its owner and to admins only.
    func cacheNamespace(_ requested: String?, caller: CallerIdentity?, method: RPCMethod) throws(RPCError) -> CacheNamespace {
        let namespace: CacheNamespace
        do {
            namespace = try CacheNamespace.resolve(requested, defaultNamespace: rules.configuration.cache.defaultNamespace, callerUID: caller?.uid)
        } catch {
            switch error {
            case .noCallerForPrivate: throw .invalidParams("'@me' needs a caller the kernel names (a Unix socket)")
            case .reserved(let name): throw .invalidParams("namespace '\(name)': names starting with '@' are reserved ('@me' is your own)")
            }
        }
        if let owner = namespace.owner, owner != caller?.uid {
            try requireAdmin(caller, to: "use another user's private namespace", method: method)
        }
        return namespace
    }

    /// The id of a new reservation: it names its owner's uid, so that only the owner (or an
    /// admin) may release it.
    static func reservationId(owner: UInt32?) -> String {
        "rsv-" + (owner.map { "u\($0)-" } ?? "") + CacheTier.makeToken()
    }

    /// Throws permission denied unless `caller` owns the reservation `id` or is an admin.
    func requireReservationOwner(_ id: String, caller: CallerIdentity?) throws(RPCError) {
        if let caller, id.hasPrefix("rsv-u\(caller.uid)-") { return }
        try requireAdmin(caller, to: "release another user's reservation", method: .releaseReservation)
    }
}
