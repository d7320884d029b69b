import Testing

@testable import CostdCore

@Suite struct SSEParserTests {
    static let stream = "event: message_start\ndata: {\"a\":1}\n\n: a comment\ndata: line one\r\ndata: line two\r\n\r\ndata: [DONE]\n\n"

    @Test func splitsEventsWhateverTheChunking() throws {
        let bytes = Array(SSEParserTests.stream.utf8)
        for size in [1, 2, 3, 7, bytes.count] {
            var parser = SSEParser()
            var events: [ServerSentEvent] = []
            var offset = 0
            while offset < bytes.count {
                events += try parser.feed(bytes[offset..<min(offset + size, bytes.count)])
                offset += size
            }
            #expect(events.map(\.name) == ["message_start", nil, nil])
            #expect(events.map(\.data) == ["{\"a\":1}", "line one\nline two", "[DONE]"])
            #expect(events.last?.isDone == true)
            // Each event's bytes are what came, so passing them on changes nothing.
            #expect(events.flatMap(\.bytes) == bytes)
            #expect(parser.pending.isEmpty)
        }
    }

    @Test func anEventPastTheLimitIsRefused() {
        var parser = SSEParser(maxEventBytes: 64)
        #expect(throws: SSEParser.EventTooLarge.self) { _ = try parser.feed(Array(("data: " + String(repeating: "x", count: 100)).utf8)) }
    }

    @Test func eventsWrittenFromPartsReadBack() throws {
        var parser = SSEParser()
        let event = ServerSentEvent(name: "ping", data: "a\nb")
        #expect(try parser.feed(event.bytes) == [event])
    }
}

@Suite struct StreamObserverTests {
    func observe(_ endpoint: ProviderEndpoint.Kind, _ events: [ServerSentEvent]) -> (StreamObserver, [StreamObserver.Role]) {
        var observer = StreamObserver(endpoint: ProviderEndpoint(endpoint))
        let roles = events.map { observer.observe($0) }
        return (observer, roles)
    }

    @Test func openAIChatStreams() {
        let (observer, roles) = observe(.chatCompletions, [
            ServerSentEvent(data: #"{"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}"#),
            ServerSentEvent(data: #"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}"#),
            ServerSentEvent(data: #"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#),
            ServerSentEvent(data: "[DONE]"),
        ])
        #expect(roles == [.content, .content, .usageOnly, .last])
        #expect(observer.usage == Usage(inputTokens: 12, outputTokens: 3, cachedInputTokens: 4))
        #expect(observer.outputText == "Hello")
        #expect(observer.model == "gpt-4o-mini")
    }

    @Test func anthropicStreamsCountInputAtTheStartAndOutputAtTheEnd() {
        let (observer, roles) = observe(.messages, [
            ServerSentEvent(name: "message_start", data: #"{"type":"message_start","message":{"model":"claude-3-5-haiku","usage":{"input_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":1}}}"#),
            ServerSentEvent(name: "content_block_delta", data: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
            ServerSentEvent(name: "message_delta", data: #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#),
            ServerSentEvent(name: "message_stop", data: #"{"type":"message_stop"}"#),
        ])
        #expect(roles == [.content, .content, .content, .last])
        // Anthropic's input_tokens leave out the cache's: costd's input counts all of them.
        #expect(observer.usage == Usage(inputTokens: 27, outputTokens: 9, cachedInputTokens: 5, cacheWriteInputTokens: 2))
        #expect(observer.outputText == "Hi")
    }

    @Test func responsesStreamsEndWithTheirCompletedEvent() {
        let (observer, roles) = observe(.responses, [
            ServerSentEvent(name: "response.output_text.delta", data: #"{"type":"response.output_text.delta","delta":"ok"}"#),
            ServerSentEvent(name: "response.completed", data: #"{"type":"response.completed","response":{"model":"gpt-4.1","usage":{"input_tokens":7,"output_tokens":2,"input_tokens_details":{"cached_tokens":0}}}}"#),
        ])
        #expect(roles == [.content, .last])
        #expect(observer.usage == Usage(inputTokens: 7, outputTokens: 2))
        #expect(observer.model == "gpt-4.1")
    }

    @Test func usageOfWholeAnswers() {
        #expect(ProviderEndpoint(.embeddings).usage(from: ["prompt_tokens": 8, "total_tokens": 8]) == Usage(inputTokens: 8))
        #expect(ProviderEndpoint(.chatCompletions).usage(from: ["nothing": 1]) == nil)
        #expect(ProviderEndpoint(.chatCompletions).usage(from: nil) == nil)
        #expect(ProviderEndpoint(path: "/chat/completions")?.upstream == "openai")
        #expect(ProviderEndpoint(path: "/messages")?.upstream == "anthropic")
        #expect(ProviderEndpoint(path: "/models") == nil)
    }
}

@Suite struct GatewayRequestBodyTests {
    func body(_ json: String, _ kind: ProviderEndpoint.Kind = .chatCompletions) throws -> GatewayRequestBody {
        try GatewayRequestBody(endpoint: ProviderEndpoint(kind), bytes: Array(json.utf8), limits: .default)
    }

    @Test func refusesWhatIsNotACall() {
        #expect(throws: GatewayRequestError.self) { try body("{not json") }
        #expect(throws: GatewayRequestError.self) { try body("[1]") }
        #expect(throws: GatewayRequestError.self) { try body(#"{"messages":[]}"#) }
        #expect(throws: GatewayRequestError.self) { try body(#"{"model":""}"#) }
        #expect(throws: GatewayRequestError.self) { try body(#"{"model":"a\u0001b"}"#) }
    }

    @Test func theCacheKeyIgnoresDeliveryAndCaller() throws {
        let plain = try body(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#)
        let streamed = try body(#"{"temperature":0.0,"stream":true,"stream_options":{"include_usage":true},"user":"ann","messages":[{"content":"hi","role":"user"}],"model":"m"}"#)
        #expect(plain.cacheKeyPrompt.canonicalBytes() == streamed.cacheKeyPrompt.canonicalBytes())
        let other = try body(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#, .completions)
        #expect(other.cacheKeyPrompt.canonicalBytes() != plain.cacheKeyPrompt.canonicalBytes())
        #expect(streamed.user == "ann" && streamed.streams && streamed.clientWantsStreamUsage)
    }

    @Test func determinism() throws {
        #expect(try body(#"{"model":"m","temperature":0}"#).isDeterministic)
        #expect(try body(#"{"model":"m","seed":7,"temperature":1}"#).isDeterministic)
        #expect(try !body(#"{"model":"m"}"#).isDeterministic)
        #expect(try !body(#"{"model":"m","temperature":0.2}"#).isDeterministic)
        #expect(try body(#"{"model":"m","input":"x"}"#, .embeddings).isDeterministic)
    }

    @Test func rewritesForUpstream() throws {
        var request = try body(#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        request.setModel("small")
        request.setMaxOutputTokensIfMissing(256)
        request.requestStreamUsage()
        let sent = try JSONParser.parse(request.encoded())
        #expect(sent["model"] == "small")
        #expect(sent["max_tokens"] == 256)
        #expect(sent["stream_options"]?["include_usage"] == true)
        // A limit the request sets is kept, under whichever name it used.
        var limited = try body(#"{"model":"m","max_completion_tokens":10}"#)
        limited.setMaxOutputTokensIfMissing(256)
        #expect(limited.maxOutputTokens == 10)
        #expect(try JSONParser.parse(limited.encoded())["max_tokens"] == nil)
        // Embeddings neither stream nor take a limit.
        var embeddings = try body(#"{"model":"e","input":"x","stream":true}"#, .embeddings)
        embeddings.requestStreamUsage()
        let sentEmbeddings = try JSONParser.parse(embeddings.encoded())
        #expect(!embeddings.streams)
        #expect(sentEmbeddings["stream_options"] == nil)
    }

    @Test func promptText() throws {
        let request = try body(#"{"model":"m","system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]},{"role":"user","content":"b"}]}"#, .messages)
        #expect(request.promptText == "be brief\na\nb")
    }
}

@Suite struct GatewayCachePolicyTests {
    func policy(_ mode: GatewayCachePolicy.Mode, deterministic: Bool = true, header: String? = nil, cacheControl: String? = nil) -> GatewayCachePolicy {
        GatewayCachePolicy(mode: mode, deterministic: deterministic, costdCacheHeader: header, cacheControl: cacheControl)
    }

    @Test func theTableOfDocs() {
        #expect(policy(.deterministic) == GatewayCachePolicy(lookup: true, store: true, label: "miss"))
        #expect(policy(.deterministic, deterministic: false) == .bypass)
        #expect(policy(.all, deterministic: false) == GatewayCachePolicy(lookup: true, store: true, label: "miss"))
        #expect(policy(.off) == .bypass)
        #expect(policy(.off, header: "on") == .bypass)
        #expect(policy(.deterministic, deterministic: false, header: "on").lookup)
        #expect(policy(.deterministic, header: "OFF") == .bypass)
        #expect(policy(.deterministic, header: "refresh") == GatewayCachePolicy(lookup: false, store: true, label: "refresh"))
        #expect(policy(.deterministic, cacheControl: "max-age=0, no-cache") == GatewayCachePolicy(lookup: false, store: true, label: "refresh"))
        #expect(policy(.deterministic, cacheControl: "no-store") == GatewayCachePolicy(lookup: true, store: false, label: "miss"))
    }
}

@Suite struct CachedAnswerTests {
    @Test func storesAndReadsBackBodiesAndStreams() throws {
        let body = CachedAnswer(model: "m", cost: Money(nanos: 1234), usage: Usage(inputTokens: 5, outputTokens: 6, cachedInputTokens: 1), body: Array(#"{"id":"x","n":[1,2]}"#.utf8))
        #expect(CachedAnswer(bytes: body.encoded()) == body)
        let events = [ServerSentEvent(data: "{\"a\":\"line\\nbreak\"}"), ServerSentEvent(data: "{\"usage\":1}"), ServerSentEvent(data: "[DONE]")]
        let stream = CachedAnswer(model: "m", cost: Money(nanos: 9), usage: Usage(inputTokens: 1, outputTokens: 2), events: events, usageOnlyEvents: [1])
        #expect(CachedAnswer(bytes: stream.encoded()) == stream)
        // What an RPC client stored under the same key is not an answer.
        #expect(CachedAnswer(bytes: Array(#"{"text":"hello"}"#.utf8)) == nil)
        #expect(CachedAnswer(bytes: Array("not json".utf8)) == nil)
    }

    func parse(_ events: [ServerSentEvent]) throws -> [JSONValue] {
        try events.filter { !$0.isDone }.map { try JSONParser.parse($0.data) }
    }

    @Test func aChatAnswerGoesBothWays() throws {
        let chat = ProviderEndpoint(.chatCompletions)
        let body = #"{"id":"c1","created":1,"model":"m","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#
        let answer = CachedAnswer(model: "m", cost: .zero, usage: Usage(), body: Array(body.utf8))
        let (events, usageOnly) = try #require(answer.events(for: chat))
        #expect(events.last?.isDone == true)
        #expect(usageOnly == [events.count - 2])
        let chunks = try parse(events)
        #expect(chunks.first?["object"] == "chat.completion.chunk")
        #expect(chunks.first?["choices"]?.arrayValue?.first?["delta"]?["content"] == "Hi there")
        // And back: the stream put together is the body SDKs read.
        let streamed = CachedAnswer(model: "m", cost: .zero, usage: Usage(), events: events, usageOnlyEvents: usageOnly)
        let rebuilt = try JSONParser.parse(try #require(streamed.body(for: chat)))
        #expect(rebuilt["choices"]?.arrayValue?.first?["message"]?["content"] == "Hi there")
        #expect(rebuilt["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
        #expect(rebuilt["usage"]?["completion_tokens"] == 2)
        #expect(rebuilt["object"] == "chat.completion")
    }

    @Test func toolCallsArePutTogether() throws {
        let events = [
            ServerSentEvent(data: #"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"ci"}}]}}]}"#),
            ServerSentEvent(data: #"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":1}"}}]},"finish_reason":"tool_calls"}]}"#),
            ServerSentEvent(data: "[DONE]"),
        ]
        let body = try JSONParser.parse(try #require(CachedAnswer(model: "m", cost: .zero, usage: Usage(), events: events).body(for: ProviderEndpoint(.chatCompletions))))
        let message = body["choices"]?.arrayValue?.first?["message"]
        #expect(message?["content"] == .null)
        #expect(message?["tool_calls"]?.arrayValue?.first?["function"]?["arguments"] == #"{"city":1}"#)
        #expect(message?["tool_calls"]?.arrayValue?.first?["id"] == "call_1")
    }

    @Test func anAnthropicMessageGoesBothWays() throws {
        let messages = ProviderEndpoint(.messages)
        let body = #"{"id":"msg","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Bonjour"},{"type":"tool_use","id":"t1","name":"f","input":{"x":1}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":4,"output_tokens":3}}"#
        let answer = CachedAnswer(model: "claude", cost: .zero, usage: Usage(), body: Array(body.utf8))
        let (events, _) = try #require(answer.events(for: messages))
        #expect(events.first?.name == "message_start" && events.last?.name == "message_stop")
        var observer = StreamObserver(endpoint: messages)
        for event in events { _ = observer.observe(event) }
        #expect(observer.outputText == "Bonjour")
        #expect(observer.usage?.outputTokens == 3 && observer.usage?.inputTokens == 4)
        let rebuilt = try JSONParser.parse(try #require(CachedAnswer(model: "claude", cost: .zero, usage: Usage(), events: events).body(for: messages)))
        #expect(rebuilt == (try JSONParser.parse(body)))
    }

    @Test func aResponsesAnswerGoesBothWays() throws {
        let responses = ProviderEndpoint(.responses)
        let body = #"{"id":"r","object":"response","model":"m","status":"completed","output":[{"type":"message","id":"o","content":[{"type":"output_text","text":"ok"}]}],"usage":{"input_tokens":1,"output_tokens":1}}"#
        let (events, _) = try #require(CachedAnswer(model: "m", cost: .zero, usage: Usage(), body: Array(body.utf8)).events(for: responses))
        #expect(events.last?.name == "response.completed")
        let rebuilt = try JSONParser.parse(try #require(CachedAnswer(model: "m", cost: .zero, usage: Usage(), events: events).body(for: responses)))
        #expect(rebuilt == (try JSONParser.parse(body)))
        #expect(CachedAnswer(model: "m", cost: .zero, usage: Usage(), body: Array("{}".utf8)).events(for: ProviderEndpoint(.embeddings)) == nil)
    }
}

@Suite struct HTTPSettingsTests {
    @Test func readsTheHTTPSectionAndUpstreams() throws {
        let configuration = try Configuration(toml: """
            [http]
            listen = "127.0.0.1:8787"
            cache = "all"
            max_body_bytes = 2048
            [upstreams.openai]
            url = "http://127.0.0.1:8000/v1/"
            key_file = "/run/credentials/costd/openai"
            [upstreams.local]
            url = "http://127.0.0.1:11434/v1"
            auth = "x-api-key"
            """)
        #expect(configuration.http.cache == .all)
        #expect(try configuration.http.listenAddress()! == ("127.0.0.1", 8787))
        #expect(configuration.http.upstreams["openai"] == HTTPSettings.Upstream(url: "http://127.0.0.1:8000/v1", keyFile: "/run/credentials/costd/openai"))
        #expect(configuration.http.upstreams["anthropic"]?.auth == .xAPIKey)
        #expect(configuration.http.upstreams["local"]?.auth == .xAPIKey)
    }

    @Test func refusesWhatCannotWork() {
        #expect(throws: ConfigError.self) { try Configuration(toml: "[http]\nlisten = \"0.0.0.0:8787\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[http]\ncache = \"sometimes\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[upstreams.x]\nurl = \"ftp://host\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[upstreams.x]\nkey_file = \"k\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[http]\nlistn = \"127.0.0.1:1\"\n") }
        #expect((try? Configuration(toml: "[http]\nlisten = \"0.0.0.0:8787\"\nallow_remote = true\n")) != nil)
    }

    @Test func theSocketIsFoundLikeTheClientsFindIt() {
        #expect(DefaultPaths.httpSocket(environment: ["COSTD_HTTP_SOCKET": "/x.sock", "COSTD_SOCKET": "/y.sock"], rpcSocket: nil) == "/x.sock")
        #expect(DefaultPaths.httpSocket(environment: [:], rpcSocket: "/tmp/a.sock") == "/tmp/a-http.sock")
        #expect(DefaultPaths.httpSocket(environment: ["COSTD_SOCKET": "/tmp/b.sock"], rpcSocket: nil) == "/tmp/b-http.sock")
        #expect(DefaultPaths.httpSocket(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], rpcSocket: nil) == "/run/user/1000/costd-http.sock")
        #expect(DefaultPaths.httpSocket(environment: [:], rpcSocket: nil) == "/run/costd/http.sock")
    }
}
