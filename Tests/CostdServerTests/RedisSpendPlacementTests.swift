import CostdRedis
import Testing

@testable import CostdServer

/// When spend goes to Redis: after a check since the connection, and while the policy keeps it.
@Suite("Redis spend placement")
struct RedisSpendPlacementTests {
    static let second: UInt64 = 1_000_000_000

    @Test func spendWaitsForTheFirstCheckAfterEachConnection() {
        var placement = RedisSpendPlacement()
        #expect(!placement.spendGoesToRedis)
        let step = placement.beginCheck(nowNanos: 0)
        #expect(step == .init(readPolicy: true, firstSinceConnect: true))
        let second = placement.beginCheck(nowNanos: 0)
        #expect(second == nil, "one check at a time")
        _ = placement.policyRead(RedisMemoryPolicy(maxMemory: 0, policy: "noeviction"), nowNanos: 0)
        placement.endCheck(succeeded: true)
        #expect(placement.spendGoesToRedis)
        placement.connected()
        #expect(!placement.spendGoesToRedis)
        let again = placement.beginCheck(nowNanos: 5 * Self.second)
        #expect(again == .init(readPolicy: true, firstSinceConnect: true))
    }

    @Test func aFailedCheckOrAChangedCanaryKeepsSpendLocal() {
        var placement = RedisSpendPlacement()
        _ = placement.beginCheck(nowNanos: 0)
        placement.endCheck(succeeded: false)
        #expect(!placement.spendGoesToRedis)
        _ = placement.beginCheck(nowNanos: 0)
        placement.endCheck(succeeded: true)
        #expect(placement.spendGoesToRedis)
        placement.canaryChanged()
        #expect(!placement.spendGoesToRedis)
    }

    @Test func thePolicyIsReadEveryMinuteAndAnEvictingOneKeepsSpendLocal() {
        var placement = RedisSpendPlacement()
        _ = placement.beginCheck(nowNanos: 0)
        let change = placement.policyRead(RedisMemoryPolicy(maxMemory: 1, policy: "allkeys-lru"), nowNanos: 0)
        #expect(change.newReason?.contains("allkeys-lru") == true)
        placement.endCheck(succeeded: true)
        #expect(!placement.spendGoesToRedis)
        let early = placement.beginCheck(nowNanos: 59 * Self.second)
        #expect(early?.readPolicy == false)
        placement.endCheck(succeeded: true)
        let due = placement.beginCheck(nowNanos: 60 * Self.second)
        #expect(due?.readPolicy == true)
        let fixed = placement.policyRead(RedisMemoryPolicy(maxMemory: 1, policy: "volatile-lru"), nowNanos: 60 * Self.second)
        #expect(fixed == .init(newReason: nil, becameSafe: true))
        placement.endCheck(succeeded: true)
        #expect(placement.spendGoesToRedis)
    }

    @Test func oldPeriodsArePurgedHourly() {
        var placement = RedisSpendPlacement()
        let first = placement.purgeDue(nowNanos: 0)
        let early = placement.purgeDue(nowNanos: 3_599 * Self.second)
        let hourLater = placement.purgeDue(nowNanos: 3_600 * Self.second)
        #expect(first && !early && hourLater)
        placement.purgeFailed()
        let retried = placement.purgeDue(nowNanos: 3_601 * Self.second)
        #expect(retried, "a failed purge is tried again")
    }
}
