import NIOCore

extension EventLoopFuture where Value: Sendable {
    /// The future's value, awaited on the caller's executor.
    ///
    /// NIO's `get()` is compiled to run on Swift's global pool, so each wait from code running
    /// on an event loop (the HTTP endpoint's calls, see ``GatewayWorker``) would cost two thread
    /// hops. Here the continuation resumes on the caller's actor (`isolation`, the call's
    /// worker): for a future that completes on the same loop, no other thread is involved.
    func value(isolation: isolated (any Actor)? = #isolation) async throws -> Value {
        try await withCheckedThrowingContinuation(isolation: isolation) { continuation in
            whenComplete { continuation.resume(with: $0) }
        }
    }
}
