import CostdCore

/// The result of recording one call: the record as counted, where its periods stand, and the
/// alerts it raised.
public struct RecordReceipt: Sendable {
    public var record: SpendRecord
    public var day: BudgetStatus
    public var month: BudgetStatus
    public var alerts: [BudgetAlert]
    /// True when the `recordId` had been recorded before: nothing was counted again, and the
    /// first result is returned.
    public var duplicate: Bool
    /// True when Redis could not take it in time: it is safe on local disk and will be replayed.
    public var backlogged = false

    public init(record: SpendRecord, day: BudgetStatus, month: BudgetStatus, alerts: [BudgetAlert], duplicate: Bool) {
        self.record = record
        self.day = day
        self.month = month
        self.alerts = alerts
        self.duplicate = duplicate
    }
}
