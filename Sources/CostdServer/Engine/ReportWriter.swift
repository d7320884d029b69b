import CostdCore
import CostdProtocol
import CostdRedis
import NIOCore

/// The `report` result, in one place.
enum ReportWriter {
    struct Input {
        var date: String
        var period: BudgetScope
        var periodKey: String
        var stored: StoredTotals
        var budget: Money?
        var baselineModel: String
        var l1: L1Cache.Statistics
        var status: StoreStatus
        var ledger: LedgerDurability
        /// Callers of this daemon waiting now for another's single-flight lease.
        var waiting: Int
        /// Every budget's standing on the date and in its month.
        var budgets: [BudgetStanding]
    }

    static func write(_ input: Input, to writer: inout JSONWriter) {
        let totals = input.stored.totals
        writer.beginObject()
        writer.field("date", input.date)
        writer.field("period", input.period.rawValue)
        writer.field("periodKey", input.periodKey)
        writer.field("totalCostUsd", totals.spent)
        writer.key("budgetUsd")
        if let budget = input.budget { writer.money(budget) } else { writer.null() }
        writer.comma()
        writer.key("remainingUsd")
        if let budget = input.budget { writer.money(budget - totals.spent) } else { writer.null() }
        writer.comma()
        if input.stored.reserved != .zero { writer.field("reservedUsd", input.stored.reserved) }
        writer.field("requests", totals.requests)
        writer.field("cachedRequests", totals.cachedRequests)
        writer.field("inputTokens", totals.inputTokens)
        writer.field("outputTokens", totals.outputTokens)
        writer.field("cachedInputTokens", totals.cachedInputTokens)
        writer.field("byModel") { writeBreakdown(totals.byModel, &$0) }
        writer.field("byUser") { writeBreakdown(totals.byUser, &$0) }
        writer.field("byFeature") { writeBreakdown(totals.byFeature, &$0) }
        writer.field("byUnit") { writeBreakdown(totals.byUnit, &$0) }
        writer.field("byUnixUser") { writeBreakdown(totals.byUnixUser, &$0) }
        writer.field("cache") { writer in
            writer.beginObject()
            totals.cache.total.write(to: &writer)
            writer.field("savedCalls", totals.cache.total.fillHits)
            writer.field("waiting", input.waiting)
            writer.field("savedUsd", totals.savedByCache)
            writer.field("byModel") { writeCounters(totals.cache.byModel, &$0) }
            writer.field("byNamespace") { writeCounters(totals.cache.byNamespace, &$0) }
            writer.field("l1") { writer in
                writer.beginObject()
                writer.field("entries", input.l1.entries)
                writer.field("bytes", input.l1.usedBytes)
                writer.field("capacityBytes", input.l1.capacityBytes)
                writer.field("evictions", Int64(input.l1.evictions))
                writer.field("expirations", Int64(input.l1.expirations))
                writer.endObject()
            }
            if let fleet = input.stored.fleetCache {
                writer.field("fleet") { writer in
                    writer.beginObject()
                    fleet.total.write(to: &writer)
                    writer.field("savedCalls", fleet.total.fillHits)
                    writer.field("byModel") { writeCounters(fleet.byModel, &$0) }
                    writer.field("byNamespace") { writeCounters(fleet.byNamespace, &$0) }
                    writer.endObject()
                }
            }
            writer.endObject()
        }
        writer.field("savings") { writer in
            writer.beginObject()
            writer.field("cacheUsd", totals.savedByCache)
            writer.field("routingUsd", totals.savedByRouting)
            writer.field("totalUsd", totals.savedByCache + totals.savedByRouting)
            writer.field("baselineModel", input.baselineModel)
            writer.endObject()
        }
        writer.field("budgets") { writer in
            writer.beginArray()
            for standing in input.budgets {
                standing.write(to: &writer)
                writer.comma()
            }
            writer.endArray()
        }
        if !input.stored.history.isEmpty {
            writer.field("daily") { writer in
                writer.beginArray()
                for (day, spent) in input.stored.history {
                    writer.beginObject()
                    writer.field("date", day)
                    writer.field("costUsd", spent)
                    writer.endObject()
                    writer.comma()
                }
                writer.endArray()
            }
        }
        if input.status.kind == .redis {
            CostdEngine.writeStoreStatus(input.status, into: &writer)
        }
        writer.field("durability") { writer in
            writer.beginObject()
            writer.field("fsync", input.ledger.fsync.rawValue)
            writer.field("unsyncedEntries", Int64(input.ledger.unsyncedEntries))
            writer.field("syncs", Int64(input.ledger.syncWindows.syncs))
            writer.field("syncWindowMs") { writer in
                writer.beginObject()
                writer.field("p50", Double(input.ledger.syncWindows.p50Nanos) / 1e6)
                writer.field("p99", Double(input.ledger.syncWindows.p99Nanos) / 1e6)
                writer.field("max", Double(input.ledger.syncWindows.maxNanos) / 1e6)
                writer.endObject()
            }
            writer.endObject()
        }
        writer.endObject()
    }

    private static func writeBreakdown(_ map: [String: SpendBreakdown], _ writer: inout JSONWriter) {
        writer.beginObject()
        for (key, value) in map.sorted(by: { $0.value.cost > $1.value.cost || ($0.value.cost == $1.value.cost && $0.key < $1.key) }) {
            writer.field(key) { value.write(to: &$0) }
        }
        writer.endObject()
    }

    private static func writeCounters(_ map: [String: CacheCounters], _ writer: inout JSONWriter) {
        writer.beginObject()
        for (key, counters) in map.sorted(by: { $0.value.lookups > $1.value.lookups || ($0.value.lookups == $1.value.lookups && $0.key < $1.key) }) {
            writer.field(key) { writer in
                writer.beginObject()
                counters.write(to: &writer)
                writer.endObject()
            }
        }
        writer.endObject()
    }
}
