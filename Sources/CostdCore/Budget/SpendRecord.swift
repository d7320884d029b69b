/// One priced call, as the ledger keeps it and as it is replayed.
///
/// A record with `cached == true` stands for a call that a cache hit avoided: its `cost` is
/// what the call would have cost, and it counts as savings, never as spend.
public struct SpendRecord: Sendable, Equatable {
    public var recordId: String
    public var unixMillis: Int64
    /// The day the record belongs to, fixed when it is made (a later change of time zone does
    /// not move history).
    public var day: String
    public var model: String
    public var user: String?
    public var feature: String?
    /// The caller's systemd unit, when the daemon could tell.
    public var unit: String?
    /// The caller's Unix user as the kernel reports it (SO_PEERCRED), whatever `user` says.
    public var unixUser: String?
    public var cost: Money
    public var cached: Bool
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cachedInputTokens: Int64
    /// What routing saved on this call against the baseline model (zero when not routed down).
    public var routingSaved: Money
    /// Whether the token counts were counted by costd rather than reported by the provider (a
    /// stream the client hung up on before the provider said its usage).
    public var estimated: Bool
    /// The keys of the scoped budgets (``SpendScope/key``) the record counts toward, fixed when
    /// it is made (a later change of the budgets does not move history).
    public var budgets: [String]

    public init(
        recordId: String,
        unixMillis: Int64,
        day: String,
        model: String,
        user: String? = nil,
        feature: String? = nil,
        unit: String? = nil,
        unixUser: String? = nil,
        cost: Money,
        cached: Bool = false,
        inputTokens: Int64 = 0,
        outputTokens: Int64 = 0,
        cachedInputTokens: Int64 = 0,
        routingSaved: Money = .zero,
        estimated: Bool = false,
        budgets: [String] = []
    ) {
        self.recordId = recordId
        self.unixMillis = unixMillis
        self.day = day
        self.model = model
        self.user = user
        self.feature = feature
        self.unit = unit
        self.unixUser = unixUser
        self.cost = cost
        self.cached = cached
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.routingSaved = routingSaved
        self.estimated = estimated
        self.budgets = budgets
    }

    /// The spend this record adds to its period (zero for a call a cache hit avoided).
    public var spend: Money { cached ? .zero : cost }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", recordId)
        writer.field("t", unixMillis)
        writer.field("day", day)
        writer.field("model", model)
        if let user { writer.field("user", user) }
        if let feature { writer.field("feature", feature) }
        if let unit { writer.field("unit", unit) }
        if let unixUser { writer.field("uu", unixUser) }
        writer.field("cost", cost.nanos)
        if cached { writer.field("cached", true) }
        writer.field("in", inputTokens)
        writer.field("out", outputTokens)
        if cachedInputTokens != 0 { writer.field("cin", cachedInputTokens) }
        if routingSaved != .zero { writer.field("rsaved", routingSaved.nanos) }
        if estimated { writer.field("est", true) }
        if !budgets.isEmpty {
            writer.field("b") { writer in
                writer.beginArray()
                for key in budgets {
                    writer.string(key)
                    writer.comma()
                }
                writer.endArray()
            }
        }
        writer.endObject()
    }

    public init?(json: JSONValue) {
        guard case .object(let object) = json,
            let recordId = object["id"]?.stringValue,
            let unixMillis = object["t"]?.numberValue?.int64,
            let day = object["day"]?.stringValue,
            let model = object["model"]?.stringValue,
            let cost = object["cost"]?.numberValue?.int64
        else { return nil }
        self.init(
            recordId: recordId,
            unixMillis: unixMillis,
            day: day,
            model: model,
            user: object["user"]?.stringValue,
            feature: object["feature"]?.stringValue,
            unit: object["unit"]?.stringValue,
            unixUser: object["uu"]?.stringValue,
            cost: Money(nanos: cost),
            cached: object["cached"]?.boolValue ?? false,
            inputTokens: object["in"]?.numberValue?.int64 ?? 0,
            outputTokens: object["out"]?.numberValue?.int64 ?? 0,
            cachedInputTokens: object["cin"]?.numberValue?.int64 ?? 0,
            routingSaved: Money(nanos: object["rsaved"]?.numberValue?.int64 ?? 0),
            estimated: object["est"]?.boolValue ?? false,
            budgets: object["b"]?.arrayValue?.compactMap(\.stringValue) ?? []
        )
    }
}
