import Foundation
import Testing

@testable import CostdCore

@Suite struct RouterTests {
    let router = Router(rules: .default)

    @Test(arguments: ["classification", "extraction", "translation"])
    func simpleTasksGoToTheCheapTier(_ task: String) {
        let decision = router.route(RouteRequest(task: task, promptTokens: 100, underBudgetPressure: false))
        #expect(decision.model == "gpt-4o-mini")
        #expect(decision.tier == "simple")
        #expect(decision.reason == .task)
    }

    @Test func everythingElseGoesToTheComplexTier() {
        let decision = router.route(RouteRequest(task: "reasoning", promptTokens: nil, underBudgetPressure: false))
        #expect(decision.model == "gpt-4o")
        #expect(decision.reason == .default)
        #expect(decision.maxTokens == 1_024)
        #expect(router.route(RouteRequest(task: nil, promptTokens: nil, underBudgetPressure: false)).reason == .default)
    }

    @Test func largePromptsGoUpATier() {
        let decision = router.route(RouteRequest(task: "classification", promptTokens: 9_000, underBudgetPressure: false))
        #expect(decision.tier == "complex")
        #expect(decision.reason == .promptSize)
        #expect(decision.maxTokens == 16)
    }

    @Test func budgetPressureDowngrades() {
        let decision = router.route(RouteRequest(task: "reasoning", promptTokens: 10, underBudgetPressure: true))
        #expect(decision.tier == "simple")
        #expect(decision.reason == .budget)
        // Already at the cheapest tier: the task rule still explains it.
        #expect(router.route(RouteRequest(task: "classification", promptTokens: 10, underBudgetPressure: true)).reason == .task)
    }

    @Test func rulesAreValidated() {
        var rules = RoutingRules.default
        rules.taskTiers["x"] = "nope"
        #expect(throws: ConfigError.self) { try rules.validate() }
        rules = .default
        rules.defaultTier = "nope"
        #expect(throws: ConfigError.self) { try rules.validate() }
    }
}

@Suite struct BudgetTests {
    @Test func alertsFireOncePerLevelAndPeriod() {
        let settings = BudgetSettings(daily: .dollars(10))
        var fired = Set<AlertLevel>()
        func due(_ spent: Money) -> [AlertLevel] {
            let alerts = settings.alertsDue(scope: .day, period: "2026-11-29", spent: spent) { fired.contains($0) }
            for alert in alerts { fired.insert(alert.level) }
            return alerts.map(\.level)
        }
        #expect(due(.dollars(7)) == [])
        #expect(due(.dollars(8)) == [.warning])
        #expect(due(.dollars(9)) == [])
        #expect(due(.dollars(10)) == [.exceeded])
        #expect(due(.dollars(20)) == [])
    }

    @Test func aJumpPastBothThresholdsRaisesBoth() {
        let settings = BudgetSettings(daily: .dollars(1))
        let alerts = settings.alertsDue(scope: .day, period: "d", spent: .dollars(2)) { _ in false }
        #expect(alerts.map(\.level) == [.warning, .exceeded])
        #expect(alerts.first?.budget == .dollars(1))
    }

    @Test func noBudgetNoAlerts() {
        #expect(BudgetSettings().alertsDue(scope: .month, period: "m", spent: .dollars(5)) { _ in false }.isEmpty)
    }

    @Test func cachedRecordsCountAsSavingsNotSpend() {
        var book = SpendBook()
        book.apply(SpendRecord(recordId: "a", unixMillis: 0, day: "2026-11-29", model: "gpt-4o", user: "u", cost: .dollars(2)))
        book.apply(SpendRecord(recordId: "b", unixMillis: 0, day: "2026-11-29", model: "gpt-4o", cost: .dollars(3), cached: true))
        let totals = book.totals(day: "2026-11-29")
        #expect(totals.spent == .dollars(2))
        #expect(totals.savedByCache == .dollars(3))
        #expect(totals.requests == 1)
        #expect(totals.cachedRequests == 1)
        #expect(totals.byModel["gpt-4o"]?.saved == .dollars(3))
        #expect(book.spent(.month, period: "2026-11") == .dollars(2))
    }

    @Test func snapshotsRoundTrip() throws {
        var book = SpendBook()
        book.apply(SpendRecord(recordId: "a", unixMillis: 0, day: "2026-11-28", model: "m", user: "u", feature: "f", unit: "x.service", cost: Money(nanos: 123), inputTokens: 5, outputTokens: 6))
        var counters = CacheCounterSet()
        counters.total = CacheCounters(l1Hits: 3, misses: 2)
        counters.byModel["m"] = CacheCounters(l1Hits: 3)
        counters.byNamespace[""] = CacheCounters(misses: 2)
        book.addCacheCounters(counters, day: "2026-11-28")
        book.markFired(.day, period: "2026-11-28", level: .warning)
        var writer = JSONWriter()
        book.writeSnapshot(to: &writer)
        let restored = try SpendBook(snapshot: try JSONParser.parse(writer.bytes))
        #expect(restored.days == book.days)
        #expect(restored.hasFired(.day, period: "2026-11-28", level: .warning))
        #expect(!restored.hasFired(.day, period: "2026-11-28", level: .exceeded))
        #expect(restored.spent(.month, period: "2026-11") == Money(nanos: 123))
    }

    @Test func monthTotalsSumTheirDays() {
        var book = SpendBook()
        for day in ["2026-10-31", "2026-11-01", "2026-11-30"] {
            book.apply(SpendRecord(recordId: day, unixMillis: 0, day: day, model: "m", cost: .dollars(1)))
        }
        #expect(book.totals(month: "2026-11").spent == .dollars(2))
        #expect(book.spent(.month, period: "2026-10") == .dollars(1))
    }
}

@Suite struct PeriodCalendarTests {
    @Test func daysFollowTheConfiguredTimeZone() throws {
        // 2026-11-29T23:30:00Z
        let instant: Int64 = 1_795_995_000_000
        var utc = PeriodCalendar.utc
        var tokyo = try PeriodCalendar(timeZoneIdentifier: "Asia/Tokyo")
        #expect(utc.dayKey(unixMillis: instant) == "2026-11-29")
        #expect(tokyo.dayKey(unixMillis: instant) == "2026-11-30")
        // The cached day bounds must not leak across days.
        #expect(utc.dayKey(unixMillis: instant + 3_600_000) == "2026-11-30")
        #expect(utc.dayKey(unixMillis: instant) == "2026-11-29")
        #expect(throws: ConfigError.self) { try PeriodCalendar(timeZoneIdentifier: "Mars/Olympus") }
    }

    @Test func utcDaysAreExactArithmetic() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var utc = PeriodCalendar.utc
        // Every 37th day from 1900 to 2200, and the edges of days.
        for day in stride(from: -25_567, through: 84_000, by: 37) {
            for millis in [Int64(day) * 86_400_000, Int64(day) * 86_400_000 + 86_399_999] {
                let components = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(millis) / 1000))
                let expected = PeriodCalendar.dayKey(year: components.year!, month: components.month!, day: components.day!)
                #expect(utc.dayKey(unixMillis: millis) == expected, "\(millis)")
            }
        }
    }

    @Test func parsesAndWalksDays() {
        #expect(PeriodCalendar.parseDay("2026-02-29") == nil)
        #expect(PeriodCalendar.parseDay("2024-02-29") == "2024-02-29")
        #expect(PeriodCalendar.parseDay("2026-13-01") == nil)
        #expect(PeriodCalendar.days(endingAt: "2026-03-01", count: 3) == ["2026-02-27", "2026-02-28", "2026-03-01"])
        #expect(PeriodCalendar.days(endingAt: "2026-01-01", count: 2) == ["2025-12-31", "2026-01-01"])
    }
}

@Suite struct SieveCacheTests {
    func key(_ index: Int) -> CacheKey {
        CacheKey(model: "m", namespace: "", prompt: .int(index))
    }

    @Test func entriesExpireAtTheirTTL() {
        var cache = SieveCache(capacityBytes: 1 << 20)
        cache.set(key(1), value: [1], namespace: "", expiresAt: 100, now: 0)
        #expect(cache.get(key(1), now: 99)?.value == [1])
        #expect(cache.get(key(1), now: 100) == nil)
        #expect(cache.count == 0)
    }

    @Test func staysWithinItsByteBound() {
        let value = [UInt8](repeating: 7, count: 1_000)
        var cache = SieveCache(capacityBytes: 50_000)
        for index in 0..<500 {
            cache.set(key(index), value: value, namespace: "", expiresAt: .max, now: 0)
            #expect(cache.usedBytes <= 50_000)
        }
        #expect(cache.count == 50_000 / (1_000 + SieveCache.entryOverhead))
        #expect(cache.evictions > 0)
    }

    @Test func keepsHotEntries() {
        let value = [UInt8](repeating: 1, count: 1_000)
        var cache = SieveCache(capacityBytes: 20 * (1_000 + SieveCache.entryOverhead))
        for index in 0..<10 { cache.set(key(index), value: value, namespace: "", expiresAt: .max, now: 0) }
        // Entries 0..<10 are read again and again while a stream of one-hit entries passes through.
        for index in 10..<1_000 {
            for hot in 0..<10 { _ = cache.get(key(hot), now: 0) }
            cache.set(key(index), value: value, namespace: "", expiresAt: .max, now: 0)
        }
        for hot in 0..<10 { #expect(cache.get(key(hot), now: 0) != nil, "hot entry \(hot) was evicted") }
    }

    @Test func removesByNamespace() {
        var cache = SieveCache(capacityBytes: 1 << 20)
        cache.set(key(1), value: [1], namespace: "a", expiresAt: .max, now: 0)
        cache.set(key(2), value: [2], namespace: "b", expiresAt: .max, now: 0)
        #expect(cache.removeAll(namespace: "a") == 1)
        #expect(cache.get(key(1), now: 0) == nil)
        #expect(cache.get(key(2), now: 0) != nil)
        #expect(cache.removeAll(namespace: nil) == 1)
        #expect(cache.usedBytes == 0)
    }

    @Test func agreesWithAModelUnderRandomOperations() {
        // With room for everything (no eviction) the cache must behave exactly like a dictionary.
        var cache = SieveCache(capacityBytes: 1 << 30)
        var model: [Int: (value: [UInt8], namespace: String, expiresAt: UInt64)] = [:]
        var random = SystemRandomNumberGenerator()
        var now: UInt64 = 0
        for _ in 0..<20_000 {
            let id = Int(random.next() % 300)
            switch random.next() % 10 {
            case 0..<4:
                let value = [UInt8](repeating: UInt8(id % 251), count: Int(random.next() % 64))
                let namespace = ["", "a", "b"][Int(random.next() % 3)]
                let expiresAt = now + 1 + random.next() % 500
                cache.set(key(id), value: value, namespace: namespace, expiresAt: expiresAt, now: now)
                model[id] = (value, namespace, expiresAt)
            case 4..<8:
                let expected = model[id].flatMap { $0.expiresAt > now ? $0.value : nil }
                #expect(cache.get(key(id), now: now)?.value == expected)
                if expected == nil { model[id] = nil }
            case 8:
                #expect(cache.remove(key(id)) == (model.removeValue(forKey: id) != nil))
            default:
                if random.next() % 20 == 0 {
                    let namespace = ["a", "b"][Int(random.next() % 2)]
                    cache.removeAll(namespace: namespace)
                    model = model.filter { $0.value.namespace != namespace }
                } else {
                    now += random.next() % 20
                }
            }
        }
        cache.removeExpired(now: now)
        model = model.filter { $0.value.expiresAt > now }
        #expect(cache.count == model.count)
        #expect(cache.usedBytes == model.values.reduce(0) { $0 + $1.value.count + $1.namespace.utf8.count + SieveCache.entryOverhead })
    }

    @Test func replacingAnEntryKeepsAccountingRight() {
        var cache = SieveCache(capacityBytes: 1 << 20)
        cache.set(key(1), value: [1, 2, 3], namespace: "", expiresAt: .max, now: 0)
        cache.set(key(1), value: [1], namespace: "", expiresAt: .max, now: 0)
        #expect(cache.count == 1)
        #expect(cache.usedBytes == 1 + SieveCache.entryOverhead)
        let stored = cache.set(key(2), value: [UInt8](repeating: 0, count: 2 << 20), namespace: "", expiresAt: .max, now: 0)
        #expect(!stored)
    }
}
