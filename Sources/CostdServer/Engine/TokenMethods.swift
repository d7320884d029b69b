import CostdCore
import CostdProtocol
import NIOCore

/// `tokens`: exact token counts, the way OpenAI's tokenizers count them.
extension CostdEngine {
    /// The encoding a request asks for: `encoding` by name, or the one of `model`'s family, or
    /// `o200k_base` (today's OpenAI models).
    func encodingName(_ params: Params, rules: Rules) throws(RPCError) -> String {
        if let name = try params.name("encoding") {
            guard EncodingSpec.named(name) != nil else {
                throw .invalidParams("unknown encoding '\(name)'; known: \(EncodingSpec.all.map(\.name).joined(separator: ", "))")
            }
            return name
        }
        if let model = try params.name("model") {
            guard let price = rules.prices.price(for: model) else { throw .unknownModel(model) }
            guard let encoding = price.encoding else {
                throw .invalidParams("no tokenizer is known for model '\(model)'; pass encoding (o200k_base or cl100k_base)")
            }
            return encoding
        }
        return EncodingSpec.o200kBase.name
    }

    /// `{text | messages, model? | encoding?}` → `{tokens, encoding}`.
    ///
    /// For chat `messages` (`[{role, content, name?}]`) the per-message overhead is counted the
    /// way OpenAI's cookbook does: 3 tokens per message, 1 per name, 3 to prime the reply.
    func tokens(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> EventLoopFuture<[UInt8]> {
        let name = try encodingName(params, rules: rules)
        let text = try params.string("text", maxLength: .max)
        let messages = params.value("messages")
        guard (text == nil) != (messages == nil) else { throw .invalidParams("give either 'text' or 'messages'") }
        var chat: [ChatMessage] = []
        if let messages {
            guard case .array(let elements) = messages else { throw .invalidParams("'messages' must be an array") }
            for (index, element) in elements.enumerated() {
                guard case .object(let message) = element, let role = message["role"]?.stringValue else {
                    throw .invalidParams("messages[\(index)] must be an object with a string 'role'")
                }
                let content: String
                switch message["content"] {
                case .string(let string)?: content = string
                case .array(let parts)?:
                    // Multi-part content: the text parts count; images are priced otherwise.
                    content = parts.compactMap { $0["text"]?.stringValue }.joined()
                case nil, .null?: content = ""
                default: throw .invalidParams("messages[\(index)].content must be a string or an array of parts")
                }
                chat.append(ChatMessage(role: role, content: content, name: message["name"]?.stringValue))
            }
        }
        let messagesToCount = chat
        return tokenizers.encoding(name, on: eventLoop).flatMapErrorThrowing { error in
            throw RPCError.backendUnavailable("\(error)")
        }.map { encoding in
            let count = text.map { encoding.count($0) } ?? encoding.countChatTokens(messagesToCount)
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("tokens", count)
            writer.field("encoding", encoding.name)
            writer.endObject()
            return writer.bytes
        }
    }

    /// The size of a routing prompt: exact when it is text and the tokenizer is loaded,
    /// else estimated at about four bytes a token.
    func promptTokens(_ prompt: JSONValue, rules: Rules) -> (tokens: Int64, exact: Bool) {
        if case .string(let text) = prompt {
            if let encoding = tokenizers.loaded(rules.routingEncoding) {
                return (Int64(encoding.count(text)), true)
            }
            return (Router.estimateTokens(utf8Count: text.utf8.count), false)
        }
        return (Router.estimateTokens(utf8Count: prompt.canonicalBytes().count), false)
    }
}
