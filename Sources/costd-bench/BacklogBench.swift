import ArgumentParser
import CostdClient
import CostdCore
import CostdPOSIX
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Acknowledging records while Redis is unreachable: each goes to the local backlog. The time
/// per record must not grow with the backlog (it once did, with its square), so this prints it
/// per thousand records from the first to the last.
struct BacklogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backlog", abstract: "Time per acknowledged record during a Redis outage, as the backlog grows.")
    @Option(help: "Records to acknowledge.") var records: Int = 20_000
    @Option(help: "Records per reported bucket.") var bucket: Int = 1_000
    @Option(help: "The costd binary (default: next to costd-bench).") var costd: String?

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let benchPath = URL(fileURLWithPath: Executable.currentPath())
        let costdBinary = costd ?? benchPath.deletingLastPathComponent().path + "/costd"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-backlog-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A Redis that never answers: nothing listens on this socket.
        let server = try ServerProcess(
            name: "costd", executable: costdBinary,
            arguments: ["--socket", "\(directory)/costd.sock", "--state-dir", "\(directory)/state", "--redis", "unix://\(directory)/absent.sock", "--log-level", "error"],
            socketPath: "\(directory)/costd.sock", log: "\(directory)/costd.log")
        defer { server.stop() }
        try server.waitUntilReady()
        let connection = try CostdConnection(path: server.socketPath)
        print("# costd-bench backlog  \(Date())  \(records) records, Redis unreachable, 1 connection")
        print("")
        print("| records backlogged | mean µs/record | p50 µs | p99 µs |")
        print("| ---: | ---: | ---: | ---: |")
        var means: [Double] = []
        var latencies: [Double] = []
        latencies.reserveCapacity(bucket)
        for index in 0..<records {
            let started = DispatchTime.now().uptimeNanoseconds
            let answer = try connection.call("record", ["model": "gpt-4o-mini", "inputTokens": 420, "outputTokens": 80, "feature": "bench"])
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1_000)
            guard answer["backlogged"] == true else { throw BenchError("record \(index) was not backlogged: \(answer)") }
            if latencies.count == bucket {
                latencies.sort()
                let mean = latencies.reduce(0, +) / Double(latencies.count)
                means.append(mean)
                print("| \(index + 1) | \(Int(mean)) | \(Int(latencies[latencies.count / 2])) | \(Int(latencies[latencies.count * 99 / 100])) |")
                fflush(nil)
                latencies.removeAll(keepingCapacity: true)
            }
        }
        if let first = means.first, let last = means.last {
            print("")
            print("last bucket / first bucket: \(String(format: "%.2f", last / first))x (flat is about 1x)")
        }
    }
}
