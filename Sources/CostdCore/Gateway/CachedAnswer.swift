/// An LLM answer as the HTTP endpoint keeps it in the cache, with what it cost, so that a hit
/// can say what it saved.
///
/// ```
/// {"v":1,"model":"gpt-4o-mini","cost":12345,"in":10,"out":20,"cin":0,
///  "body":{...}}                                  <- an answer that was not streamed, or
///  "events":["data: {...}\n\n", ...],"usageOnly":[7]}  <- a stream, event by event
/// ```
///
/// `usageOnly` lists the events that only carry usage, which a client that did not ask for
/// usage does not get.
public struct CachedAnswer: Sendable, Equatable {
    public var model: String
    public var cost: Money
    public var usage: Usage
    /// The JSON body of an answer that was not streamed.
    public var body: [UInt8]?
    /// The events of a streamed answer, each as received.
    public var events: [ServerSentEvent]?
    public var usageOnlyEvents: Set<Int>

    public init(model: String, cost: Money, usage: Usage, body: [UInt8]? = nil, events: [ServerSentEvent]? = nil, usageOnlyEvents: Set<Int> = []) {
        self.model = model
        self.cost = cost
        self.usage = usage
        self.body = body
        self.events = events
        self.usageOnlyEvents = usageOnlyEvents
    }

    /// Whether an event can be kept in a stored answer: stored answers are JSON, whose strings
    /// carry UTF-8 only, so an event that is not valid UTF-8 would not come back byte for byte.
    public static func canKeep(_ event: ServerSentEvent) -> Bool {
        String(validating: event.bytes, as: UTF8.self) != nil
    }

    /// The JSON stored in the cache (`body` must already be valid JSON, and every event pass
    /// ``canKeep(_:)``).
    public func encoded() -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: (body?.count ?? 0) + (events?.reduce(0) { $0 + $1.bytes.count + 8 } ?? 0) + 128)
        writer.beginObject()
        writer.field("v", 1)
        writer.field("model", model)
        writer.field("cost", cost.nanos)
        writer.field("in", usage.inputTokens)
        writer.field("out", usage.outputTokens)
        if usage.cachedInputTokens != 0 { writer.field("cin", usage.cachedInputTokens) }
        if usage.cacheWriteInputTokens != 0 { writer.field("cwin", usage.cacheWriteInputTokens) }
        if let body {
            writer.key("body")
            writer.rawJSON(body)
            writer.comma()
        }
        if let events {
            writer.field("events") { writer in
                writer.beginArray()
                for event in events {
                    writer.string(String(decoding: event.bytes, as: UTF8.self))
                    writer.comma()
                }
                writer.endArray()
            }
            writer.field("usageOnly") { writer in
                writer.beginArray()
                for index in usageOnlyEvents.sorted() {
                    writer.int(index)
                    writer.comma()
                }
                writer.endArray()
            }
        }
        writer.endObject()
        return writer.bytes
    }

    /// Reads a stored answer; nil for anything else (an entry some RPC client put there).
    public init?(bytes: [UInt8]) {
        guard case .object(let object)? = try? JSONParser.parse(bytes, limits: .init(maxDepth: 512, maxStringBytes: 1 << 30, maxElements: 1 << 24)),
            object["v"]?.numberValue?.int64 == 1, let model = object["model"]?.stringValue,
            let cost = object["cost"]?.numberValue?.int64
        else { return nil }
        func count(_ key: String) -> Int64 { object["\(key)"]?.numberValue?.int64 ?? 0 }
        let usage = Usage(
            inputTokens: count("in"), outputTokens: count("out"), cachedInputTokens: count("cin"), cacheWriteInputTokens: count("cwin"))
        var body: [UInt8]? = nil
        if let range = object.member("body")?.sourceRange { body = Array(bytes[range]) }
        var events: [ServerSentEvent]? = nil
        if let stored = object["events"]?.arrayValue {
            var parser = SSEParser()
            var parsed: [ServerSentEvent] = []
            for case .string(let text) in stored {
                guard let event = (try? parser.feed(text.utf8))?.first else { return nil }
                parsed.append(event)
            }
            events = parsed
        }
        guard body != nil || events != nil else { return nil }
        let usageOnly = Set((object["usageOnly"]?.arrayValue ?? []).compactMap { $0.numberValue?.int64.map(Int.init) })
        self.init(model: model, cost: Money(nanos: cost), usage: usage, body: body, events: events, usageOnlyEvents: usageOnly)
    }
}
