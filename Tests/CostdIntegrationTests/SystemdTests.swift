import CostdClient
import CostdCore
import CostdPOSIX
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's notification socket.
final class NotifyListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(time: Date, message: String)] = []
    private var running = true
    /// Signalled by the reader thread once it has closed the socket; only that thread touches the
    /// descriptor, so a closed number reused elsewhere in the test process is never read from.
    private let finished = DispatchSemaphore(value: 0)

    init(directory: String) throws {
        path = directory + "/notify.sock"
        fd = try UnixSocket.bind(path, type: Int32(SOCK_DGRAM.rawValue))
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while isRunning {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 {
                    let message = String(decoding: buffer[0..<count], as: UTF8.self)
                    lock.lock()
                    received.append((Date(), message))
                    lock.unlock()
                }
            }
            close(fd)
            finished.signal()
        }.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    var messages: [(time: Date, message: String)] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    func stop() {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning { finished.wait() }
    }
}

/// Runs a program; returns its exit status and combined output.
func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    return try process.runCapturingOutput()
}

/// The systemd integration, without booting systemd: a notify socket, systemd-socket-activate,
/// systemd-analyze, and real Unix users.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SystemdTests {
    @Test func notifiesReadyStatusWatchdogReloadAndStop() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let listener = try NotifyListener(directory: daemon.directory)
        defer { listener.stop() }
        daemon.environment = ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"]
        try daemon.start()
        // READY only once the socket accepts: by then a connection must succeed at once.
        #expect(eventually(5) { listener.messages.contains { $0.message.contains("READY=1") } })
        let ready = try #require(listener.messages.first { $0.message.contains("READY=1") })
        #expect(ready.message.contains("STATUS="))
        #expect(try daemon.call("ping")["pong"] == true)
        // Watchdog pings at half of WATCHDOG_USEC: about ten a second, so ten pings span about
        // 0.9 s (bounds wide for a shared machine).
        func pings() -> [Date] { listener.messages.filter { $0.message == "WATCHDOG=1" }.map(\.time) }
        #expect(eventually(10) { pings().count >= 11 })
        let tenIntervals = pings()[10].timeIntervalSince(pings()[0])
        #expect(tenIntervals >= 0.45 && tenIntervals <= 3, "ten watchdog intervals took \(tenIntervals) s at WATCHDOG_USEC=200000")

        kill(daemon.pid!, SIGHUP)
        #expect(eventually(5) { listener.messages.contains { $0.message.contains("RELOADING=1") } })
        let reloading = try #require(listener.messages.firstIndex { $0.message.contains("RELOADING=1") })
        #expect(eventually(5) { listener.messages[(reloading + 1)...].contains { $0.message.contains("READY=1") } })

        #expect(daemon.stop() == 0)
        #expect(listener.messages.contains { $0.message.hasPrefix("STOPPING=1") })
    }

    @Test func withoutNotifySocketNothingIsSentAndNothingBreaks() throws {
        try withDaemon { (daemon: TestDaemon) throws in
            #expect(try daemon.call("ping")["pong"] == true)
            kill(daemon.pid!, SIGHUP)
            #expect(eventually { daemon.log.contains("Reloaded the configuration") })
            #expect(try daemon.call("ping")["pong"] == true)
        }
    }

    @Test func sighupSwapsRulesAndKeepsConnections() throws {
        let daemon = TestDaemon()
        defer { daemon.cleanUp() }
        let config = daemon.writeFile("costd.toml", "[budget]\ndaily = 1\n")
        try daemon.start(extraArguments: ["--config", config])
        let connection = try daemon.connect()
        #expect(try connection.call("record", ["model": "x", "costUsd": 0])["day"]?["budgetUsd"]?.money == .dollars(1))
        _ = daemon.writeFile("costd.toml", "[budget]\ndaily = 5\n[routing.tasks]\nclassification = \"complex\"\n")
        kill(daemon.pid!, SIGHUP)
        #expect(try eventually { try connection.call("record", ["model": "x", "costUsd": 0])["day"]?["budgetUsd"]?.money == .dollars(5) })
        #expect(try connection.call("route", ["task": "classification"])["model"] == "gpt-4o")
        // A broken file is rejected with its reason, and the rules before it stay.
        _ = daemon.writeFile("costd.toml", "[budget]\ndaily = \"lots\"\n")
        kill(daemon.pid!, SIGHUP)
        #expect(eventually { daemon.log.contains("Reload rejected") })
        #expect(daemon.log.contains("budget.daily"))
        #expect(try connection.call("record", ["model": "x", "costUsd": 0])["day"]?["budgetUsd"]?.money == .dollars(5))
        #expect(try connection.call("route", ["task": "classification"])["model"] == "gpt-4o")
    }

    /// costd under `systemd-socket-activate` with `listenArguments`, its stderr in the returned log.
    func socketActivated(_ listenArguments: [String], in directory: String) throws -> (Process, log: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        process.arguments = listenArguments + [TestDaemon.binary, "--state-dir", directory + "/state"]
        let log = directory + "/log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        return (process, log)
    }

    @Test func servesASocketPassedBySystemdSocketActivate() throws {
        let directory = TestDaemon.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = directory + "/activated.sock"
        let (process, log) = try socketActivated(["-l", socketPath], in: directory)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        #expect(eventually { FileManager.default.fileExists(atPath: socketPath) })
        // The first connection starts costd on the inherited socket.
        let connection = try CostdConnection(path: socketPath, timeoutSeconds: 15)
        #expect(try connection.call("ping")["pong"] == true)
        #expect(try CostdConnection(path: socketPath).call("record", ["model": "x", "costUsd": 1])["costUsd"]?.money == .dollars(1))
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(output.contains("systemd socket"), "\(output)")
        // costd never unlinks a socket it did not create.
        #expect(FileManager.default.fileExists(atPath: socketPath))
    }

    /// The unit files with the build directory as their binary directory.
    func renderedUnits() throws -> String {
        let directory = TestDaemon.makeTemporaryDirectory()
        let binaryDirectory = URL(fileURLWithPath: TestDaemon.binary).deletingLastPathComponent().path
        let template = try String(contentsOfFile: TestDaemon.packageRoot + "/systemd/costd.service.in", encoding: .utf8)
        let service = template.replacingOccurrences(of: "@bindir@", with: binaryDirectory)
            .replacingOccurrences(of: "@docdir@", with: "/usr/share/doc/costd")
        _ = FileManager.default.createFile(atPath: directory + "/costd.service", contents: Data(service.utf8))
        try FileManager.default.copyItem(atPath: TestDaemon.packageRoot + "/systemd/costd.socket", toPath: directory + "/costd.socket")
        try FileManager.default.copyItem(atPath: TestDaemon.packageRoot + "/systemd/costd-http.socket", toPath: directory + "/costd-http.socket")
        try FileManager.default.copyItem(
            atPath: TestDaemon.packageRoot + "/systemd/costd-metrics.socket", toPath: directory + "/costd-metrics.socket")
        // The service with the HTTP endpoint's network drop-in applied (a later section of the
        // same kind overrides, as a drop-in does).
        let dropIn = try String(contentsOfFile: TestDaemon.packageRoot + "/systemd/costd-network.conf", encoding: .utf8)
        _ = FileManager.default.createFile(atPath: directory + "/costd-networked.service", contents: Data((service + "\n" + dropIn).utf8))
        return directory
    }

    @Test func unitFilesVerifyWithoutAWord() throws {
        let directory = try renderedUnits()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try run(
            "/usr/bin/systemd-analyze",
            ["verify", directory + "/costd.service", directory + "/costd.socket", directory + "/costd-http.socket", directory + "/costd-metrics.socket"])
        #expect(status == 0)
        #expect(output.isEmpty, "systemd-analyze verify printed:\n\(output)")
        let networked = try run("/usr/bin/systemd-analyze", ["verify", directory + "/costd-networked.service"])
        #expect(networked.0 == 0)
        // Only the Wants= of units this directory does not hold may be mentioned.
        #expect(networked.1.split(separator: "\n").allSatisfy { $0.contains("network-online.target") || $0.contains("costd-http.socket") }, "\(networked.1)")
    }

    func exposure(_ unit: String) throws -> (score: Double, line: String) {
        let (_, output) = try run("/usr/bin/systemd-analyze", ["security", "--offline=true", unit])
        let line = try #require(output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        return (try #require(line.split(separator: " ").compactMap { Double($0) }.first), String(line))
    }

    @Test func theServiceIsHardened() throws {
        let directory = try renderedUnits()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rpcOnly = try exposure(directory + "/costd.service")
        #expect(rpcOnly.score <= 1.5, "\(rpcOnly.line)")
        // The HTTP endpoint's network opt-in opens IP sockets and nothing else.
        let networked = try exposure(directory + "/costd-networked.service")
        #expect(networked.score <= 2.0, "\(networked.line)")
        #expect(networked.score > rpcOnly.score, "the drop-in was not applied: \(networked.line)")
    }

    @Test func servesTheHTTPSocketPassedByNameBesideTheRPCSocket() throws {
        let directory = TestDaemon.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rpcPath = directory + "/costd.sock"
        let httpPath = directory + "/http.sock"
        let (process, log) = try socketActivated(["-l", rpcPath, "-l", httpPath, "--fdname=costd:http"], in: directory)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        #expect(eventually { FileManager.default.fileExists(atPath: httpPath) })
        // The first connection, to the HTTP socket, starts costd with both sockets.
        let fd = try UnixSocket.connect(httpPath)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("POST /v1/chat/completions HTTP/1.1\r\nhost: costd\r\ncontent-length: 2\r\n\r\n{}".utf8)
        #expect(write(fd, request, request.count) == request.count)
        var answer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &answer, answer.count)
        let text = String(decoding: answer.prefix(max(count, 0)), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
        #expect(text.contains("'model' is required"))
        #expect(try CostdConnection(path: rpcPath).call("ping")["pong"] == true)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(output.contains("systemd http socket"), "\(output)")
        #expect(FileManager.default.fileExists(atPath: httpPath))
    }

    /// The shipped unit's sandbox allows only Unix sockets: costd-metrics.socket passes one by
    /// name, and Prometheus text comes out of it.
    @Test func servesMetricsOnTheSocketPassedByName() throws {
        let directory = TestDaemon.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rpcPath = directory + "/costd.sock"
        let metricsPath = directory + "/metrics.sock"
        let (process, log) = try socketActivated(["-l", rpcPath, "-l", metricsPath, "--fdname=costd:metrics"], in: directory)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        #expect(eventually { FileManager.default.fileExists(atPath: metricsPath) })
        // The first connection, a scrape, starts costd with both sockets. (Raw HTTP: a Process
        // started while the socket-activated one runs is never reaped by Foundation here.)
        let scraped = try scrape(metricsPath)
        #expect(scraped.hasPrefix("HTTP/1.1 200"), "\(scraped.prefix(300))")
        #expect(scraped.contains("# TYPE costd_requests_total counter"), "\(scraped.prefix(500))")
        #expect(scraped.contains("costd_build_info{"))
        #expect(try CostdConnection(path: rpcPath).call("record", ["model": "gpt-4o", "costUsd": 2])["costUsd"]?.money == .dollars(2))
        let after = try scrape(metricsPath)
        #expect(after.contains("costd_spend_usd_total{model=\"gpt-4o\"} 2\n"), "\(after)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(output.contains("systemd metrics socket"), "\(output)")
    }

    /// `GET /metrics` over a Unix socket: the whole response, read until the server closes.
    func scrape(_ path: String) throws -> String {
        let fd = try UnixSocket.connect(path)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /metrics HTTP/1.1\r\nhost: costd\r\nconnection: close\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { throw CocoaError(.fileWriteUnknown) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            response += buffer.prefix(count)
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test func theBinaryNeedsNoExecutableStack() throws {
        let (status, output) = try run("/usr/bin/readelf", ["-lW", TestDaemon.binary])
        #expect(status == 0)
        let stack = try #require(output.split(separator: "\n").first { $0.contains("GNU_STACK") })
        let flags = stack.split(separator: " ").dropLast().last.map(String.init) ?? ""
        #expect(!flags.contains("E"), "GNU_STACK: \(stack)")
    }

    @Test func spendIsAttributedToTheCallersUnixUser() throws {
        let daemon = TestDaemon(arguments: ["--socket-mode", "0666"])
        defer { daemon.cleanUp() }
        chmod(daemon.directory, 0o755)
        try daemon.start()
        let costctl = URL(fileURLWithPath: TestDaemon.binary).deletingLastPathComponent().path + "/costctl"
        let record = [costctl, "record", "--socket", daemon.socketPath, "--model", "gpt-4o", "--input-tokens", "1000", "--output-tokens", "0"]
        let asRoot = try run(costctl, Array(record.dropFirst()))
        #expect(asRoot.0 == 0, "\(asRoot.1)")
        let asNobody = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups"] + record)
        #expect(asNobody.0 == 0, "\(asNobody.1)")
        // A client may name a user, but the Unix user is the kernel's word.
        let claimed = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups"] + record + ["--user", "root"])
        #expect(claimed.0 == 0, "\(claimed.1)")
        let report = try daemon.call("report")
        let rootName = String(cString: getpwuid(0).pointee.pw_name)
        let nobodyName = String(cString: getpwuid(65534).pointee.pw_name)
        #expect(report["byUnixUser"]?[rootName]?["requests"]?.int == 1)
        #expect(report["byUnixUser"]?[nobodyName]?["requests"]?.int == 2)
        #expect(report["byUser"]?[nobodyName]?["requests"]?.int == 1)
        #expect(report["byUser"]?[rootName]?["requests"]?.int == 2)
    }
}
