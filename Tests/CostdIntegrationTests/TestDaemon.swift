import CostdClient
import CostdCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real `costd` process on a socket in a temporary directory, for tests that cross the
/// process boundary. It is always stopped: use ``withDaemon(_:_:)``.
final class TestDaemon: @unchecked Sendable {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["COSTD_BIN"], !path.isEmpty { return path }
        return packageRoot + "/.build/debug/costd"
    }()

    let directory: String
    let socketPath: String
    let stateDirectory: String
    let logPath: String
    var arguments: [String]
    /// Extra environment for the daemon (NOTIFY_SOCKET, WATCHDOG_USEC, ...).
    var environment: [String: String] = [:]
    private(set) var process: Process?

    init(arguments: [String] = [], directory: String? = nil, socketPath: String? = nil) {
        let directory = directory ?? TestDaemon.makeTemporaryDirectory()
        self.directory = directory
        self.socketPath = socketPath ?? directory + "/costd.sock"
        self.stateDirectory = directory + "/state"
        self.logPath = directory + "/costd-\(UUID().uuidString.prefix(8)).log"
        self.arguments = arguments
    }

    static func makeTemporaryDirectory() -> String {
        var template = Array((NSTemporaryDirectory() + "/costd-test-XXXXXX").utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: path!)
    }

    /// Writes `text` to a file in the test directory and returns its path.
    func writeFile(_ name: String, _ text: String) -> String {
        let path = directory + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// Starts the daemon and waits until its socket accepts connections.
    func start(extraArguments: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestDaemon.binary)
        process.arguments = ["--socket", socketPath, "--state-dir", stateDirectory] + arguments + extraArguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !process.isRunning {
                throw TestDaemonError.exited(status: process.terminationStatus, log: self.log)
            }
            if let connection = try? CostdConnection(path: socketPath, timeoutSeconds: 5) {
                connection.close()
                return
            }
            usleep(5_000)
        }
        throw TestDaemonError.notReady(log: self.log)
    }

    /// Starts a daemon that is expected to fail; returns its exit status and output.
    func startExpectingFailure(extraArguments: [String] = []) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestDaemon.binary)
        process.arguments = ["--socket", socketPath, "--state-dir", stateDirectory] + arguments + extraArguments
        return try process.runCapturingOutput()
    }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    func stop() -> Int32? {
        guard let process, process.isRunning else { return self.process?.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        if log.contains("ERROR: LeakSanitizer") { Issue.record("costd leaked memory:\n\(log)") }
        return process.terminationStatus
    }

    /// SIGKILL: the daemon gets no chance to clean up.
    func killHard() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var pid: Int32? { process?.processIdentifier }

    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    func connect() throws -> CostdConnection {
        try CostdConnection(path: socketPath, timeoutSeconds: 10)
    }

    func call(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
        try connect().call(method, params)
    }

    func cleanUp() {
        killHard()
        // Under scripts/sanitize the daemon is built with AddressSanitizer: any report fails the test.
        for marker in ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"] where log.contains(marker) {
            Issue.record("costd reported a sanitizer error:\n\(log)")
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

enum TestDaemonError: Error, CustomStringConvertible {
    case exited(status: Int32, log: String)
    case notReady(log: String)

    var description: String {
        switch self {
        case .exited(let status, let log): "costd exited with status \(status):\n\(log)"
        case .notReady(let log): "costd did not accept connections in time:\n\(log)"
        }
    }
}

/// Runs `body` with a started daemon, and always stops and removes it.
func withDaemon<T>(_ arguments: [String] = [], _ body: (TestDaemon) throws -> T) throws -> T {
    let daemon = TestDaemon(arguments: arguments)
    defer { daemon.cleanUp() }
    try daemon.start()
    return try body(daemon)
}

extension CostdConnection {
    /// Sends a raw JSON text as one frame and returns the parsed answer.
    func roundTrip(_ text: String) throws -> JSONValue {
        try send(Array(text.utf8))
        return try receiveJSON()
    }
}

extension JSONValue {
    var int: Int64? { numberValue?.int64 }
    var money: Money? { numberValue.flatMap { Money(usd: $0) } }
    var errorCode: Int64? { self["error"]?["code"]?.int }
}

/// The code of the JSON-RPC error `body` throws, or nil.
func rpcErrorCode(_ body: () throws -> Any) -> Int? {
    do {
        _ = try body()
        return nil
    } catch ClientError.rpc(let code, _, _) {
        return code
    } catch {
        return nil
    }
}
