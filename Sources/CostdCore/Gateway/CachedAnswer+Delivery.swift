/// A stored answer delivered the other way than it came: a streamed answer as one JSON body,
/// or a whole answer as a stream, so that a question asked once streamed and once not is one
/// cache entry. What the SDKs read is kept: text, tool calls, the finish reason and usage.
extension CachedAnswer {
    /// The answer as the events of a stream (stored ones as they came), with the indices of
    /// the usage-only events; nil when the endpoint does not stream or the body is unreadable.
    public func events(for endpoint: ProviderEndpoint) -> (events: [ServerSentEvent], usageOnly: Set<Int>)? {
        if let events { return (events, usageOnlyEvents) }
        guard let body, case .object(let object)? = try? JSONParser.parse(body) else { return nil }
        switch endpoint.kind {
        case .chatCompletions, .completions: return openAIEvents(object, chat: endpoint.kind == .chatCompletions)
        case .messages: return (anthropicEvents(object), [])
        case .responses: return (responsesEvents(object), [])
        case .embeddings: return nil
        }
    }

    /// The answer as one JSON body (a stored body as it came); nil when the events cannot be
    /// put together.
    public func body(for endpoint: ProviderEndpoint) -> [UInt8]? {
        if let body { return body }
        guard let events else { return nil }
        let objects = events.compactMap { event -> JSONObject? in
            guard !event.isDone, case .object(let object)? = try? JSONParser.parse(event.data) else { return nil }
            return object
        }
        switch endpoint.kind {
        case .chatCompletions, .completions: return openAIBody(objects, chat: endpoint.kind == .chatCompletions)
        case .messages: return anthropicBody(objects)
        case .responses:
            return objects.last { $0["type"]?.stringValue == "response.completed" }?["response"].map { $0.encoded() }
        case .embeddings: return nil
        }
    }

    // MARK: - OpenAI chat and completions

    private func openAIEvents(_ object: JSONObject, chat: Bool) -> (events: [ServerSentEvent], usageOnly: Set<Int>) {
        var base = JSONObject()
        for key in ["id", "created", "model", "system_fingerprint"] { if let value = object[key] { base.set(key, value) } }
        base.set("object", .string(chat ? "chat.completion.chunk" : "text_completion"))
        var events: [ServerSentEvent] = []
        func send(_ choices: [JSONValue], usage: JSONValue? = nil) {
            var chunk = base
            chunk.set("choices", .array(choices))
            if let usage { chunk.set("usage", usage) }
            events.append(ServerSentEvent(data: JSONValue.object(chunk).jsonString))
        }
        let choices = object["choices"]?.arrayValue ?? []
        for choice in choices {
            let index = choice["index"] ?? .int(0)
            if chat {
                var delta = choice["message"]?.objectValue ?? JSONObject()
                delta.members.removeAll { $0.key == "refusal" && $0.value.isNull }
                if let calls = delta["tool_calls"]?.arrayValue {
                    delta.set("tool_calls", .array(calls.enumerated().map { offset, call in
                        var call = call.objectValue ?? JSONObject()
                        call.set("index", .int(offset))
                        return .object(call)
                    }))
                }
                send([.object(JSONObject(["index": index, "delta": .object(delta), "finish_reason": .null]))])
            } else {
                send([.object(JSONObject(["index": index, "text": choice["text"] ?? "", "finish_reason": .null]))])
            }
        }
        for choice in choices {
            let index = choice["index"] ?? .int(0)
            let finish = choice["finish_reason"] ?? .null
            send([.object(chat ? JSONObject(["index": index, "delta": .object(JSONObject()), "finish_reason": finish])
                : JSONObject(["index": index, "text": "", "finish_reason": finish]))])
        }
        var usageOnly = Set<Int>()
        if let usage = object["usage"] {
            usageOnly.insert(events.count)
            send([], usage: usage)
        }
        events.append(ServerSentEvent(data: "[DONE]"))
        return (events, usageOnly)
    }

    private func openAIBody(_ chunks: [JSONObject], chat: Bool) -> [UInt8]? {
        guard let first = chunks.first else { return nil }
        struct Choice {
            var role = "assistant"
            var text = ""
            var finish: JSONValue = .null
            var toolCalls: [Int: JSONObject] = [:]
            var arguments: [Int: String] = [:]
        }
        var choices: [Int: Choice] = [:]
        var usage: JSONValue? = nil
        for chunk in chunks {
            if let value = chunk["usage"], !value.isNull { usage = value }
            for element in chunk["choices"]?.arrayValue ?? [] {
                let index = Int(element["index"]?.numberValue?.int64 ?? 0)
                var choice = choices[index] ?? Choice()
                if chat {
                    let delta = element["delta"]
                    if let role = delta?["role"]?.stringValue { choice.role = role }
                    if let text = delta?["content"]?.stringValue { choice.text += text }
                    for call in delta?["tool_calls"]?.arrayValue ?? [] {
                        let callIndex = Int(call["index"]?.numberValue?.int64 ?? 0)
                        var known = choice.toolCalls[callIndex] ?? JSONObject()
                        if let id = call["id"] { known.set("id", id) }
                        if let type = call["type"] { known.set("type", type) }
                        if let name = call["function"]?["name"] { known.set("name", name) }
                        choice.toolCalls[callIndex] = known
                        choice.arguments[callIndex, default: ""] += call["function"]?["arguments"]?.stringValue ?? ""
                    }
                } else if let text = element["text"]?.stringValue {
                    choice.text += text
                }
                if let finish = element["finish_reason"], !finish.isNull { choice.finish = finish }
                choices[index] = choice
            }
        }
        var body = JSONObject()
        for key in ["id", "created", "model", "system_fingerprint"] { if let value = first[key] { body.set(key, value) } }
        body.set("object", .string(chat ? "chat.completion" : "text_completion"))
        body.set("choices", .array(choices.keys.sorted().map { index in
            let choice = choices[index]!
            if !chat {
                return .object(JSONObject(["index": .int(index), "text": .string(choice.text), "finish_reason": choice.finish, "logprobs": .null]))
            }
            var message = JSONObject(["role": .string(choice.role), "content": choice.text.isEmpty && !choice.toolCalls.isEmpty ? .null : .string(choice.text)])
            if !choice.toolCalls.isEmpty {
                message.set("tool_calls", .array(choice.toolCalls.keys.sorted().map { callIndex in
                    let call = choice.toolCalls[callIndex]!
                    return .object(JSONObject([
                        "id": call["id"] ?? .null, "type": call["type"] ?? "function",
                        "function": .object(JSONObject(["name": call["name"] ?? .null, "arguments": .string(choice.arguments[callIndex] ?? "")])),
                    ]))
                }))
            }
            return .object(JSONObject(["index": .int(index), "message": .object(message), "finish_reason": choice.finish]))
        }))
        if let usage { body.set("usage", usage) }
        return JSONValue.object(body).encoded()
    }

    // MARK: - Anthropic messages

    private func anthropicEvents(_ message: JSONObject) -> [ServerSentEvent] {
        var start = message
        start.set("content", .array([]))
        start.set("stop_reason", .null)
        start.set("stop_sequence", .null)
        var startUsage = message["usage"]?.objectValue ?? JSONObject()
        startUsage.set("output_tokens", .int(0))
        start.set("usage", .object(startUsage))
        var events = [event("message_start", ["type": "message_start", "message": .object(start)])]
        for (index, block) in (message["content"]?.arrayValue ?? []).enumerated() {
            var opened = block.objectValue ?? JSONObject()
            let delta: JSONObject
            switch block["type"]?.stringValue {
            case "text":
                opened.set("text", "")
                delta = JSONObject(["type": "text_delta", "text": block["text"] ?? ""])
            case "tool_use":
                opened.set("input", .object(JSONObject()))
                delta = JSONObject(["type": "input_json_delta", "partial_json": .string((block["input"] ?? .object(JSONObject())).jsonString)])
            default:
                events.append(event("content_block_start", ["type": "content_block_start", "index": .int(index), "content_block": block]))
                events.append(event("content_block_stop", ["type": "content_block_stop", "index": .int(index)]))
                continue
            }
            events.append(event("content_block_start", ["type": "content_block_start", "index": .int(index), "content_block": .object(opened)]))
            events.append(event("content_block_delta", ["type": "content_block_delta", "index": .int(index), "delta": .object(delta)]))
            events.append(event("content_block_stop", ["type": "content_block_stop", "index": .int(index)]))
        }
        events.append(event("message_delta", [
            "type": "message_delta",
            "delta": .object(JSONObject(["stop_reason": message["stop_reason"] ?? .null, "stop_sequence": message["stop_sequence"] ?? .null])),
            "usage": .object(JSONObject(["output_tokens": message["usage"]?["output_tokens"] ?? .int(0)])),
        ]))
        events.append(event("message_stop", ["type": "message_stop"]))
        return events
    }

    private func event(_ name: String, _ members: KeyValuePairs<String, JSONValue>) -> ServerSentEvent {
        ServerSentEvent(name: name, data: JSONValue.object(JSONObject(members)).jsonString)
    }

    private func anthropicBody(_ events: [JSONObject]) -> [UInt8]? {
        guard var message = events.first(where: { $0["type"]?.stringValue == "message_start" })?["message"]?.objectValue else { return nil }
        var blocks: [Int: JSONObject] = [:]
        var partialJSON: [Int: String] = [:]
        var usage = message["usage"]?.objectValue ?? JSONObject()
        for event in events {
            let index = Int(event["index"]?.numberValue?.int64 ?? 0)
            switch event["type"]?.stringValue {
            case "content_block_start":
                blocks[index] = event["content_block"]?.objectValue ?? JSONObject()
            case "content_block_delta":
                var block = blocks[index] ?? JSONObject()
                if let text = event["delta"]?["text"]?.stringValue {
                    block.set("text", .string((block["text"]?.stringValue ?? "") + text))
                }
                if let json = event["delta"]?["partial_json"]?.stringValue { partialJSON[index, default: ""] += json }
                blocks[index] = block
            case "message_delta":
                for member in event["delta"]?.objectValue?.members ?? [] { message.set(member.key, member.value) }
                for member in event["usage"]?.objectValue?.members ?? [] { usage.set(member.key, member.value) }
            default: break
            }
        }
        message.set("content", .array(blocks.keys.sorted().map { index in
            var block = blocks[index]!
            if let json = partialJSON[index] { block.set("input", (try? JSONParser.parse(json)) ?? .object(JSONObject())) }
            return .object(block)
        }))
        message.set("usage", .object(usage))
        return JSONValue.object(message).encoded()
    }

    // MARK: - OpenAI responses

    private func responsesEvents(_ response: JSONObject) -> [ServerSentEvent] {
        var created = response
        created.set("status", "in_progress")
        created.set("output", .array([]))
        created.members.removeAll { $0.key == "usage" }
        var events = [event("response.created", ["type": "response.created", "sequence_number": 0, "response": .object(created)])]
        var sequence: Int64 = 1
        for (outputIndex, item) in (response["output"]?.arrayValue ?? []).enumerated() {
            for (contentIndex, part) in (item["content"]?.arrayValue ?? []).enumerated() {
                guard part["type"]?.stringValue == "output_text", let text = part["text"] else { continue }
                events.append(event("response.output_text.delta", [
                    "type": "response.output_text.delta", "sequence_number": .int(sequence), "item_id": item["id"] ?? .null,
                    "output_index": .int(outputIndex), "content_index": .int(contentIndex), "delta": text,
                ]))
                sequence += 1
            }
        }
        events.append(event("response.completed", ["type": "response.completed", "sequence_number": .int(sequence), "response": .object(response)]))
        return events
    }
}
