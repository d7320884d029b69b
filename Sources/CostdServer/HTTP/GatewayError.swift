import CostdCore
import NIOHTTP1

/// An error the HTTP endpoint answers with, carrying its own status: the body is OpenAI's
/// error shape with Anthropic's `type: "error"` beside it, so that both SDKs read it.
///
/// ```
/// {"type":"error","error":{"message":"...","type":"budget_exceeded","code":"budget_exceeded"}}
/// ```
struct GatewayError: Error, Sendable {
    var status: HTTPResponseStatus
    var type: String
    var code: String?
    var message: String
    var headers: [(String, String)] = []

    static func badRequest(_ message: String) -> GatewayError {
        GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: message)
    }

    static func forbidden(_ message: String) -> GatewayError {
        GatewayError(status: .forbidden, type: "permission_error", code: "permission_denied", message: message)
    }

    static func notFound(_ message: String) -> GatewayError {
        GatewayError(status: .notFound, type: "not_found_error", code: "not_found", message: message)
    }

    static func badGateway(_ message: String) -> GatewayError {
        GatewayError(status: .badGateway, type: "upstream_error", code: "upstream_unreachable", message: message)
    }

    static func gatewayTimeout(_ message: String) -> GatewayError {
        GatewayError(status: .gatewayTimeout, type: "upstream_error", code: "upstream_timeout", message: message)
    }

    static func unavailable(_ message: String) -> GatewayError {
        GatewayError(status: .serviceUnavailable, type: "costd_unavailable", code: "costd_unavailable", message: message)
    }

    /// A hard budget would be passed: 429, and `x-should-retry: false` so the official SDKs do
    /// not retry (waiting does not make room in a budget).
    static func budgetExceeded(_ message: String) -> GatewayError {
        GatewayError(
            status: .tooManyRequests, type: "budget_exceeded", code: "budget_exceeded", message: message,
            headers: [("x-should-retry", "false")])
    }

    var body: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "error")
        writer.field("error") { writer in
            writer.beginObject()
            writer.field("message", message)
            writer.field("type", type)
            if let code { writer.field("code", code) } else { writer.field("code", JSONValue.null) }
            writer.endObject()
        }
        writer.endObject()
        return writer.bytes
    }
}

/// A whole response made by costd (an error, or a cache hit), written in one go whether from
/// the event loop or from a call's async work.
struct GatewayResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    /// The body; a stream's events one by one (sent chunked), or one part with its length.
    var parts: [[UInt8]]
    var streamed: Bool

    init(status: HTTPResponseStatus, headers: HTTPHeaders, parts: [[UInt8]], streamed: Bool) {
        self.status = status
        self.headers = headers
        self.parts = parts
        self.streamed = streamed
        if !streamed { self.headers.replaceOrAdd(name: "content-length", value: String(parts.reduce(0) { $0 + $1.count })) }
    }

    init(error: GatewayError, requestId: String) {
        var headers = HTTPHeaders([("content-type", "application/json"), ("x-costd-request-id", requestId)])
        for (name, value) in error.headers { headers.add(name: name, value: value) }
        self.init(status: error.status, headers: headers, parts: [error.body], streamed: false)
    }
}
