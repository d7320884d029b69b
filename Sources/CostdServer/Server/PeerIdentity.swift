import CostdCore
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Who connected: the kernel's SO_PEERCRED of the socket (not anything the client says), the
/// user name of that uid, and the systemd unit of that pid.
enum PeerIdentity {
    /// User names by uid; a uid's name is looked up once per daemon.
    private static let userNames = Mutex<[UInt32: String]>([:])

    /// `struct ucred` (pid_t, uid_t, gid_t), which Glibc's Swift module does not export.
    struct Credentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static func read(_ channel: any Channel) -> EventLoopFuture<CallerIdentity?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        return provider.unsafeGetSocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
            .map { (credentials: Credentials) -> CallerIdentity? in
                CallerIdentity(
                    uid: credentials.uid,
                    pid: credentials.pid,
                    userName: userName(uid: credentials.uid),
                    unit: credentials.pid > 0 ? unit(pid: credentials.pid) : nil,
                    gid: credentials.gid
                )
            }.recover { _ in nil }
    }

    static func userName(uid: UInt32) -> String {
        if let cached = userNames.withLock({ $0[uid] }) { return cached }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        let name: String
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let pointer = entry.pw_name {
            name = String(cString: pointer)
        } else {
            name = "uid-\(uid)"
        }
        userNames.withLock { $0[uid] = name }
        return name
    }

    /// The names of a user's groups in the system's group database, and of its primary group.
    static func groupNames(userName: String?, primaryGID: UInt32?) -> [String] {
        var gids: [gid_t] = primaryGID.map { [$0] } ?? []
        if let userName {
            var count: Int32 = 64
            var found = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(userName, primaryGID ?? gid_t.max, &found, &count) == -1 {
                found = [gid_t](repeating: 0, count: Int(count))
                _ = getgrouplist(userName, primaryGID ?? gid_t.max, &found, &count)
            }
            gids += found.prefix(Int(max(0, count))).filter { $0 != gid_t.max }
        }
        var names: [String] = []
        for gid in Set(gids) {
            var entry = group()
            var result: UnsafeMutablePointer<group>? = nil
            var buffer = [CChar](repeating: 0, count: 16_384)
            if getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name {
                names.append(String(cString: name))
            }
        }
        return names
    }

    static func unit(pid: Int32) -> String? {
        guard let bytes = try? FileIO.readAll("/proc/\(pid)/cgroup") else { return nil }
        return SystemdUnit.fromCgroup(String(decoding: bytes, as: UTF8.self))
    }
}
