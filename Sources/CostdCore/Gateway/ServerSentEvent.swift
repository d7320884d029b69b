/// One server-sent event, as a provider's stream sends it.
///
/// ```
/// event: message_delta            <- optional name
/// data: {"type":"message_delta"}   <- one or more data lines, joined with "\n"
///                                  <- a blank line ends the event
/// ```
///
/// `bytes` are the event exactly as received, blank line included, so that passing it on or
/// replaying it from the cache sends what the provider sent.
public struct ServerSentEvent: Sendable, Equatable {
    public var bytes: [UInt8]
    public var name: String?
    public var data: String

    public init(bytes: [UInt8], name: String?, data: String) {
        self.bytes = bytes
        self.name = name
        self.data = data
    }

    /// An event written out from its parts (`event:` line only when named).
    public init(name: String? = nil, data: String) {
        var text = ""
        if let name { text += "event: \(name)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        text += "\n"
        self.init(bytes: Array(text.utf8), name: name, data: data)
    }

    /// OpenAI's end of stream.
    public var isDone: Bool { data == "[DONE]" }
}

/// Splits a byte stream into server-sent events as the bytes arrive, whatever the chunking.
///
/// Lines end in LF or CRLF; comments (`: ...`) and fields other than `event` and `data` are kept
/// in the event's bytes but otherwise ignored. A stream that ends without a blank line leaves
/// its last event in ``pending``.
public struct SSEParser: Sendable {
    /// Bytes of the event being read.
    public private(set) var pending: [UInt8] = []
    /// Where the next unread line starts in `pending`.
    private var lineStart = 0
    private var name: String?
    private var dataLines: [Substring] = []
    /// The largest event accepted; a provider's events are small, a stream of garbage is not.
    public let maxEventBytes: Int

    public init(maxEventBytes: Int = 16 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    public struct EventTooLarge: Error, Sendable {}

    /// The events completed by `bytes`.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(EventTooLarge) -> [ServerSentEvent] {
        pending.append(contentsOf: bytes)
        var events: [ServerSentEvent] = []
        while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            var lineEnd = newline
            if lineEnd > lineStart, pending[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = pending[lineStart..<lineEnd]
            lineStart = newline + 1
            if line.isEmpty {
                if pending[..<lineStart].contains(where: { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }) {
                    events.append(ServerSentEvent(bytes: Array(pending[..<lineStart]), name: name, data: dataLines.joined(separator: "\n")))
                }
                pending.removeFirst(lineStart)
                lineStart = 0
                name = nil
                dataLines = []
                continue
            }
            readField(String(decoding: line, as: UTF8.self))
        }
        guard pending.count <= maxEventBytes else { throw EventTooLarge() }
        return events
    }

    private mutating func readField(_ line: String) {
        guard !line.hasPrefix(":") else { return }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = ""
        }
        switch field {
        case "event": name = String(value)
        case "data": dataLines.append(value)
        default: break
        }
    }
}
