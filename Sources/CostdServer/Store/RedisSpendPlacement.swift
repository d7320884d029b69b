import CostdRedis

/// Whether spend goes to Redis now: its eviction policy cannot pick spend keys, and its spend
/// canary has been checked since the connection came (or since a script found it changed). The
/// rest of the time records wait in the local backlog. Pure state and timing; the I/O is
/// ``RedisSpendStore``'s.
struct RedisSpendPlacement: Sendable {
    /// How often the eviction policy is read again (it can be changed with `CONFIG SET`).
    static let policyIntervalNanos: UInt64 = 60_000_000_000
    /// How often old periods are deleted.
    static let purgeIntervalNanos: UInt64 = 3_600_000_000_000

    private(set) var policy: RedisMemoryPolicy?
    private var policyReadAtNanos: UInt64?
    private(set) var checkedSinceConnect = false
    private var checking = false
    private var purgedAtNanos: UInt64?
    /// Times this daemon put its spend back since it started.
    var restores = 0

    var reasonSpendIsNotInRedis: String? { policy?.reasonSpendIsNotKept }

    var spendGoesToRedis: Bool { checkedSinceConnect && reasonSpendIsNotInRedis == nil }

    /// A new connection: the policy and the canary are read again before spend goes to it.
    mutating func connected() {
        checkedSinceConnect = false
        policyReadAtNanos = nil
    }

    /// A script found another canary token: spend waits for the next check.
    mutating func canaryChanged() {
        checkedSinceConnect = false
    }

    struct CheckStep: Equatable {
        var readPolicy: Bool
        var firstSinceConnect: Bool
    }

    /// Starts a check unless one is running: what it must do.
    mutating func beginCheck(nowNanos: UInt64) -> CheckStep? {
        guard !checking else { return nil }
        checking = true
        let due = policyReadAtNanos.map { nowNanos &- $0 >= Self.policyIntervalNanos } ?? true
        return CheckStep(readPolicy: due, firstSinceConnect: !checkedSinceConnect)
    }

    struct PolicyChange: Equatable {
        /// Set when spend may no longer be kept in Redis, with why.
        var newReason: String?
        var becameSafe: Bool
    }

    /// The policy as just read (nil when Redis did not say).
    mutating func policyRead(_ new: RedisMemoryPolicy?, nowNanos: UInt64) -> PolicyChange {
        let before = reasonSpendIsNotInRedis
        policy = new
        policyReadAtNanos = nowNanos
        let after = reasonSpendIsNotInRedis
        return PolicyChange(newReason: after != before ? after : nil, becameSafe: before != nil && after == nil)
    }

    mutating func endCheck(succeeded: Bool) {
        checking = false
        if succeeded { checkedSinceConnect = true }
    }

    /// Whether old periods are due for deletion (hourly); marks them done.
    mutating func purgeDue(nowNanos: UInt64) -> Bool {
        if let purgedAtNanos, nowNanos &- purgedAtNanos < Self.purgeIntervalNanos { return false }
        purgedAtNanos = nowNanos
        return true
    }

    mutating func purgeFailed() {
        purgedAtNanos = nil
    }
}
