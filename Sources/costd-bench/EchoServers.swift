import CostdPOSIX
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The floors: servers that do nothing but send back what they receive, over the same kind of
/// socket and with the same client as costd. The NIO one shows what costd's own work adds on top
/// of its I/O stack; the poll one what one request/response costs at all here.
enum EchoServers {
    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }
    }

    /// A SwiftNIO echo server on `threads` event loops; runs until the process ends.
    static func runNIO(path: String, threads: Int) throws -> Never {
        unlink(path)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        _ = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(unixDomainSocketPath: path).wait()
        while true { sleep(1000) }
    }

    /// A single-threaded poll(2) echo server, serving the way redis-server does (one thread,
    /// non-blocking sockets, an event loop); with `reply` false, a byte sink that reads and drops.
    static func runPoll(path: String, reply: Bool = true) throws -> Never {
        unlink(path)
        let listener = try UnixSocket.bind(path)
        guard listen(listener, 1024) == 0 else { throw BenchError("echo: cannot listen on \(path)") }
        _ = fcntl(listener, F_SETFL, O_NONBLOCK)
        var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            guard poll(&fds, nfds_t(fds.count), -1) > 0 else { continue }
            var closed: [Int] = []
            for index in fds.indices where fds[index].revents != 0 {
                let fd = fds[index].fd
                if fd == listener {
                    while true {
                        let client = accept(listener, nil, nil)
                        if client < 0 { break }
                        _ = fcntl(client, F_SETFL, O_NONBLOCK)
                        fds.append(pollfd(fd: client, events: Int16(POLLIN), revents: 0))
                    }
                    continue
                }
                let received = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if received <= 0 {
                    if received < 0 && errno == EAGAIN { continue }
                    close(fd)
                    closed.append(index)
                    continue
                }
                var offset = reply ? 0 : received
                while offset < received {
                    let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, received - offset) }
                    if written < 0 {
                        if errno == EAGAIN { usleep(10); continue }
                        break
                    }
                    offset += written
                }
            }
            for index in closed.reversed() { fds.remove(at: index) }
        }
    }
}
