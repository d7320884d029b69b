import Testing

@testable import CostdCore

@Suite struct IssuedRoutesTests {
    let decision = IssuedRoutes.Decision(requestedModel: "gpt-4o", routedModel: "gpt-4o-mini")

    @Test func aDecisionIsClaimedOnce() {
        var routes = IssuedRoutes()
        routes.issue(decision, id: "rt-1", nowMillis: 1_000)
        let first = routes.claim("rt-1", nowMillis: 2_000)
        let second = routes.claim("rt-1", nowMillis: 2_000)
        #expect(first == decision)
        #expect(second == nil)
        #expect(routes.count == 0)
    }

    @Test func anUnknownIdClaimsNothing() {
        var routes = IssuedRoutes()
        routes.issue(decision, id: "rt-1", nowMillis: 0)
        let claimed = routes.claim("rt-2", nowMillis: 0)
        #expect(claimed == nil)
        #expect(routes.count == 1)
    }

    @Test func aDecisionExpiresAfterItsTTL() {
        var routes = IssuedRoutes(ttlMillis: 1_000)
        routes.issue(decision, id: "rt-old", nowMillis: 0)
        routes.issue(decision, id: "rt-young", nowMillis: 500)
        let expired = routes.claim("rt-old", nowMillis: 1_000)
        let alive = routes.claim("rt-young", nowMillis: 1_499)
        #expect(expired == nil)
        #expect(alive == decision)
    }

    @Test func expiredDecisionsAreDroppedWhenOthersAreIssued() {
        var routes = IssuedRoutes(ttlMillis: 1_000)
        for index in 0..<100 { routes.issue(decision, id: "rt-\(index)", nowMillis: Int64(index)) }
        routes.issue(decision, id: "rt-late", nowMillis: 1_050)
        // Those issued before 50 ms have expired by 1,050 ms.
        #expect(routes.count == 50)
    }

    @Test func theOldestGoFirstPastCapacity() {
        var routes = IssuedRoutes(capacity: 3)
        for index in 0..<5 { routes.issue(decision, id: "rt-\(index)", nowMillis: 0) }
        #expect(routes.count == 3)
        let oldest = routes.claim("rt-1", nowMillis: 0)
        let newest = routes.claim("rt-4", nowMillis: 0)
        #expect(oldest == nil)
        #expect(newest == decision)
    }
}
