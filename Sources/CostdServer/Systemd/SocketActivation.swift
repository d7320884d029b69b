import CSystemd
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// The listening sockets systemd passed in (socket activation), by role.
///
/// A socket whose `FileDescriptorName=` is `http` (the shipped `costd-http.socket`) is the
/// HTTP endpoint's, one named `metrics` (`costd-metrics.socket`) serves `/metrics`; any other
/// is the RPC socket (`costd.socket`).
public struct SocketActivation: Sendable {
    public static let firstDescriptor: Int32 = 3
    public static let httpName = "http"
    public static let metricsName = "metrics"

    public var rpc: Int32?
    public var http: Int32?
    public var metrics: Int32?

    /// The inherited sockets; none when not socket-activated. Throws when systemd passed
    /// something costd cannot serve.
    public static func inheritedSockets() throws -> SocketActivation {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                for index in 0..<Int(max(count, 0)) { free(names[index]) }
                free(names)
            }
        }
        var sockets = SocketActivation()
        guard count > 0 else { return sockets }
        for index in 0..<count {
            let fd = firstDescriptor + index
            guard sd_is_socket(fd, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 1) > 0 else {
                throw SystemError("socket activation: fd \(fd) is not a listening stream socket", errno: EINVAL)
            }
            let name = names?[Int(index)].map { String(cString: $0) }
            if name == httpName {
                sockets.http = fd
            } else if name == metricsName {
                sockets.metrics = fd
            } else if sockets.rpc == nil {
                guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
                    throw SystemError("socket activation: fd \(fd) (\(name ?? "unnamed")) is not a listening Unix stream socket", errno: EINVAL)
                }
                sockets.rpc = fd
            }
        }
        return sockets
    }
}
