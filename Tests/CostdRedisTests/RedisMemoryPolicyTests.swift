import Testing

@testable import CostdRedis

/// The eviction policy as `INFO memory` gives it, and what it means for spend.
@Suite("Redis memory policy")
struct RedisMemoryPolicyTests {
    static func info(maxMemory: Int64, policy: String) -> String {
        "# Memory\r\nused_memory:1034560\r\nmaxmemory:\(maxMemory)\r\nmaxmemory_human:3.00M\r\nmaxmemory_policy:\(policy)\r\nallocator_frag_ratio:1.02\r\n"
    }

    @Test func theReplyOfInfoMemoryIsRead() {
        #expect(RedisMemoryPolicy(info: Self.info(maxMemory: 3_145_728, policy: "allkeys-lru")) == RedisMemoryPolicy(maxMemory: 3_145_728, policy: "allkeys-lru"))
        #expect(RedisMemoryPolicy(info: "# Memory\nmaxmemory:0\nmaxmemory_policy:noeviction\n") == RedisMemoryPolicy(maxMemory: 0, policy: "noeviction"))
        #expect(RedisMemoryPolicy(info: "# Memory\r\nused_memory:1\r\n") == nil, "no policy line: the Redis did not say")
    }

    @Test(arguments: [
        ("allkeys-lru", 3_145_728, false), ("allkeys-lfu", 1, false), ("allkeys-random", 1, false),
        ("allkeys-lru", 0, true), ("volatile-lru", 3_145_728, true), ("volatile-ttl", 1, true), ("noeviction", 1, true),
    ] as [(String, Int64, Bool)])
    func spendIsKeptUnlessAnyKeyMayBeEvicted(policy: String, maxMemory: Int64, kept: Bool) {
        let read = RedisMemoryPolicy(maxMemory: maxMemory, policy: policy)
        #expect((read.reasonSpendIsNotKept == nil) == kept)
        if let reason = read.reasonSpendIsNotKept { #expect(reason.contains(policy), "the reason names the policy") }
    }
}
