/// A request to set money aside before a call, against the hard budgets.
public struct ReservationRequest: Sendable {
    public var id: String
    public var amount: Money
    public var day: String
    public var month: String
    public var nowMillis: Int64
    public var expiresAtMillis: Int64

    public init(id: String, amount: Money, day: String, month: String, nowMillis: Int64, expiresAtMillis: Int64) {
        self.id = id
        self.amount = amount
        self.day = day
        self.month = month
        self.nowMillis = nowMillis
        self.expiresAtMillis = expiresAtMillis
    }
}
