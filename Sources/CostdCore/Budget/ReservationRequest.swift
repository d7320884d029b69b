/// A request to set money aside before a call, against the hard budgets.
public struct ReservationRequest: Sendable {
    public var id: String
    public var amount: Money
    public var day: String
    public var month: String
    public var nowMillis: Int64
    public var expiresAtMillis: Int64
    /// The keys of the scoped budgets the call counts toward: the money is held against each,
    /// and refused when it would pass a hard one.
    public var budgets: [String]

    public init(
        id: String, amount: Money, day: String, month: String, nowMillis: Int64, expiresAtMillis: Int64, budgets: [String] = []
    ) {
        self.budgets = budgets
        self.id = id
        self.amount = amount
        self.day = day
        self.month = month
        self.nowMillis = nowMillis
        self.expiresAtMillis = expiresAtMillis
    }
}
