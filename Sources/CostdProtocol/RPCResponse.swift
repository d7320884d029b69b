import CostdCore

/// Writing responses: `{"jsonrpc":"2.0","id":<id>,"result":<result>}` or `...,"error":{...}}`.
///
/// A result is written straight after the envelope's prefix, so a large value (a cached
/// answer) is copied once, from the cache into the response.
extension JSONWriter {
    /// Writes the envelope up to the result; the caller writes the result, then ``endResponse()``.
    public mutating func beginResultResponse(id: JSONValue) {
        raw("{\"jsonrpc\":\"2.0\",\"id\":")
        value(id)
        raw(",\"result\":")
    }

    public mutating func endResponse() {
        raw("}")
    }

    public mutating func writeResultResponse(id: JSONValue, result: [UInt8]) {
        beginResultResponse(id: id)
        rawJSON(result)
        endResponse()
    }

    public mutating func writeErrorResponse(id: JSONValue, error: RPCError) {
        raw("{\"jsonrpc\":\"2.0\",\"id\":")
        value(id)
        raw(",\"error\":")
        error.write(to: &self)
        raw("}")
    }
}
