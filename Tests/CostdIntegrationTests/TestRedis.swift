import CostdPOSIX
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a Unix socket in a temporary directory, with an append-only file
/// synced on every write, so that what it acknowledged survives `kill -9` as in production.
final class TestRedis: @unchecked Sendable {
    let directory: String
    let socketPath: String
    private(set) var process: Process?
    /// More redis-server options (`--requirepass`, `--maxmemory`, ...).
    var extraArguments: [String] = []

    init() {
        directory = TestDaemon.makeTemporaryDirectory()
        socketPath = directory + "/redis.sock"
    }

    var url: String { "unix://" + socketPath }

    static var binary: String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "redis-server"
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestRedis.binary)
        process.arguments = [
            "--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700", "--dir", directory,
            "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
            "--logfile", directory + "/redis.log",
        ] + extraArguments
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try ping() { return }
            guard process.isRunning else { throw TestDaemonError.exited(status: process.terminationStatus, log: log) }
            usleep(10_000)
        }
        throw TestDaemonError.notReady(log: log)
    }

    var log: String { (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? "" }

    /// Whether redis answers PING (inline protocol over the socket).
    func ping() throws -> Bool {
        guard let fd = try? UnixSocket.connect(socketPath) else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = "PING\r\n".withCString { send(fd, $0, 6, 0) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = recv(fd, &buffer, 16, 0)
        let answer = String(decoding: buffer[0..<max(0, count)], as: UTF8.self)
        // With a password set, an unauthenticated PING is answered -NOAUTH: up all the same.
        return count > 0 && (answer.hasPrefix("+PONG") || answer.hasPrefix("-NOAUTH"))
    }

    /// Runs `redis-cli` against this server; its output.
    func cli(_ arguments: String...) throws -> String {
        try cli(arguments)
    }

    func cli(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-s", socketPath] + arguments
        let output = directory + "/cli-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }

    func killHard() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func pause() {
        if let process { kill(process.processIdentifier, SIGSTOP) }
    }

    func resume() {
        if let process { kill(process.processIdentifier, SIGCONT) }
    }

    func cleanUp() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` with a started Redis, always stopped afterwards.
func withRedis<T>(_ body: (TestRedis) throws -> T) throws -> T {
    let redis = TestRedis()
    defer { redis.cleanUp() }
    try redis.start()
    return try body(redis)
}
