/// How long written ledger entries waited for their `fdatasync`: for each sync, the time from the
/// oldest entry it covered being written to the sync's end. That is the window a power loss or a
/// kernel crash could lose in `batched` mode (a crash of costd alone loses nothing written).
///
/// Keeps the last ``capacity`` windows, so its percentiles describe the recent past, with a
/// count and the largest since start.
public struct SyncWindows: Sendable {
    public struct Summary: Sendable, Equatable {
        public var syncs: UInt64
        public var p50Nanos: UInt64
        public var p99Nanos: UInt64
        public var maxNanos: UInt64
    }

    static let capacity = 8192

    private var recent: [UInt64] = []
    private var next = 0
    private var count: UInt64 = 0
    private var maxNanos: UInt64 = 0

    mutating func add(nanos: UInt64) {
        if recent.count < SyncWindows.capacity {
            recent.append(nanos)
        } else {
            recent[next] = nanos
        }
        next = (next + 1) % SyncWindows.capacity
        count += 1
        maxNanos = max(maxNanos, nanos)
    }

    /// Nearest-rank percentiles of the recent windows.
    var summary: Summary {
        guard !recent.isEmpty else { return Summary(syncs: 0, p50Nanos: 0, p99Nanos: 0, maxNanos: 0) }
        let sorted = recent.sorted()
        func rank(_ fraction: Double) -> UInt64 {
            sorted[min(sorted.count - 1, max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))]
        }
        return Summary(syncs: count, p50Nanos: rank(0.5), p99Nanos: rank(0.99), maxNanos: maxNanos)
    }
}
