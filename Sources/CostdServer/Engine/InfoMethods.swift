import CostdCore
import CostdProtocol
import CostdRedis
import NIOCore

/// `ping` and `report`.
extension CostdEngine {
    /// `{}` → `{pong:true, version, uptimeSeconds, store, ...}`.
    func ping(into writer: inout JSONWriter) {
        let status = store.status
        writer.beginObject()
        writer.field("pong", true)
        writer.field("version", CostdEngine.version)
        writer.key("uptimeSeconds")
        writer.decimal(Int64((clock.monotonicNanos - startedAtNanos) / 1_000_000), scale: 3)
        writer.comma()
        writer.field("store", status.kind.rawValue)
        CostdEngine.writeStoreStatus(status, into: &writer)
        writer.endObject()
    }

    static func writeStoreStatus(_ status: StoreStatus, into writer: inout JSONWriter) {
        switch status.kind {
        case .embedded:
            writer.field("ledger", status.state)
        case .redis:
            writer.field("redis") { writer in
                writer.beginObject()
                writer.field("state", status.state)
                writer.field("backlog", status.backlog)
                if let error = status.lastError { writer.field("lastError", error) }
                if let spendIn = status.spendIn { writer.field("spendIn", spendIn) }
                if let note = status.spendNote { writer.field("spendNote", note) }
                writer.field("spendRestores", status.spendRestores)
                writer.endObject()
            }
        }
    }


    /// `{date?, period?, days?}` → spend, budget and cache figures of a day or a month.
    func report(_ params: Params, on eventLoop: any EventLoop) throws(RPCError) -> EventLoopFuture<[UInt8]> {
        let rules = self.rules
        var date = today()
        if let requested = try params.string("date", maxLength: 32) {
            guard let day = PeriodCalendar.parseDay(requested) else {
                throw .invalidParams("'date' must be a date as YYYY-MM-DD")
            }
            date = day
        }
        let scope: BudgetScope
        switch try params.string("period", maxLength: 16) ?? "day" {
        case "day": scope = .day
        case "month": scope = .month
        default: throw .invalidParams("'period' must be \"day\" or \"month\"")
        }
        let historyDays = Int(try params.count("days", max: 400) ?? 0)
        flushCacheCounters()
        let periodKey = scope == .day ? date : PeriodCalendar.monthKey(ofDay: date)
        let days = scope == .day ? [date] : PeriodCalendar.daysOf(month: periodKey)
        let history = PeriodCalendar.days(endingAt: date, count: historyDays)
        let statistics = cache.l1.statistics
        let status = store.status
        let standings = store.budgetStandings(day: date, budget: rules.budget, on: eventLoop)
        return store.totals(days: days, history: history, on: eventLoop).and(standings).map { [date] stored, standings in
            var writer = JSONWriter(reservingCapacity: 2048)
            ReportWriter.write(
                ReportWriter.Input(
                    date: date, period: scope, periodKey: periodKey, stored: stored, budget: rules.budget.budget(for: scope),
                    baselineModel: rules.configuration.baselineModel, l1: statistics, status: status,
                    ledger: self.ledger.durability, waiting: self.cache.waiters.count, budgets: standings
                ),
                to: &writer
            )
            return writer.bytes
        }
    }
}
