/// The LLM calls the HTTP endpoint understands: which upstream each goes to, how its usage is
/// reported, and where its output limit is set. Other paths under `/v1/` pass through unchanged.
public struct ProviderEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case chatCompletions = "/chat/completions"
        case completions = "/completions"
        case embeddings = "/embeddings"
        case responses = "/responses"
        case messages = "/messages"
    }

    public let kind: Kind

    /// The endpoint for a path below `/v1` (`/chat/completions`), or nil for any other path.
    public init?(path: String) {
        guard let kind = Kind(rawValue: path) else { return nil }
        self.kind = kind
    }

    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var path: String { kind.rawValue }

    /// How metrics name calls to it: `http.chat.completions`.
    public var metricsLabel: String { "http" + String(path.map { $0 == "/" ? "." : $0 }) }
    public var description: String { "/v1" + kind.rawValue }

    /// The upstream's name in `[upstreams.NAME]`.
    public var upstream: String { kind == .messages ? "anthropic" : "openai" }

    /// Anthropic's shapes (usage fields, events), or OpenAI's.
    public var isAnthropic: Bool { kind == .messages }

    /// Whether answers can stream (everything but embeddings).
    public var canStream: Bool { kind != .embeddings }

    /// The request fields that bound the answer's length, the first one present counts.
    public var maxOutputTokenFields: [String] {
        switch kind {
        case .chatCompletions: ["max_completion_tokens", "max_tokens"]
        case .completions, .messages: ["max_tokens"]
        case .responses: ["max_output_tokens"]
        case .embeddings: []
        }
    }

    /// Whether OpenAI's `stream_options.include_usage` applies (the streams of chat and
    /// completions leave usage out unless asked).
    public var needsStreamUsageOption: Bool {
        kind == .chatCompletions || kind == .completions
    }

    /// The usage in a provider's `usage` object, in costd's terms (input tokens include the
    /// cached and cache-written ones). Nil when the object has none of the counts.
    public func usage(from usage: JSONValue?) -> Usage? {
        guard case .object(let object)? = usage else { return nil }
        func count(_ value: JSONValue?) -> Int64 { value?.numberValue?.int64 ?? 0 }
        if isAnthropic {
            guard object["input_tokens"] != nil || object["output_tokens"] != nil else { return nil }
            let cacheRead = count(object["cache_read_input_tokens"])
            let cacheWrite = count(object["cache_creation_input_tokens"])
            return Usage(
                inputTokens: count(object["input_tokens"]) + cacheRead + cacheWrite, outputTokens: count(object["output_tokens"]),
                cachedInputTokens: cacheRead, cacheWriteInputTokens: cacheWrite)
        }
        if object["prompt_tokens"] != nil {
            // Chat, completions and embeddings.
            return Usage(
                inputTokens: count(object["prompt_tokens"]), outputTokens: count(object["completion_tokens"]),
                cachedInputTokens: count(object["prompt_tokens_details"]?["cached_tokens"]))
        }
        if object["input_tokens"] != nil {
            // Responses.
            return Usage(
                inputTokens: count(object["input_tokens"]), outputTokens: count(object["output_tokens"]),
                cachedInputTokens: count(object["input_tokens_details"]?["cached_tokens"]))
        }
        return nil
    }
}

/// What a provider's stream has said so far: its usage, its model, the text it produced (to
/// count the tokens of a stream cut short), and which of its events are which.
public struct StreamObserver: Sendable {
    public enum Role: Sendable, Equatable {
        /// Content, or anything else to pass on.
        case content
        /// OpenAI's extra chunk that only carries usage (`choices: []`), there because costd asked.
        case usageOnly
        /// The last event: `[DONE]`, Anthropic's `message_stop`, or the Responses API's
        /// `response.completed` / `response.incomplete` / `response.failed`.
        case last
    }

    public let endpoint: ProviderEndpoint
    public private(set) var usage: Usage?
    public private(set) var model: String?
    public private(set) var outputText = ""

    public init(endpoint: ProviderEndpoint) {
        self.endpoint = endpoint
    }

    public mutating func observe(_ event: ServerSentEvent) -> Role {
        if event.isDone { return .last }
        guard let data = try? JSONParser.parse(event.data), case .object(let object) = data else {
            return .content
        }
        if endpoint.isAnthropic { return observeAnthropic(object) }
        if endpoint.kind == .responses { return observeResponses(event.name ?? object["type"]?.stringValue, object) }
        if model == nil { model = object["model"]?.stringValue }
        for choice in object["choices"]?.arrayValue ?? [] {
            if let text = choice["delta"]?["content"]?.stringValue ?? choice["text"]?.stringValue { outputText += text }
        }
        if let usage = endpoint.usage(from: object["usage"]) {
            self.usage = usage
            if object["choices"]?.arrayValue?.isEmpty ?? true { return .usageOnly }
        }
        return .content
    }

    private mutating func observeAnthropic(_ object: JSONObject) -> Role {
        switch object["type"]?.stringValue {
        case "message_start":
            model = object["message"]?["model"]?.stringValue ?? model
            usage = endpoint.usage(from: object["message"]?["usage"])
        case "content_block_delta":
            if let text = object["delta"]?["text"]?.stringValue { outputText += text }
        case "message_delta":
            // Counts here are cumulative: output always, input when the provider restates it.
            guard case .object(let counts)? = object["usage"] else { break }
            var merged = usage ?? Usage()
            let restated = endpoint.usage(from: .object(counts)) ?? Usage()
            if counts["output_tokens"] != nil { merged.outputTokens = restated.outputTokens }
            if counts["input_tokens"] != nil {
                merged.inputTokens = restated.inputTokens
                merged.cachedInputTokens = restated.cachedInputTokens
                merged.cacheWriteInputTokens = restated.cacheWriteInputTokens
            }
            usage = merged
        case "message_stop":
            return .last
        default: break
        }
        return .content
    }

    private mutating func observeResponses(_ type: String?, _ object: JSONObject) -> Role {
        switch type {
        case "response.output_text.delta":
            if let text = object["delta"]?.stringValue { outputText += text }
        case "response.created":
            model = object["response"]?["model"]?.stringValue ?? model
        case "response.completed", "response.incomplete", "response.failed":
            model = object["response"]?["model"]?.stringValue ?? model
            usage = endpoint.usage(from: object["response"]?["usage"]) ?? usage
            return .last
        default: break
        }
        return .content
    }
}
