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
