import CostdCore
import NIOCore

/// What the fuzzer (Fuzz/) and its regression tests run on one input: everything a client's
/// bytes reach before a method does. It must never crash, whatever the bytes; and where it
/// parses JSON, the result must survive a round trip.
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
