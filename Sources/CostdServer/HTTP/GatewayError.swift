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
