import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A server process the benchmark starts, measures and stops.
final class ServerProcess {
    let name: String
    let process: Process
    let socketPath: String

    init(name: String, executable: String, arguments: [String], socketPath: String, log: String) throws {
        self.name = name
        self.socketPath = socketPath
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Another socket of a process already started (costd's HTTP endpoint beside its RPC socket).
    init(name: String, sharing server: ServerProcess, socketPath: String) {
        self.name = name
        self.socketPath = socketPath
        self.process = server.process
    }

    var pid: Int32 { process.processIdentifier }

    /// Milliseconds until the socket accepted a connection.
    @discardableResult
    func waitUntilReady(timeout: Double = 15) throws -> Double {
        let started = DispatchTime.now().uptimeNanoseconds
        let deadline = started + UInt64(timeout * 1e9)
        while DispatchTime.now().uptimeNanoseconds < deadline {
            if let fd = try? LoadGenerator.connect(socketPath) {
                close(fd)
                return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            }
            guard process.isRunning else { throw BenchError("\(name) exited with status \(process.terminationStatus)") }
            usleep(500)
        }
        throw BenchError("\(name) did not accept connections within \(timeout) s")
    }

    /// User plus system CPU of every thread of the process, in seconds.
    var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    var openFileDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}
