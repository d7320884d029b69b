/// The JSON body of an LLM call coming in through the HTTP endpoint, and the changes costd
/// makes to it before it goes upstream (the routed model, a default output limit, usage on
/// streams).
public struct GatewayRequestBody: Sendable {
    public let endpoint: ProviderEndpoint
    public private(set) var object: JSONObject

    /// Reads a request body; throws a message fit for a 400 answer.
    public init(endpoint: ProviderEndpoint, bytes: [UInt8], limits: JSONParser.Limits) throws(GatewayRequestError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, limits: limits)
        } catch {
            throw GatewayRequestError("the request body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw GatewayRequestError("the request body must be a JSON object") }
        guard case .string(let model)? = object["model"], !model.isEmpty else {
            throw GatewayRequestError("'model' is required and must be a non-empty string")
        }
        guard !model.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), model.utf8.count <= 256 else {
            throw GatewayRequestError("'model' must be at most 256 bytes, without control characters")
        }
        self.endpoint = endpoint
        self.object = object
    }

    public var model: String { object["model"]?.stringValue ?? "" }

    public var streams: Bool { endpoint.canStream && object["stream"]?.boolValue == true }

    /// Whether the client itself asked for the usage chunk of an OpenAI stream.
    public var clientWantsStreamUsage: Bool { object["stream_options"]?["include_usage"]?.boolValue == true }

    /// The body's `user` (OpenAI's end-user id), or Anthropic's `metadata.user_id`.
    public var user: String? {
        object["user"]?.stringValue ?? object["metadata"]?["user_id"]?.stringValue
    }

    /// The output limit the request sets, if any.
    public var maxOutputTokens: Int64? {
        for field in endpoint.maxOutputTokenFields {
            if let value = object[field]?.numberValue?.int64, value >= 0 { return value }
        }
        return nil
    }

    /// Whether the answer to this request is the same each time: `temperature` 0 or a `seed`;
    /// embeddings always.
    public var isDeterministic: Bool {
        if endpoint.kind == .embeddings { return true }
        if let seed = object["seed"], !seed.isNull { return true }
        if let temperature = object["temperature"]?.numberValue { return temperature.int64 == 0 }
        return false
    }

    public mutating func setModel(_ model: String) {
        object.set("model", .string(model))
    }

    /// Sets the output limit when the request has none (a route's `maxTokens`).
    public mutating func setMaxOutputTokensIfMissing(_ tokens: Int64) {
        guard maxOutputTokens == nil, let field = endpoint.maxOutputTokenFields.last else { return }
        object.set(field, .int(tokens))
    }

    /// Asks an OpenAI stream for its usage (`stream_options.include_usage`), which it leaves
    /// out by default; exact spend needs it.
    public mutating func requestStreamUsage() {
        guard streams, endpoint.needsStreamUsageOption else { return }
        var options = object["stream_options"]?.objectValue ?? JSONObject()
        options.set("include_usage", .bool(true))
        object.set("stream_options", .object(options))
    }

    /// What the cache key is made of: the endpoint and the whole request except how the answer
    /// is delivered (`stream`, `stream_options`) and who asked (`user`), so that the same
    /// question asked streamed or not, by anyone, is one entry.
    public var cacheKeyPrompt: JSONValue {
        var request = object
        request.members.removeAll { $0.key == "stream" || $0.key == "stream_options" || $0.key == "user" }
        return .object(JSONObject(["endpoint": .string(endpoint.path), "request": .object(request)]))
    }

    /// The text of the prompt (messages, prompt, input, system), to count its tokens.
    public var promptText: String {
        var parts: [String] = []
        func collect(_ value: JSONValue?) {
            switch value {
            case .string(let text)?: parts.append(text)
            case .array(let elements)?:
                for element in elements {
                    if case .string = element { collect(element) } else { collect(element["content"] ?? element["text"]) }
                }
            case .object(let object)?: collect(object["content"] ?? object["text"])
            default: break
            }
        }
        collect(object["system"])
        collect(object["instructions"])
        collect(object["messages"])
        collect(object["prompt"])
        collect(object["input"])
        return parts.joined(separator: "\n")
    }

    public func encoded() -> [UInt8] {
        JSONValue.object(object).encoded()
    }
}

/// A request the endpoint refuses as malformed (HTTP 400).
public struct GatewayRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
