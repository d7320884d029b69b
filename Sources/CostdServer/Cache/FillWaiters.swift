import CostdCore
import NIOCore
import Synchronization

/// Why a caller waiting for another's lease woke up.
enum FillSignal: Sendable {
    /// The leaseholder stored the value.
    case filled
    /// The leaseholder gave the lease up: try to take it.
    case released
    /// Nobody came in time.
    case timedOut
}

/// Callers waiting for a leaseholder to fill a key, woken by a local fill or by a notice from
/// another daemon (Redis pub/sub).
final class FillWaiters: Sendable {
    private struct Waiter: Sendable {
        var id: UInt64
        var promise: EventLoopPromise<FillSignal>
    }

    private let waiters = Mutex<[CacheKey: [Waiter]]>([:])
    private let nextId = Atomic<UInt64>(0)

    var count: Int { waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Waits for a signal on `key`, at most `timeoutMillis`.
    func wait(for key: CacheKey, timeoutMillis: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<FillSignal> {
        let id = nextId.wrappingAdd(1, ordering: .relaxed).newValue
        let promise = eventLoop.makePromise(of: FillSignal.self)
        waiters.withLock { $0[key, default: []].append(Waiter(id: id, promise: promise)) }
        let timer = eventLoop.scheduleTask(in: .milliseconds(timeoutMillis)) { [self] in
            if remove(key: key, id: id) { promise.succeed(.timedOut) }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    /// Wakes every caller waiting on `key`.
    func signal(_ key: CacheKey, _ signal: FillSignal) {
        let woken = waiters.withLock { $0.removeValue(forKey: key) } ?? []
        for waiter in woken { waiter.promise.succeed(signal) }
    }

    private func remove(key: CacheKey, id: UInt64) -> Bool {
        waiters.withLock { waiters in
            guard var list = waiters[key], let index = list.firstIndex(where: { $0.id == id }) else { return false }
            list.remove(at: index)
            waiters[key] = list.isEmpty ? nil : list
            return true
        }
    }
}
