import CostdCore
import NIOCore

/// Where spend is counted: the embedded ledger, or Redis (shared by every daemon on it) with
/// the ledger as its backlog. The methods speak to it only through this protocol.
public protocol SpendStore: Sendable {
    /// Counts `record` (once per record id) and answers once it is durable.
    func record(
        _ record: SpendRecord, rememberId: Bool, reservation: String?, budget: BudgetSettings, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RecordReceipt>

    /// Takes a reservation against the hard budgets; fails with ``BudgetExceeded``.
    func reserve(_ request: ReservationRequest, budget: BudgetSettings, on eventLoop: any EventLoop)
        -> EventLoopFuture<ReservationGrant>

    /// Gives a reservation up without recording anything; true when it was open.
    func release(reservation: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool>

    /// Totals of `days` (one day, or every day of a month) and the spend of each of `history`.
    func totals(days: [String], history: [String], on eventLoop: any EventLoop) -> EventLoopFuture<StoredTotals>

    /// Where every budget (the host's and each scoped one) stands on `day` and in its month.
    func budgetStandings(day: String, budget: BudgetSettings, on eventLoop: any EventLoop) -> EventLoopFuture<[BudgetStanding]>

    /// Spend of a period as last known, without waiting (for routing decisions).
    func knownSpend(_ scope: BudgetScope, period: String) -> Money

    /// Adds this daemon's cache lookups to a day.
    func addCacheCounters(_ counters: CacheCounterSet, day: String)

    /// For `ping`, `report` and the service status line.
    var status: StoreStatus { get }

    /// Background upkeep (replaying a backlog, refreshing known spend), called every second or so
    /// with today's day and the current budgets.
    func maintain(today: String, budget: BudgetSettings, on eventLoop: any EventLoop)

    /// The store's backend is reachable again (Redis came back): catch up at once rather than at
    /// the next upkeep.
    func backendBecameAvailable(today: String, budget: BudgetSettings, on eventLoop: any EventLoop)

    /// Waits (off the event loops, at start) until the backend has been checked and spend can go
    /// to it; false when `timeoutMillis` passed first.
    func waitUntilReady(timeoutMillis: Int64) -> Bool

    func close()
}

/// Spend totals as a store holds them.
public struct StoredTotals: Sendable {
    public var totals: PeriodTotals
    /// Spend of each requested history day, oldest first.
    public var history: [(day: String, spent: Money)]
    /// Cache lookups of every daemon sharing the store (Redis only).
    public var fleetCache: CacheCounterSet?
    /// Reserved but unsettled money of the period.
    public var reserved: Money = .zero

    /// The period whose reserved money a report of `days` shows: the day, or the month of a
    /// month's days. Both stores key reserved money this way (`d:<day>`, `m:<month>`).
    public static func reservedKey(days: [String]) -> String {
        days.count == 1
            ? SpendSchema.periodKey(.day, days[0]) : SpendSchema.periodKey(.month, PeriodCalendar.monthKey(ofDay: days.first ?? ""))
    }
}

public struct StoreStatus: Sendable {
    public enum Kind: String, Sendable {
        case embedded
        case redis
    }

    public var kind: Kind
    /// "up" or "down" with Redis; "ok" or "failed" for the ledger alone.
    public var state: String
    /// Records acknowledged while Redis was unreachable, not yet in Redis.
    public var backlog: Int
    public var lastError: String?
    /// With Redis: where spend goes now, `redis` or `ledger` (the backlog).
    public var spendIn: String?
    /// Why spend is not kept in Redis, when its eviction policy may evict it.
    public var spendNote: String?
    /// Times this daemon put its spend back into Redis after Redis lost it, since start.
    public var spendRestores = 0
}

public struct ReservationGrant: Sendable {
    public var id: String
    public var amount: Money
    public var expiresAtMillis: Int64
    public var day: BudgetStatus
    public var month: BudgetStatus
}

/// A hard budget would be passed.
public struct BudgetExceeded: Error, Sendable {
    /// The day's or the month's budget.
    public var scope: BudgetScope
    public var period: String
    public var spent: Money
    public var reserved: Money
    public var budget: Money
    public var requested: Money
    /// Whose budget: the host's, or a `[[budgets]]` entry's scope.
    public var budgetScope: SpendScope = .host
}
