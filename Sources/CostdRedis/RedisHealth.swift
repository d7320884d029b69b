import CostdCore
import Logging
import Synchronization

/// Whether Redis is up, as the connections last found it, and the one place its changes are
/// logged: an outage is noticed once, not once per connection or per call.
final class RedisHealth: Sendable {
    private struct State {
        var up = false
        var everUp = false
        var lastError: String?
    }

    private let endpoint: RedisEndpoint
    private let logger: Logger
    private let onStateChange: @Sendable (Bool) -> Void
    private let available = Atomic<Bool>(false)
    private let current = Mutex<State>(State())

    init(endpoint: RedisEndpoint, logger: Logger, onStateChange: @escaping @Sendable (Bool) -> Void) {
        self.endpoint = endpoint
        self.logger = logger
        self.onStateChange = onStateChange
    }

    var isAvailable: Bool { available.load(ordering: .relaxed) }

    var state: (up: Bool, lastError: String?) {
        current.withLock { ($0.up, $0.lastError) }
    }

    /// A connection finished its handshake.
    func markUp() {
        let changed = current.withLock { state -> Bool in
            defer {
                state.up = true
                state.everUp = true
                state.lastError = nil
            }
            return !state.up
        }
        available.store(true, ordering: .relaxed)
        if changed {
            logger.notice("Redis connected", metadata: ["redis": "\(endpoint)"])
            onStateChange(true)
        }
    }

    /// A connection broke, stalled, or could not be made.
    func markDown(_ error: RedisError) {
        let (changed, first) = current.withLock { state -> (Bool, Bool) in
            let wasUp = state.up
            let first = !state.everUp && state.lastError == nil
            state.up = false
            state.lastError = "\(error)"
            return (wasUp, first)
        }
        available.store(false, ordering: .relaxed)
        if changed {
            logger.error(
                "Redis unreachable; cache calls use L1 only and records go to the local backlog",
                metadata: ["redis": "\(endpoint)", "error": "\(error)"])
            onStateChange(false)
        } else if first {
            logger.warning("Redis not reachable yet; retrying", metadata: ["redis": "\(endpoint)", "error": "\(error)"])
        }
    }
}
