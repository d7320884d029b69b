import CostdCore
import Logging

extension BudgetAlert {
    /// The one log line of an alert: when a record fires it, or when a replayed backlog record
    /// does (`replayed`).
    func log(to logger: Logger, replayed: Bool = false) {
        var metadata: Logger.Metadata = [
            "scope": "\(scope.rawValue)", "period": "\(period)",
            "spent.usd": "\(spent.decimalString)", "budget.usd": "\(budget.decimalString)",
        ]
        if replayed { metadata["replayed"] = "true" }
        logger.warning("Budget \(level == .exceeded ? "exceeded" : "warning")", metadata: metadata)
    }
}
