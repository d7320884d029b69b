#if canImport(Glibc)
import Glibc
#endif

/// Unix-domain socket addresses, the one place that fills a `sockaddr_un` (the daemon's stale
/// socket check, the blocking client, the benchmark and the tests all need one).
public enum UnixSocket {
    /// An errno and what was being done.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var errno: Int32
        public var operation: String
        public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
    }

    /// Calls `body` with `path` as a socket address and its length; nil when the path is too long.
    public static func withAddress<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// A new socket of `type` (stream or datagram), close-on-exec.
    public static func open(type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(Failure) -> Int32 {
        let fd = Glibc.socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(errno: errno, operation: "socket") }
        return fd
    }

    /// A new stream socket connected to `path`.
    public static func connect(_ path: String) throws(Failure) -> Int32 {
        try socket(at: path, type: Int32(SOCK_STREAM.rawValue), operation: "connect") { Glibc.connect($0, $1, $2) }
    }

    /// A new socket of `type` bound to `path`.
    public static func bind(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(Failure) -> Int32 {
        try socket(at: path, type: type, operation: "bind") { Glibc.bind($0, $1, $2) }
    }

    /// A new socket, then `call` (connect or bind) with `path`; the socket is closed if that fails.
    private static func socket(
        at path: String, type: Int32, operation: String, _ call: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws(Failure) -> Int32 {
        let fd = try open(type: type)
        let result = withAddress(path) { call(fd, $0, $1) }
        guard result == 0 else {
            let failure = Failure(errno: result == nil ? ENAMETOOLONG : errno, operation: "\(operation) \(path)")
            close(fd)
            throw failure
        }
        return fd
    }
}
