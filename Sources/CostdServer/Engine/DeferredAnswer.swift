import CostdCore
import CostdProtocol
import Logging
import NIOCore

/// How a method answered: already written, or later (its result bytes, once ready).
enum MethodReply {
    case written
    case later(EventLoopFuture<[UInt8]>)
}

/// An answer that is not ready yet. For a single call the future holds the bare method result
/// and the envelope is written around it when it completes (one future per deferred call, not a
/// chain of them); for a batch it holds the whole frame body.
struct DeferredAnswer {
    enum Kind {
        /// A call's result; `id` nil for a notification, which gets no answer.
        case call(id: JSONValue?)
        /// The complete answer (a batch), empty when nothing is to be sent.
        case frame
    }

    let result: EventLoopFuture<[UInt8]>
    let kind: Kind

    /// The frame body to send for `outcome`, empty when nothing is to be sent.
    func body(for outcome: Result<[UInt8], any Error>, logger: Logger) -> [UInt8] {
        switch (kind, outcome) {
        case (.frame, .success(let bytes)): return bytes
        case (.frame, .failure(let error)):
            var writer = JSONWriter()
            writer.writeErrorResponse(id: .null, error: CostdEngine.rpcError(error, logger: logger))
            return writer.bytes
        case (.call(nil), _): return []
        case (.call(let id?), .success(let bytes)):
            var writer = JSONWriter(reservingCapacity: bytes.count + 48)
            writer.writeResultResponse(id: id, result: bytes)
            return writer.bytes
        case (.call(let id?), .failure(let error)):
            var writer = JSONWriter()
            writer.writeErrorResponse(id: id, error: CostdEngine.rpcError(error, logger: logger))
            return writer.bytes
        }
    }
}
