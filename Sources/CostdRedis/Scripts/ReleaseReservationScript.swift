/// Gives a reservation's money back without recording anything (the call was not made).
public struct ReleaseReservationScript: RedisScriptCall {
    /// Whether the reservation was open.
    public typealias Reply = Bool

    public var reservationAmountsKey: String
    public var reservationExpiryKey: String
    public var reservedTotalsKey: String
    public var id: String

    public init(id: String, keys: RedisKeys) {
        reservationAmountsKey = keys.reservationAmounts
        reservationExpiryKey = keys.reservationExpiry
        reservedTotalsKey = keys.reservedTotals
        self.id = id
    }

    public var keys: [String] { [reservationAmountsKey, reservationExpiryKey, reservedTotalsKey] }
    public func appendArguments(to command: inout RedisCommand) { command.append(id) }

    public static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Bool {
        guard let released = reply.integer else { throw .unexpected(reply, of: Self.self) }
        return released == 1
    }

    public static let script = RedisScript(
        ReservationLua.giveBack + """
            if giveBack(KEYS[1], KEYS[2], KEYS[3], ARGV[1]) then return 1 end
            return 0
            """
    )
}
