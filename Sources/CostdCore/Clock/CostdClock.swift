import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one source of time for the engine, the cache tier, the ledger and the Redis layer:
/// wall-clock milliseconds for what is dated (records, days and months, reservations' expiry,
/// record-id windows) and monotonic nanoseconds for what is timed (TTLs, leases, waits,
/// deadlines). The daemon runs on ``system``; tests pass a ``ManualClock``'s and move it
/// instead of sleeping.
public struct CostdClock: Sendable {
    private let wall: @Sendable () -> Int64
    private let monotonic: @Sendable () -> UInt64

    public init(wallMillis: @escaping @Sendable () -> Int64, monotonicNanos: @escaping @Sendable () -> UInt64) {
        self.wall = wallMillis
        self.monotonic = monotonicNanos
    }

    /// Unix time in milliseconds.
    public var nowMillis: Int64 { wall() }

    /// Nanoseconds since an arbitrary start; never goes back. On the system clock this is
    /// `CLOCK_MONOTONIC`, the clock NIO's deadlines use, so the two can be compared.
    public var monotonicNanos: UInt64 { monotonic() }

    public static let system = CostdClock(
        wallMillis: {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
        },
        monotonicNanos: {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        }
    )
}

/// A clock that moves only when told: both readings advance together.
public final class ManualClock: Sendable {
    private struct Reading {
        var wallMillis: Int64
        var monotonicNanos: UInt64
    }

    private let reading: Mutex<Reading>

    /// Starts at `wallMillis` (a Unix time) and at an arbitrary monotonic point.
    public init(wallMillis: Int64, monotonicNanos: UInt64 = 1_000_000_000) {
        reading = Mutex(Reading(wallMillis: wallMillis, monotonicNanos: monotonicNanos))
    }

    public func advance(millis: Int64) {
        precondition(millis >= 0, "a clock does not go back")
        reading.withLock {
            $0.wallMillis += millis
            $0.monotonicNanos += UInt64(millis) * 1_000_000
        }
    }

    public var clock: CostdClock {
        CostdClock(
            wallMillis: { self.reading.withLock { $0.wallMillis } },
            monotonicNanos: { self.reading.withLock { $0.monotonicNanos } }
        )
    }
}
