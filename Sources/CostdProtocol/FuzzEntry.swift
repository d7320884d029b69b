import CostdCore
import NIOCore

/// What the fuzzer (Fuzz/) and its regression tests run on one input: everything a client's
/// bytes reach before a method does, on both doors (RPC frames, and the HTTP endpoint's
/// request bodies and headers), and everything an upstream's bytes reach (server-sent events,
/// stored answers). It must never crash, whatever the bytes; and where it parses JSON, the
/// result must survive a round trip.
public enum FuzzEntry {
    public static let limits = JSONParser.Limits(maxDepth: 64, maxStringBytes: 4096, maxElements: 1_000)

    public static func run(_ bytes: UnsafeRawBufferPointer) {
        // The bytes as a stream of frames, as a connection would see them.
        var buffer = ByteBuffer(bytes: bytes)
        var frames = FrameDecoder(maxFrameBytes: 1 << 16)
        let messages = RPCMessageDecoder(limits: limits, maxBatchRequests: 100)
        while let frame = try? frames.decode(buffer: &buffer) {
            switch messages.decode(frame: frame) {
            case .single(.request(let request)): exercise(request)
            case .batch(let calls):
                for case .request(let request) in calls { exercise(request) }
            default: break
            }
        }
        // The bytes as one JSON document, and as a config file.
        if let value = try? JSONParser.parse(bytes, limits: limits) {
            checkRoundTrip(value)
        }
        if let text = String(validating: bytes, as: UTF8.self), let config = try? TOMLParser.parse(text) {
            checkRoundTrip(config)
            _ = try? Configuration(document: config)
        }
        exerciseGateway(Array(bytes))
    }

    /// The HTTP endpoint's parts: the bytes as a request (headers, then a body after the first
    /// blank line) to every endpoint, as an upstream's event stream, and as a stored answer.
    private static func exerciseGateway(_ bytes: [UInt8]) {
        let split = bytes.firstRange(of: Array("\r\n\r\n".utf8))
        let head = split.map { String(decoding: bytes[..<$0.lowerBound], as: UTF8.self) } ?? ""
        let body = split.map { Array(bytes[$0.upperBound...]) } ?? bytes
        var headers: [String: String] = [:]
        for line in head.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...])
        }
        for kind in ProviderEndpoint.Kind.allCases {
            let endpoint = ProviderEndpoint(kind)
            if var request = try? GatewayRequestBody(endpoint: endpoint, bytes: body, limits: limits) {
                for mode in GatewayCachePolicy.Mode.allCases {
                    _ = GatewayCachePolicy(mode: mode, deterministic: request.isDeterministic, costdCacheHeader: headers["x-costd-cache"], cacheControl: headers["cache-control"])
                }
                _ = CacheKey(model: request.model, namespace: headers["x-costd-namespace"] ?? "", prompt: request.cacheKeyPrompt)
                _ = request.promptText
                request.setModel("routed")
                request.setMaxOutputTokensIfMissing(16)
                request.requestStreamUsage()
                guard let sent = try? JSONParser.parse(request.encoded(), limits: .unlimited) else {
                    fatalError("a rewritten request body is not JSON")
                }
                checkRoundTrip(sent)
            }
            // The same bytes as what an upstream streams, in two chunkings that must agree.
            var whole = SSEParser(maxEventBytes: 1 << 16)
            var halves = SSEParser(maxEventBytes: 1 << 16)
            let events = (try? whole.feed(bytes)) ?? []
            let middle = bytes.count / 2
            if let first = try? halves.feed(bytes[..<middle]), let second = try? halves.feed(bytes[middle...]), bytes.count <= 1 << 16 {
                precondition(first + second == events, "chunking changed the events")
            }
            var observer = StreamObserver(endpoint: endpoint)
            for event in events { _ = observer.observe(event) }
            let streamed = CachedAnswer(model: "m", cost: .zero, usage: observer.usage ?? Usage(), events: events)
            if !events.isEmpty, events.allSatisfy(CachedAnswer.canKeep) {
                precondition(CachedAnswer(bytes: streamed.encoded()) == streamed, "a stored stream did not read back")
            }
            _ = streamed.body(for: endpoint)
            // And as a stored answer, delivered both ways.
            if let stored = CachedAnswer(bytes: bytes) {
                _ = stored.events(for: endpoint)
                _ = stored.body(for: endpoint)
            }
        }
    }

    private static func exercise(_ request: RPCRequest) {
        for member in request.params.members {
            _ = request.rawParam(member.key)
            checkRoundTrip(member.value)
        }
        if let prompt = request.params["prompt"] {
            _ = CacheKey(model: request.params["model"]?.stringValue ?? "", namespace: "", prompt: prompt)
        }
    }

    /// Writing a parsed value and parsing it again gives the same value; the canonical form is
    /// a fixed point.
    private static func checkRoundTrip(_ value: JSONValue) {
        let encoded = value.encoded()
        guard let again = try? JSONParser.parse(encoded, limits: .unlimited) else {
            fatalError("a parsed value did not parse again after encoding: \(String(decoding: encoded, as: UTF8.self))")
        }
        precondition(again == value, "round trip changed the value")
        let canonical = value.canonicalBytes()
        guard let reparsed = try? JSONParser.parse(canonical, limits: .unlimited) else {
            fatalError("canonical form did not parse")
        }
        precondition(reparsed.canonicalBytes() == canonical, "canonical form is not a fixed point")
    }
}
