import CostdCore
import Logging

extension BudgetAlert {
    /// The journal's MESSAGE_ID of every budget alert: `journalctl MESSAGE_ID=96f4146813dd47ccb9f2e9ce1aa34833`.
    static let journalMessageId = "96f4146813dd47ccb9f2e9ce1aa34833"

    /// The one log line of an alert: when a record fires it, or when a replayed backlog record
    /// does (`replayed`). Under systemd it is a structured journal entry (``JournalLogHandler``).
    func log(to logger: Logger, replayed: Bool = false) {
        var metadata: Logger.Metadata = [
            "scope": "\(scope.rawValue)", "period": "\(period)", "level": "\(level.rawValue)", "budget.scope": "\(budgetScope.key)",
            "spent.usd": "\(spent.decimalString)", "budget.usd": "\(budget.decimalString)",
            "MESSAGE_ID": "\(BudgetAlert.journalMessageId)",
        ]
        if replayed { metadata["replayed"] = "true" }
        logger.warning("Budget \(level == .exceeded ? "exceeded" : "warning")", metadata: metadata)
    }
}
