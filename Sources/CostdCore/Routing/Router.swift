/// Model tiers and the rules that pick one for a request.
///
/// The defaults reproduce the classic tiering: `classification`, `extraction` and
/// `translation` go to the `simple` tier (gpt-4o-mini), everything else to `complex` (gpt-4o).
public struct RoutingRules: Sendable, Equatable {
    public struct Tier: Sendable, Equatable {
        public var name: String
        public var model: String
        public init(name: String, model: String) {
            self.name = name
            self.model = model
        }
    }

    /// Tiers from the cheapest to the most capable; "up a tier" means the next one in this list.
    public var tiers: [Tier]
    /// Task name to tier name.
    public var taskTiers: [String: String]
    /// The tier of a request whose task has no rule.
    public var defaultTier: String
    /// A prompt estimated above this many tokens goes up one tier; nil turns the rule off.
    public var promptTokenThreshold: Int64?
    /// Recommended `maxTokens` by task.
    public var taskMaxTokens: [String: Int64]
    public var defaultMaxTokens: Int64
    /// Once the day's (or month's) spend passes this fraction of its budget, requests above
    /// `downgradeTier` are routed to it, with reason `budget`. Parts per million; nil: off.
    public var budgetDowngradeFractionPPM: Int64?
    /// The tier that budget pressure routes to; nil means the cheapest.
    public var downgradeTier: String?

    public init(
        tiers: [Tier],
        taskTiers: [String: String],
        defaultTier: String,
        promptTokenThreshold: Int64?,
        taskMaxTokens: [String: Int64],
        defaultMaxTokens: Int64,
        budgetDowngradeFractionPPM: Int64?,
        downgradeTier: String? = nil
    ) {
        self.tiers = tiers
        self.taskTiers = taskTiers
        self.defaultTier = defaultTier
        self.promptTokenThreshold = promptTokenThreshold
        self.taskMaxTokens = taskMaxTokens
        self.defaultMaxTokens = defaultMaxTokens
        self.budgetDowngradeFractionPPM = budgetDowngradeFractionPPM
        self.downgradeTier = downgradeTier
    }

    public static let `default` = RoutingRules(
        tiers: [Tier(name: "simple", model: "gpt-4o-mini"), Tier(name: "complex", model: "gpt-4o")],
        taskTiers: ["classification": "simple", "extraction": "simple", "translation": "simple"],
        defaultTier: "complex",
        promptTokenThreshold: 8_000,
        taskMaxTokens: [
            "classification": 16, "extraction": 512, "translation": 1_024, "summarization": 512, "chat": 1_024,
        ],
        defaultMaxTokens: 1_024,
        budgetDowngradeFractionPPM: 900_000
    )

    /// Checks that every tier a rule names exists.
    public func validate() throws(ConfigError) {
        guard !tiers.isEmpty else { throw ConfigError("routing: at least one tier is needed") }
        let names = Set(tiers.map(\.name))
        guard names.count == tiers.count else { throw ConfigError("routing: tier names must be unique") }
        guard names.contains(defaultTier) else {
            throw ConfigError("routing.default_tier '\(defaultTier)' is not a tier")
        }
        for (task, tier) in taskTiers where !names.contains(tier) {
            throw ConfigError("routing.tasks.\(task) names tier '\(tier)', which does not exist")
        }
        if let downgradeTier, !names.contains(downgradeTier) {
            throw ConfigError("routing.budget_downgrade_to '\(downgradeTier)' is not a tier")
        }
        if let fraction = budgetDowngradeFractionPPM, fraction <= 0 {
            throw ConfigError("routing.budget_downgrade_fraction must be above 0")
        }
        guard defaultMaxTokens > 0, taskMaxTokens.values.allSatisfy({ $0 > 0 }) else {
            throw ConfigError("routing: max_tokens must be positive")
        }
    }
}

/// What a routing decision was based on.
public struct RouteRequest: Sendable {
    public var task: String?
    /// The prompt's size in tokens (given by the client or counted), when known.
    public var promptTokens: Int64?
    /// Whether the day's or month's spend is past the downgrade fraction of its budget.
    public var underBudgetPressure: Bool

    public init(task: String?, promptTokens: Int64?, underBudgetPressure: Bool) {
        self.task = task
        self.promptTokens = promptTokens
        self.underBudgetPressure = underBudgetPressure
    }
}

public struct RouteDecision: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// The task has a rule.
        case task
        /// No rule for the task (or no task): the default tier.
        case `default`
        /// The prompt was above the size threshold: one tier up.
        case promptSize = "prompt-size"
        /// Spend is past the downgrade fraction of a budget.
        case budget
    }

    public var model: String
    public var tier: String
    public var reason: Reason
    public var maxTokens: Int64
    /// One sentence on how the decision came about.
    public var detail: String
}

public struct Router: Sendable {
    public let rules: RoutingRules

    public init(rules: RoutingRules) {
        self.rules = rules
    }

    public func route(_ request: RouteRequest) -> RouteDecision {
        var reason: RouteDecision.Reason
        var tierIndex: Int
        var detail: String
        if let task = request.task, let tierName = rules.taskTiers[task], let index = index(ofTier: tierName) {
            tierIndex = index
            reason = .task
            detail = "task '\(task)' maps to tier '\(tierName)'"
        } else {
            tierIndex = index(ofTier: rules.defaultTier) ?? rules.tiers.count - 1
            reason = .default
            detail = request.task.map { "no rule for task '\($0)': default tier" } ?? "no task given: default tier"
        }
        if let threshold = rules.promptTokenThreshold, let tokens = request.promptTokens, tokens > threshold,
            tierIndex + 1 < rules.tiers.count
        {
            tierIndex += 1
            reason = .promptSize
            detail = "prompt of \(tokens) tokens is above \(threshold): up one tier"
        }
        if request.underBudgetPressure {
            let floor = rules.downgradeTier.flatMap(index(ofTier:)) ?? 0
            if tierIndex > floor {
                tierIndex = floor
                reason = .budget
                detail = "spend is past \(Double(rules.budgetDowngradeFractionPPM ?? 0) / 10_000)% of a budget: downgraded"
            }
        }
        let tier = rules.tiers[tierIndex]
        let maxTokens = request.task.flatMap { rules.taskMaxTokens[$0] } ?? rules.defaultMaxTokens
        return RouteDecision(model: tier.model, tier: tier.name, reason: reason, maxTokens: maxTokens, detail: detail)
    }

    private func index(ofTier name: String) -> Int? {
        rules.tiers.firstIndex { $0.name == name }
    }

    /// A rough token count for text when no tokenizer is available: about four bytes per token.
    public static func estimateTokens(utf8Count: Int) -> Int64 {
        Int64((utf8Count + 3) / 4)
    }
}
