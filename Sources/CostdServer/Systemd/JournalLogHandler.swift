import Foundation
import Logging

/// One line per event on standard error, prefixed with the syslog priority (`<4>`) that
/// journald reads from a service's output, and with metadata as `key=value` pairs:
///
///     <4>Budget warning budget.usd=50 period=2026-11-29 scope=day spent.usd=40.01
///
/// Used when systemd connects standard error to the journal (`$JOURNAL_STREAM`).
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(logLevel: Logger.Level) {
        self.logLevel = logLevel
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        var line = "<\(JournalLogHandler.priority(event.level))>\(event.message)"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            let text = "\(value)"
            line += " \(key)=" + (text.contains(" ") || text.isEmpty ? "\"\(text.replacingOccurrences(of: "\"", with: "\\\""))\"" : text)
        }
        line = line.replacingOccurrences(of: "\n", with: " ") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
