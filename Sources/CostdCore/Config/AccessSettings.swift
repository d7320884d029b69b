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
