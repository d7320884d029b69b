/// `[access]`: who, besides root and the daemon's own user, is an admin. Only admins may flush
/// a namespace, delete entries of a shared namespace, release others' reservations, or touch
/// other users' private (`@me`) namespaces.
///
/// Who a caller is comes from the kernel (SO_PEERCRED: uid and primary gid), never from what it
/// says; its groups are its user's groups in the system's group database, plus that primary one.
public struct AccessSettings: Sendable, Equatable {
    public var adminUsers: [String] = []
    public var adminGroups: [String] = []

    public init(adminUsers: [String] = [], adminGroups: [String] = []) {
        self.adminUsers = adminUsers
        self.adminGroups = adminGroups
    }

    /// Whether a caller is an admin: root, the user the daemon runs as, a user named in
    /// `admin_users`, or a member of a group named in `admin_groups`. `groupNames` is asked for
    /// only when the groups decide (a lookup in the group database).
    public func isAdmin(uid: UInt32, userName: String?, daemonUID: UInt32, groupNames: () -> [String]) -> Bool {
        if uid == 0 || uid == daemonUID { return true }
        if let userName, adminUsers.contains(userName) { return true }
        guard !adminGroups.isEmpty else { return false }
        return groupNames().contains { adminGroups.contains($0) }
    }
}

/// A cache namespace as a call names it, resolved for its caller.
///
/// `@me` is the caller's private namespace, keyed by its uid (`@uid:1000`), so that other users
/// can neither read nor overwrite it. Other names starting with `@` are reserved, except
/// `@uid:N`, by which its owner and admins name a private namespace.
public struct CacheNamespace: Sendable, Equatable {
    /// The namespace the cache keys use.
    public var name: String
    /// The uid of a private namespace's owner (nil: shared).
    public var owner: UInt32?

    public static let mine = "@me"
    static let privatePrefix = "@uid:"

    public enum Problem: Error, Sendable, Equatable {
        /// `@me` from a caller whose uid is not known (the HTTP endpoint over TCP).
        case noCallerForPrivate
        case reserved(String)
    }

    /// Resolves `requested` (nil: `defaultNamespace`) for the caller with `callerUID`.
    public static func resolve(_ requested: String?, defaultNamespace: String, callerUID: UInt32?) throws(Problem) -> CacheNamespace {
        let name = requested ?? defaultNamespace
        guard name.hasPrefix("@") else { return CacheNamespace(name: name, owner: nil) }
        if name == mine {
            guard let callerUID else { throw .noCallerForPrivate }
            return CacheNamespace(name: privatePrefix + String(callerUID), owner: callerUID)
        }
        if name.hasPrefix(privatePrefix), let uid = UInt32(name.dropFirst(privatePrefix.count)), name == privatePrefix + String(uid) {
            return CacheNamespace(name: name, owner: uid)
        }
        throw .reserved(name)
    }
}
