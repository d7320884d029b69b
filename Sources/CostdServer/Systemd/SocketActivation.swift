import CSystemd
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// The listening socket systemd passed in (socket activation), if any.
public enum SocketActivation {
    public static let firstDescriptor: Int32 = 3

    /// The inherited listening Unix stream socket, or nil when not socket-activated. Throws when
    /// systemd passed something costd cannot serve.
    public static func inheritedSocket() throws -> Int32? {
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        let fd = firstDescriptor
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw SystemError("socket activation: fd \(fd) is not a listening Unix stream socket", errno: EINVAL)
        }
        return fd
    }
}
