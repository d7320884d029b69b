import CSystemd
import Foundation
import Logging

/// One line per event on standard error, prefixed with the syslog priority (`<4>`) that
/// journald reads from a service's output, and with metadata as `key=value` pairs:
///
///     <4>Budget warning budget.usd=50 period=2026-11-29 scope=day spent.usd=40.01
///
/// Used when systemd connects standard error to the journal (`$JOURNAL_STREAM`).
///
/// An event with a `MESSAGE_ID` in its metadata (a budget alert) is sent to the journal as a
/// structured entry instead (`sd_journal_sendv`): `MESSAGE_ID`, `PRIORITY`, `MESSAGE`, and each
/// metadata value as `COSTD_<KEY>` (`spent.usd` → `COSTD_SPENT_USD`), so that
/// `journalctl MESSAGE_ID=…` finds every alert. Without a journal it is written as a line.
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
        if all["MESSAGE_ID"] != nil, JournalLogHandler.send(JournalLogHandler.fields(message: "\(event.message)", level: event.level, metadata: all)) {
            return
        }
        var line = "<\(JournalLogHandler.priority(event.level))>\(event.message)"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            let text = "\(value)"
            line += " \(key)=" + (text.contains(" ") || text.isEmpty ? "\"\(text.replacingOccurrences(of: "\"", with: "\\\""))\"" : text)
        }
        line = line.replacingOccurrences(of: "\n", with: " ") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// A structured entry's fields, `NAME=value`.
    public static func fields(message: String, level: Logger.Level, metadata: Logger.Metadata) -> [String] {
        var fields = ["MESSAGE=" + message, "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=costd"]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name = key == "MESSAGE_ID" ? key : "COSTD_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            fields.append(name + "=" + "\(value)".replacingOccurrences(of: "\n", with: " "))
        }
        return fields
    }

    /// Sends fields to the journal; false when it is not there.
    static func send(_ fields: [String]) -> Bool {
        let buffers = fields.map { field -> UnsafeMutableRawBufferPointer in
            let bytes = Array(field.utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            buffer.copyBytes(from: bytes)
            return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count])
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        return sd_journal_sendv(&vectors, Int32(vectors.count)) >= 0
    }
}
