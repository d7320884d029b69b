import CostdCore

/// What `report` says of the ledger's durability: when records are acknowledged, and how far the
/// disk lags behind what is written.
public struct LedgerDurability: Sendable, Equatable {
    public var fsync: LedgerSettings.Fsync
    /// Entries written and not yet synced: what a power loss now could lose.
    public var unsyncedEntries: UInt64
    public var syncWindows: SyncWindows.Summary
}
