import Testing

@testable import CostdCore

@Suite struct IssuedRoutesTests {
    let decision = IssuedRoutes.Decision(requestedModel: "gpt-4o", routedModel: "gpt-4o-mini")

    @Test func aDecisionIsClaimedOnce() {
        var routes = IssuedRoutes()
        let number = routes.issue(decision, nowMillis: 1_000)
        let first = routes.claim(number, nowMillis: 2_000)
        let second = routes.claim(number, nowMillis: 2_000)
        #expect(first == decision)
        #expect(second == nil)
        #expect(routes.count(nowMillis: 2_000) == 0)
    }

    @Test func anUnknownNumberClaimsNothing() {
        var routes = IssuedRoutes()
        let number = routes.issue(decision, nowMillis: 0)
        let later = routes.claim(number + 1, nowMillis: 0)
        let zero = routes.claim(0, nowMillis: 0)
        #expect(later == nil)
        #expect(zero == nil)
        #expect(routes.count(nowMillis: 0) == 1)
    }

    @Test func aDecisionExpiresAfterItsTTL() {
        var routes = IssuedRoutes(ttlMillis: 1_000)
        let old = routes.issue(decision, nowMillis: 0)
        let young = routes.issue(decision, nowMillis: 500)
        let expired = routes.claim(old, nowMillis: 1_000)
        let alive = routes.claim(young, nowMillis: 1_499)
        #expect(expired == nil)
        #expect(alive == decision)
    }

    @Test func theOldestAreOverwrittenPastCapacity() {
        var routes = IssuedRoutes(capacity: 3)
        let numbers = (0..<5).map { _ in routes.issue(decision, nowMillis: 0) }
        #expect(routes.count(nowMillis: 0) == 3)
        let oldest = routes.claim(numbers[1], nowMillis: 0)
        let newest = routes.claim(numbers[4], nowMillis: 0)
        #expect(oldest == nil)
        #expect(newest == decision)
    }
}
