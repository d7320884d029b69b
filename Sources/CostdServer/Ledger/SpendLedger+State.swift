import CostdCore

/// The ledger's state in memory: statuses, reservations, remembered record ids, and how log
/// entries and snapshots are applied to it (the same code for a live record and a replayed one).
extension SpendLedger.State {
    func status(_ scope: BudgetScope, period: String, budget: BudgetSettings) -> BudgetStatus {
        BudgetStatus(
            spent: book.spent(scope, period: period),
            budget: budget.budget(for: scope),
            reserved: reserved[SpendSchema.periodKey(scope, period), default: .zero]
        )
    }

    /// Closes a reservation; true when it was open.
    @discardableResult
    mutating func settle(_ id: String) -> Bool {
        guard let reservation = reservations.removeValue(forKey: id) else { return false }
        hold(.zero - reservation.amount, day: reservation.day, month: reservation.month, budgets: reservation.budgets)
        return true
    }

    /// Adds `amount` to the reserved money of a day and month, the host's and each scoped budget's.
    mutating func hold(_ amount: Money, day: String, month: String, budgets: [String]) {
        reserved[SpendSchema.periodKey(.day, day), default: .zero] += amount
        reserved[SpendSchema.periodKey(.month, month), default: .zero] += amount
        for key in budgets {
            reserved[SpendSchema.periodKey(.day, day, budget: key), default: .zero] += amount
            reserved[SpendSchema.periodKey(.month, month, budget: key), default: .zero] += amount
        }
    }

    mutating func expireReservations(nowMillis: Int64) {
        for (id, reservation) in reservations where reservation.expiresAtMillis <= nowMillis {
            settle(id)
        }
    }

    mutating func remember(_ record: SpendRecord, alerts: [BudgetAlert], sequence: UInt64, expiresAtMillis: Int64) {
        recordIds[record.recordId] = SpendLedger.RememberedRecord(
            day: record.day, cost: record.cost, cached: record.cached, alerts: alerts,
            expiresAtMillis: expiresAtMillis, sequence: sequence
        )
        recordIdExpiry.append((expiresAtMillis, record.recordId))
        while recordIds.count > recordIdCapacity, recordIdExpiryHead < recordIdExpiry.count {
            let (expires, id) = recordIdExpiry[recordIdExpiryHead]
            recordIdExpiryHead += 1
            if recordIds[id]?.expiresAtMillis == expires {
                recordIds.removeValue(forKey: id)
                recordIdsForgottenEarly += 1
            }
        }
        compactRecordIdExpiry()
    }

    mutating func expireRecordIds(nowMillis: Int64) {
        while recordIdExpiryHead < recordIdExpiry.count, recordIdExpiry[recordIdExpiryHead].expiresAtMillis <= nowMillis {
            let id = recordIdExpiry[recordIdExpiryHead].id
            if let remembered = recordIds[id], remembered.expiresAtMillis <= nowMillis {
                recordIds.removeValue(forKey: id)
            }
            recordIdExpiryHead += 1
        }
        compactRecordIdExpiry()
    }

    /// Drops the consumed front of the expiry queue once it is most of the queue.
    private mutating func compactRecordIdExpiry() {
        if recordIdExpiryHead > 4096, recordIdExpiryHead * 2 > recordIdExpiry.count {
            recordIdExpiry.removeFirst(recordIdExpiryHead)
            recordIdExpiryHead = 0
        }
    }

    /// Applies one replayed log entry.
    mutating func apply(entry json: JSONValue, sequence: UInt64, nowMillis: Int64) {
        switch json["k"]?.stringValue {
        case "r":
            guard let recordJSON = json["r"], let record = SpendRecord(json: recordJSON) else { return }
            book.apply(record)
            let alerts = (json["al"]?.arrayValue ?? []).compactMap(BudgetAlert.init(compact:))
            for alert in alerts {
                book.markFired(alert.scope, period: alert.period, level: alert.level, budget: alert.budgetKey)
                alertLog.append(alert, at: record.unixMillis)
            }
            if json["cid"]?.boolValue == true {
                rememberReplayed(record, alerts: alerts, nowMillis: nowMillis)
            }
        case "c":
            guard let day = json["day"]?.stringValue, let counters = json["c"] else { return }
            book.addCacheCounters(CacheCounterSet(compact: counters), day: day)
        case "b":
            guard let recordJSON = json["r"], let record = SpendRecord(json: recordJSON) else { return }
            backlog.add(record, reservation: json["rsv"]?.stringValue)
        case "bd":
            backlog.remove((json["ids"]?.arrayValue ?? []).compactMap(\.stringValue))
        case "rc":
            keepCounted(
                (json["rs"]?.arrayValue ?? []).compactMap { element in
                    guard let recordJSON = element["r"], let record = SpendRecord(json: recordJSON) else { return nil }
                    return (record, (element["al"]?.arrayValue ?? []).compactMap(BudgetAlert.init(compact:)))
                })
        case "rf":
            for alert in json["al"]?.arrayValue ?? [] {
                guard let scope = alert["s"]?.stringValue.flatMap(BudgetScope.init(rawValue:)), let period = alert["p"]?.stringValue,
                    let level = alert["l"]?.stringValue.flatMap(AlertLevel.init(rawValue:))
                else { continue }
                redisBook.markFired(scope, period: period, level: level, budget: alert["b"]?.stringValue)
            }
        case "am":
            for element in json["e"]?.arrayValue ?? [] {
                if let event = AlertEvent(params: element) { alertLog.mirror(event) }
            }
        case "re":
            redisEpoch = json["epoch"]?.stringValue
        case "id":
            daemonId = json["id"]?.stringValue ?? daemonId
        default:
            break
        }
    }

    /// Records Redis counted for this daemon, into ``redisBook``.
    mutating func keepCounted(_ counted: [(record: SpendRecord, alerts: [BudgetAlert])]) {
        for (record, alerts) in counted {
            redisBook.apply(record)
            for alert in alerts { redisBook.markFired(alert.scope, period: alert.period, level: alert.level, budget: alert.budgetKey) }
        }
    }

    private mutating func rememberReplayed(_ record: SpendRecord, alerts: [BudgetAlert], nowMillis: Int64) {
        let expires = record.unixMillis + recordIdWindowMillis
        guard expires > nowMillis else { return }
        remember(record, alerts: alerts, sequence: 0, expiresAtMillis: expires)
    }

    func snapshot(generation: Int, nowMillis: Int64) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 1 << 16)
        writer.beginObject()
        writer.field("v", 1)
        writer.field("gen", generation)
        writer.field("book") { book.writeSnapshot(to: &$0) }
        writer.field("redisBook") { redisBook.writeSnapshot(to: &$0) }
        if let redisEpoch { writer.field("redisEpoch", redisEpoch) }
        writer.field("daemonId", daemonId)
        writer.field("alertLog") { writer in
            writer.beginArray()
            for event in alertLog.events {
                event.writeParams(to: &writer)
                writer.comma()
            }
            writer.endArray()
        }
        let waiting = backlog.pending()
        writer.field("backlog") { writer in
            writer.beginArray()
            for entry in waiting {
                entry.record.write(to: &writer)
                writer.comma()
            }
            writer.endArray()
        }
        // Beside the records rather than in them, so that older daemons still read the backlog.
        writer.field("backlogReservations") { writer in
            writer.beginObject()
            for entry in waiting {
                if let reservation = entry.reservation { writer.field(entry.record.recordId) { $0.string(reservation) } }
            }
            writer.endObject()
        }
        writer.field("ids") { writer in
            writer.beginArray()
            for (id, remembered) in recordIds where remembered.expiresAtMillis > nowMillis {
                // A record with only what is remembered (the format is a record's, as before).
                let record = SpendRecord(
                    recordId: id, unixMillis: remembered.expiresAtMillis - recordIdWindowMillis, day: remembered.day,
                    model: "", cost: remembered.cost, cached: remembered.cached
                )
                writer.beginObject()
                writer.field("r") { record.write(to: &$0) }
                writer.field("exp", remembered.expiresAtMillis)
                writer.field("al") { BudgetAlert.writeCompact(remembered.alerts, to: &$0) }
                writer.endObject()
                writer.comma()
            }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    mutating func load(snapshot json: JSONValue, nowMillis: Int64) throws {
        guard json["v"]?.numberValue?.int64 == 1, let generation = json["gen"]?.numberValue?.int64,
            let bookJSON = json["book"]
        else { throw SnapshotError("snapshot.json is not a costd ledger snapshot (version 1)") }
        book = try SpendBook(snapshot: bookJSON)
        if let redisBookJSON = json["redisBook"] { redisBook = try SpendBook(snapshot: redisBookJSON) }
        redisEpoch = json["redisEpoch"]?.stringValue
        daemonId = json["daemonId"]?.stringValue ?? daemonId
        for element in json["alertLog"]?.arrayValue ?? [] {
            if let event = AlertEvent(params: element) { alertLog.mirror(event) }
        }
        self.generation = Int(generation)
        let reservations = json["backlogReservations"]
        for element in json["backlog"]?.arrayValue ?? [] {
            guard let record = SpendRecord(json: element) else { continue }
            backlog.add(record, reservation: reservations?[record.recordId]?.stringValue)
        }
        var ids: [(record: SpendRecord, expires: Int64, alerts: [BudgetAlert])] = []
        for element in json["ids"]?.arrayValue ?? [] {
            guard let recordJSON = element["r"], let record = SpendRecord(json: recordJSON),
                let expires = element["exp"]?.numberValue?.int64, expires > nowMillis
            else { continue }
            ids.append((record, expires, (element["al"]?.arrayValue ?? []).compactMap(BudgetAlert.init(compact:))))
        }
        // Oldest first, as they were remembered: the expiry queue stays in order.
        for id in ids.sorted(by: { $0.expires < $1.expires }) {
            remember(id.record, alerts: id.alerts, sequence: 0, expiresAtMillis: id.expires)
        }
    }
}
