import CostdCore
import NIOCore

/// One JSON-RPC 2.0 request, decoded from a frame.
///
/// `params` is the parsed object; `frame` is kept so that a member can also be read as the
/// exact bytes the client sent (``rawParam(_:)``), which is how cached values are stored and
/// returned byte-for-byte.
public struct RPCRequest: Sendable {
    /// The request id as sent (number or string, or null); nil for a notification.
    public var id: JSONValue?
    public var method: String
    public var params: JSONObject
    public var frame: ByteBuffer

    public init(id: JSONValue?, method: String, params: JSONObject, frame: ByteBuffer) {
        self.id = id
        self.method = method
        self.params = params
        self.frame = frame
    }

    public var isNotification: Bool { id == nil }

    /// The exact bytes of a params member's value, as they appeared in the frame.
    public func rawParam(_ key: String) -> [UInt8]? {
        guard let range = params.member(key)?.sourceRange else { return nil }
        return frame.getBytes(at: frame.readerIndex + range.lowerBound, length: range.count)
    }
}

/// What one element of a message turned out to be.
public enum RPCCall: Sendable {
    case request(RPCRequest)
    /// Not a valid request; answered with this error (and the id, when one could be read).
    case invalid(id: JSONValue?, RPCError)
}

/// A decoded frame: one call, a batch of calls, or something that is not JSON-RPC at all.
public enum RPCMessage: Sendable {
    case single(RPCCall)
    case batch([RPCCall])
    /// Not parseable (or over a limit): answered with this error and `"id": null`.
    case unreadable(RPCError)
}

public struct RPCMessageDecoder: Sendable {
    public var limits: JSONParser.Limits
    public var maxBatchRequests: Int

    public init(limits: JSONParser.Limits, maxBatchRequests: Int) {
        self.limits = limits
        self.maxBatchRequests = maxBatchRequests
    }

    public func decode(frame: ByteBuffer) -> RPCMessage {
        let parsed: Result<JSONValue, JSONParseError> = frame.withUnsafeReadableBytes { bytes in
            Result { () throws(JSONParseError) in try JSONParser.parse(bytes, limits: limits) }
        }
        let document: JSONValue
        switch parsed {
        case .success(let value):
            document = value
        case .failure(let error):
            if error.isLimit {
                return .unreadable(.payloadTooLarge(error.description, limit: limit(of: error)))
            }
            return .unreadable(.parseError(error.description))
        }
        switch document {
        case .array(let elements):
            guard !elements.isEmpty else { return .unreadable(.invalidRequest("empty batch")) }
            guard elements.count <= maxBatchRequests else {
                return .unreadable(
                    .payloadTooLarge("batch of \(elements.count) requests; the limit is \(maxBatchRequests)", limit: maxBatchRequests)
                )
            }
            return .batch(elements.map { call(from: $0, frame: frame) })
        default:
            return .single(call(from: document, frame: frame))
        }
    }

    private func limit(of error: JSONParseError) -> Int {
        switch error.kind {
        case .tooDeep(let limit), .stringTooLong(let limit), .tooManyElements(let limit): limit
        default: 0
        }
    }

    private func call(from value: JSONValue, frame: ByteBuffer) -> RPCCall {
        guard case .object(let object) = value else {
            return .invalid(id: nil, .invalidRequest("a request must be a JSON object, not \(value.typeName)"))
        }
        var id: JSONValue? = nil
        if let rawID = object["id"] {
            switch rawID {
            case .string, .number, .null: id = rawID
            default: return .invalid(id: nil, .invalidRequest("id must be a string, a number or null"))
            }
        }
        guard object["jsonrpc"]?.stringValue == "2.0" else {
            return .invalid(id: id ?? .null, .invalidRequest("\"jsonrpc\" must be \"2.0\""))
        }
        guard let method = object["method"]?.stringValue else {
            return .invalid(id: id ?? .null, .invalidRequest("\"method\" must be a string"))
        }
        let params: JSONObject
        switch object["params"] {
        case nil, .null?: params = JSONObject()
        case .object(let members)?: params = members
        case .array?:
            return .invalid(id: id ?? .null, .invalidParams("params must be an object of named parameters"))
        case let other?:
            return .invalid(id: id ?? .null, .invalidRequest("params must be an object, not \(other.typeName)"))
        }
        return .request(RPCRequest(id: id, method: method, params: params, frame: frame))
    }
}
