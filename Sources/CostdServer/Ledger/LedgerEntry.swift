import CostdCore

/// The payloads of ledger entries.
enum LedgerEntry {
    static func record(_ record: SpendRecord, alerts: [BudgetAlert], remember: Bool) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.field("k", "r")
        writer.field("r") { record.write(to: &$0) }
        if remember { writer.field("cid", true) }
        if !alerts.isEmpty { writer.field("al") { BudgetAlert.writeCompact(alerts, to: &$0) } }
        writer.endObject()
        return writer.bytes
    }

    static func backlog(_ record: SpendRecord, reservation: String?) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.field("k", "b")
        writer.field("r") { record.write(to: &$0) }
        if let reservation { writer.field("rsv", reservation) }
        writer.endObject()
        return writer.bytes
    }

    static func replayed(_ recordIds: [String]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + recordIds.count * 40)
        writer.beginObject()
        writer.field("k", "bd")
        writer.field("ids") { writer in
            writer.beginArray()
            for id in recordIds {
                writer.string(id)
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    /// Records Redis counted for this daemon, with the alerts each fired.
    static func countedInRedis(_ counted: [(record: SpendRecord, alerts: [BudgetAlert])]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + counted.count * 256)
        writer.beginObject()
        writer.field("k", "rc")
        writer.field("rs") { writer in
            writer.beginArray()
            for (record, alerts) in counted {
                writer.beginObject()
                writer.field("r") { record.write(to: &$0) }
                if !alerts.isEmpty { writer.field("al") { BudgetAlert.writeCompact(alerts, to: &$0) } }
                writer.endObject()
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    /// Alert flags seen set in Redis.
    /// Alerts read from Redis's stream: `{"k":"am","e":[alert params...]}`.
    static func mirroredAlerts(_ events: [AlertEvent]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + events.count * 160)
        writer.beginObject()
        writer.field("k", "am")
        writer.field("e") { writer in
            writer.beginArray()
            for event in events {
                event.writeParams(to: &writer)
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    static func firedInRedis(_ alerts: [SpendLedger.FiredFlag]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + alerts.count * 48)
        writer.beginObject()
        writer.field("k", "rf")
        writer.field("al") { writer in
            writer.beginArray()
            for alert in alerts {
                writer.beginObject()
                writer.field("s", alert.scope.rawValue)
                writer.field("p", alert.period)
                writer.field("l", alert.level.rawValue)
                if let budget = alert.budget { writer.field("b", budget) }
                writer.endObject()
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    /// The canary token Redis holds this daemon's spend under.
    static func redisEpoch(_ epoch: String) -> [UInt8] { text(kind: "re", field: "epoch", epoch) }

    /// This daemon's id among those sharing a Redis, written once.
    static func daemonId(_ id: String) -> [UInt8] { text(kind: "id", field: "id", id) }

    /// `{"k": kind, field: value}`.
    private static func text(kind: String, field: StaticString, _ value: String) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64)
        writer.beginObject()
        writer.field("k", kind)
        writer.field(field, value)
        writer.endObject()
        return writer.bytes
    }

    static func cacheCounters(_ counters: CacheCounterSet, day: String) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 96)
        writer.beginObject()
        writer.field("k", "c")
        writer.field("day", day)
        writer.field("c") { counters.writeCompact(to: &$0) }
        writer.endObject()
        return writer.bytes
    }
}

extension BudgetAlert {
    /// Alerts as a JSON array of their compact form (ledger entries and the snapshot).
    static func writeCompact(_ alerts: [BudgetAlert], to writer: inout JSONWriter) {
        writer.beginArray()
        for alert in alerts {
            alert.writeCompact(to: &writer)
            writer.comma()
        }
        writer.endArray()
    }

    func writeCompact(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("s", scope.rawValue)
        writer.field("l", level.rawValue)
        writer.field("p", period)
        writer.field("spent", spent.nanos)
        writer.field("budget", budget.nanos)
        if !budgetScope.isHost { writer.field("b", budgetScope.key) }
        writer.endObject()
    }

    init?(compact json: JSONValue) {
        guard let scope = json["s"]?.stringValue.flatMap(BudgetScope.init(rawValue:)),
            let level = json["l"]?.stringValue.flatMap(AlertLevel.init(rawValue:)),
            let period = json["p"]?.stringValue,
            let spent = json["spent"]?.numberValue?.int64,
            let budget = json["budget"]?.numberValue?.int64
        else { return nil }
        let budgetScope = json["b"]?.stringValue.flatMap { SpendScope(key: $0) } ?? .host
        self.init(scope: scope, level: level, period: period, spent: Money(nanos: spent), budget: Money(nanos: budget), budgetScope: budgetScope)
    }
}
