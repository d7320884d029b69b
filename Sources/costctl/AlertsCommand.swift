import ArgumentParser
import CostdClient
import CostdCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `costctl alerts`: budget alerts, past and as they come, for people and for scripts.
///
/// Every form prints, or hands to `--exec` on stdin, each alert as exactly the params of the
/// daemon's `alert` notification: `{"id", "scope", "period", "level", "spentUsd", "budgetUsd", "at"}`.
struct Alerts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List budget alerts, or follow them as they come (--follow), running a command for each (--exec).",
        discussion: """
            Without --follow: the alerts the daemon keeps (the latest 10,000; with Redis, the fleet's),
            after --since ID, one line each, or one JSON object per line with --json.
            With --follow: the alerts after --since (or, with --state-file, after the last one
            handled), then each new one, as NDJSON; after a daemon restart it subscribes again from
            the last alert it saw. With --exec CMD, CMD runs (through /bin/sh) once per alert with
            the alert's JSON on stdin; a failing CMD is retried with backoff, and every outcome is
            logged on stderr. See examples/alerts/ for a Slack or webhook sender and its unit.
            """
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "Only alerts after this alert id.") var since: String?
    @Flag(help: "Keep going: print (or --exec) each new alert as it comes.") var follow = false
    @Option(help: "With --follow: run this command (through /bin/sh) per alert, the alert's JSON on stdin.") var exec: String?
    @Option(help: "Tries of --exec's command per alert before it is logged as given up.") var attempts = 8
    @Option(name: .customLong("state-file"), help: "With --follow: where the last handled alert's id is kept, to start after it next time.")
    var stateFile: String?

    func validate() throws {
        if let since, AlertId(since) == nil { throw ValidationError("--since must be an alert id, like 1796000000000-0") }
        if exec != nil && !follow { throw ValidationError("--exec needs --follow") }
        if stateFile != nil && !follow { throw ValidationError("--state-file needs --follow") }
        if attempts < 1 { throw ValidationError("--attempts must be at least 1") }
    }

    func run() throws {
        if follow {
            try followAlerts()
        } else {
            try listAlerts()
        }
    }

    /// The alerts kept, after `--since`: the subscription's replay, up to its `lastId`.
    private func listAlerts() throws {
        let connection = try options.connect()
        var params = JSONObject()
        params.append("since", .string(since ?? "0-0"))
        let answer = try connection.call("subscribe", .object(params))
        guard let last = answer["lastId"]?.stringValue.flatMap(AlertId.init), last > (since.flatMap(AlertId.init) ?? AlertId(millis: 0, sequence: 0))
        else { return }
        while true {
            let message = try connection.receiveJSON()
            guard message["method"]?.stringValue == "alert", let alert = message["params"] else { continue }
            print(options.json ? alert.jsonString : Alerts.line(alert))
            if alert["id"]?.stringValue.flatMap(AlertId.init) ?? last >= last { return }
        }
    }

    private func followAlerts() throws {
        var last = since ?? stateFile.flatMap(Alerts.readState)
        var failures = 0
        while true {
            do {
                try followOnce(after: &last) { failures = 0 }
            } catch {
                // The daemon went away (a restart): subscribe again from the last alert seen.
                failures += 1
                let pause = min(30.0, 0.2 * pow(2, Double(min(failures, 8))))
                Alerts.log("costd unreachable (\(error)); subscribing again from \(last ?? "now") in \(String(format: "%.1f", pause)) s")
                usleep(UInt32(pause * 1_000_000))
            }
        }
    }

    /// One subscription, until the connection ends: each alert handled, `last` kept current.
    private func followOnce(after last: inout String?, subscribed: () -> Void) throws(ClientError) {
        let connection = try CostdConnection(path: options.socketPath, timeoutSeconds: options.timeout)
        var params = JSONObject()
        if let last { params.append("since", .string(last)) }
        _ = try connection.call("subscribe", .object(params))
        subscribed()
        while true {
            guard connection.waitForInput(seconds: 60) else {
                // Quiet for a minute: a ping keeps the connection from the idle timeout.
                _ = try connection.call("ping")
                continue
            }
            let message = try connection.receiveJSON()
            guard message["method"]?.stringValue == "alert", let alert = message["params"], let id = alert["id"]?.stringValue else {
                continue
            }
            handle(alert)
            last = id
            if let stateFile { Alerts.writeState(id, to: stateFile) }
        }
    }

    /// Prints the alert (NDJSON), or runs `--exec` for it until it succeeds or the tries run out.
    private func handle(_ alert: JSONValue) {
        let json = alert.jsonString
        guard let exec else {
            // Written at once, line by line, even into a pipe.
            FileHandle.standardOutput.write(Data((json + "\n").utf8))
            return
        }
        let id = alert["id"]?.stringValue ?? "?"
        for attempt in 1...attempts {
            let status = Alerts.run(exec, input: json + "\n")
            if status == 0 {
                Alerts.log("alert \(id): delivered (attempt \(attempt))")
                return
            }
            if attempt == attempts {
                Alerts.log("alert \(id): gave up after \(attempts) attempts (last exit status \(status))")
                return
            }
            let pause = min(60.0, pow(2, Double(attempt - 1)))
            Alerts.log("alert \(id): command failed with exit status \(status) (attempt \(attempt) of \(attempts)); again in \(Int(pause)) s")
            usleep(UInt32(pause * 1_000_000))
        }
    }

    /// Runs `command` through /bin/sh with `input` on its stdin; its exit status.
    static func run(_ command: String, input: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdin = Pipe()
        process.standardInput = stdin
        do {
            try process.run()
        } catch {
            log("cannot run /bin/sh: \(error)")
            return 127
        }
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        return process.terminationStatus
    }

    static func line(_ alert: JSONValue) -> String {
        let scope = (alert["scope"]?.objectValue?.members ?? []).map { "\($0.key)=\($0.value.stringValue ?? "")" }.joined(separator: " ")
        let at = Date(timeIntervalSince1970: Double(alert["at"]?.numberValue?.int64 ?? 0) / 1000)
        return "\(alert["id"]?.stringValue ?? "?")  \(ISO8601DateFormatter().string(from: at))  \(scope.isEmpty ? "host" : scope) "
            + "\(alert["period"]?.stringValue ?? "?") budget \(alert["level"]?.stringValue ?? "?"): "
            + "\(usd(alert["spentUsd"])) of \(usd(alert["budgetUsd"]))"
    }

    static func readState(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return AlertId(id) == nil ? nil : id
    }

    /// Written to a new file and renamed over the old one, so a crash never leaves half an id.
    static func writeState(_ id: String, to path: String) {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((id + "\n").utf8)), rename(temporary, path) == 0 else {
            log("cannot write the state file \(path)")
            return
        }
    }

    static func log(_ message: String) {
        FileHandle.standardError.write(Data("costctl alerts: \(message)\n".utf8))
    }
}
