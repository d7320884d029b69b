import CostdCore

/// A JSON-RPC error object: `{"code": -32602, "message": "...", "data": ...}`.
///
/// The standard codes come from JSON-RPC 2.0; costd's own codes are in the server range
/// -32000...-32099 and are part of the protocol contract (docs/PROTOCOL.md).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code): \(message)" }

    // JSON-RPC 2.0
    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603

    // costd
    public static let budgetExceededCode = -32000
    public static let unknownModelCode = -32001
    public static let payloadTooLargeCode = -32002
    public static let backendUnavailableCode = -32003
    // -32004 is reserved: it was meant for a stale lease, which `cacheSet` answers with
    // `leaseHeld: false` instead. Never sent, never reused.
    public static let overloadedCode = -32005
    public static let shuttingDownCode = -32006
    public static let permissionDeniedCode = -32007

    public static func parseError(_ message: String) -> RPCError {
        RPCError(code: parseErrorCode, message: "parse error: \(message)")
    }

    public static func invalidRequest(_ message: String) -> RPCError {
        RPCError(code: invalidRequestCode, message: "invalid request: \(message)")
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: methodNotFoundCode, message: "method not found: \(method)", data: ["method": .string(method)])
    }

    public static func invalidParams(_ message: String) -> RPCError {
        RPCError(code: invalidParamsCode, message: "invalid params: \(message)")
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(code: internalErrorCode, message: "internal error: \(message)")
    }

    public static func payloadTooLarge(_ message: String, limit: Int) -> RPCError {
        RPCError(code: payloadTooLargeCode, message: "payload too large: \(message)", data: ["limit": .int(limit)])
    }

    public static func unknownModel(_ model: String) -> RPCError {
        RPCError(
            code: unknownModelCode,
            message: "unknown model '\(model)': no price for it; pass costUsd or add it to the price table",
            data: ["model": .string(model)]
        )
    }

    public static func backendUnavailable(_ message: String) -> RPCError {
        RPCError(code: backendUnavailableCode, message: "backend unavailable: \(message)")
    }

    /// Only an admin (`[access]`, root, or the daemon's own user) may do `action`.
    public static func permissionDenied(_ action: String, method: String, user: String) -> RPCError {
        RPCError(
            code: permissionDeniedCode,
            message: "permission denied: only an admin may \(action) (see [access] in the config; you are \(user))",
            data: ["method": .string(method), "user": .string(user)]
        )
    }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("code", code)
        writer.field("message", message)
        if let data { writer.field("data", data) }
        writer.endObject()
    }
}
