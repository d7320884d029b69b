import NIOCore

/// Completes many promises from a thread that is not their event loop with one task per loop,
/// instead of one cross-thread wake-up per promise (a group commit or a Redis pipeline finishes
/// dozens of calls at once).
enum PromiseBatch {
    static func succeed<Value: Sendable>(_ completions: [(EventLoopPromise<Value>, Value)]) {
        guard !completions.isEmpty else { return }
        var byLoop: [ObjectIdentifier: (any EventLoop, [(EventLoopPromise<Value>, Value)])] = [:]
        for completion in completions {
            let loop = completion.0.futureResult.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append(completion)
        }
        for (loop, group) in byLoop.values {
            loop.execute {
                for (promise, value) in group { promise.succeed(value) }
            }
        }
    }
}
