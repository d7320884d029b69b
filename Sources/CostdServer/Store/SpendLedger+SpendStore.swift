import CostdCore
import NIOCore

/// The embedded default: spend counted in the local ledger alone.
extension SpendLedger: SpendStore {
    public func record(
        _ record: SpendRecord, rememberId: Bool, reservation: String?, budget: BudgetSettings, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RecordReceipt> {
        commit(record, rememberId: rememberId, reservation: reservation, budget: budget, nowMillis: record.unixMillis, on: eventLoop)
    }

    public func reserve(_ request: ReservationRequest, budget: BudgetSettings, on eventLoop: any EventLoop)
        -> EventLoopFuture<ReservationGrant>
    {
        do {
            return eventLoop.makeSucceededFuture(try reserve(request, budget: budget))
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    public func release(reservation: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeSucceededFuture(release(reservation: reservation))
    }

    public func totals(days: [String], history: [String], on eventLoop: any EventLoop) -> EventLoopFuture<StoredTotals> {
        var stored = withBook { book in
            var totals = PeriodTotals()
            for day in days { totals.merge(book.totals(day: day)) }
            return StoredTotals(totals: totals, history: history.map { ($0, book.totals(day: $0).spent) })
        }
        stored.reserved = reserved(key: StoredTotals.reservedKey(days: days))
        return eventLoop.makeSucceededFuture(stored)
    }

    public func budgetStandings(day: String, budget: BudgetSettings, on eventLoop: any EventLoop) -> EventLoopFuture<[BudgetStanding]> {
        let standings = withState { state in
            BudgetStanding.all(
                budget, day: day,
                spent: { key, period, periodKey in
                    state.book.spent(period, period: periodKey, budget: key)
                },
                reserved: { key, period, periodKey in
                    state.reserved[SpendSchema.periodKey(period, periodKey, budget: key)] ?? .zero
                })
        }
        return eventLoop.makeSucceededFuture(standings)
    }

    public func knownSpend(_ scope: BudgetScope, period: String) -> Money {
        withBook { $0.spent(scope, period: period) }
    }

    public var status: StoreStatus {
        StoreStatus(kind: .embedded, state: isFailed ? "failed" : "ok", backlog: 0, lastError: nil)
    }

    public func maintain(today: String, budget: BudgetSettings, on eventLoop: any EventLoop) {}

    /// The ledger is local: it is never away.
    public func backendBecameAvailable(today: String, budget: BudgetSettings, on eventLoop: any EventLoop) {}

    public func waitUntilReady(timeoutMillis: Int64) -> Bool { true }
}
