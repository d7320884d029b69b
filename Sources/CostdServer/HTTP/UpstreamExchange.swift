import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One request to an upstream, run by AsyncHTTPClient on the caller's event loop (delegate and
/// connection both), read by the call's async work on that same loop: no thread is woken
/// between the upstream's bytes and the client's.
///
/// The body is read part by part with back-pressure: AsyncHTTPClient reads the next part only
/// once the last one was taken. A call whose task is cancelled (the client hung up) cancels
/// the upstream request.
final class UpstreamExchange: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    /// Everything below is touched on `eventLoop` only.
    private let eventLoop: any EventLoop
    private let headPromise: EventLoopPromise<HTTPResponseHead>
    private var parts: CircularBuffer<ByteBuffer> = []
    /// The consumer waiting for the next part, if it asked before one came.
    private var partWaiter: EventLoopPromise<ByteBuffer?>?
    /// AsyncHTTPClient waiting to deliver more, until the consumer takes what it has.
    private var readMore: EventLoopPromise<Void>?
    private var finished = false
    private var failure: (any Error)?
    var task: HTTPClient.Task<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.headPromise = eventLoop.makePromise()
    }

    // MARK: - AsyncHTTPClient's side

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        headPromise.succeed(head)
        return eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        if let partWaiter {
            self.partWaiter = nil
            partWaiter.succeed(buffer)
            return eventLoop.makeSucceededVoidFuture()
        }
        parts.append(buffer)
        let promise = eventLoop.makePromise(of: Void.self)
        readMore = promise
        return promise.futureResult
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        fail(error)
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        finished = true
        if let partWaiter, parts.isEmpty {
            self.partWaiter = nil
            partWaiter.succeed(nil)
        }
    }

    private func fail(_ error: any Error) {
        guard failure == nil, !finished else { return }
        failure = error
        headPromise.fail(error)
        partWaiter?.fail(error)
        partWaiter = nil
        readMore?.fail(error)
        readMore = nil
    }

    // MARK: - The call's side (async, on the same loop)

    func head(isolation: isolated (any Actor)? = #isolation) async throws -> HTTPResponseHead {
        try await cancellable(headPromise.futureResult, isolation: isolation)
    }

    /// The next part of the body, or nil at its end.
    func nextPart(isolation: isolated (any Actor)? = #isolation) async throws -> ByteBuffer? {
        try await cancellable(eventLoop.flatSubmit { self.takePart() }, isolation: isolation)
    }

    private func takePart() -> EventLoopFuture<ByteBuffer?> {
        if let part = parts.popFirst() {
            if parts.isEmpty, let readMore {
                self.readMore = nil
                readMore.succeed(())
            }
            return eventLoop.makeSucceededFuture(part)
        }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        if finished { return eventLoop.makeSucceededFuture(nil) }
        let promise = eventLoop.makePromise(of: ByteBuffer?.self)
        partWaiter = promise
        return promise.futureResult
    }

    private func cancellable<Value: Sendable>(_ future: EventLoopFuture<Value>, isolation: isolated (any Actor)?) async throws -> Value {
        try await withTaskCancellationHandler(
            operation: { try await future.value(isolation: isolation) },
            onCancel: { self.cancel() },
            isolation: isolation
        )
    }

    /// Stops the upstream request (the client went away, or its answer is not wanted).
    func cancel() {
        eventLoop.execute {
            self.task?.cancel()
            self.fail(CancellationError())
        }
    }
}
