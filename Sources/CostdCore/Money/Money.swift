/// An exact amount of US dollars, held as an integer count of nano-dollars (10^-9 USD).
///
/// Spend is summed as integers only: a million identical records add up to exactly a million
/// times one record. JSON shows it as a decimal number with up to nine fraction digits, printed
/// from the integer, never through a binary floating-point value.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let nanosPerDollar: Int64 = 1_000_000_000

    public var nanos: Int64

    public init(nanos: Int64) {
        self.nanos = nanos
    }

    public static let zero = Money(nanos: 0)

    /// Whole dollars (for tests and defaults).
    public static func dollars(_ dollars: Int64) -> Money {
        Money(nanos: dollars * nanosPerDollar)
    }

    /// Reads a decimal USD amount exactly ("0.15", "1e-6"); nil when it does not fit.
    public init?(usd number: JSONNumber) {
        guard let nanos = number.scaled(byPowerOfTen: 9) else { return nil }
        self.nanos = nanos
    }

    /// Reads a decimal USD amount from text, as in a config file or on a command line.
    public init?(usd text: String) {
        guard let number = DecimalLiteral(text)?.scaled(byPowerOfTen: 9, rounding: true) else { return nil }
        self.nanos = number
    }

    public static func + (lhs: Money, rhs: Money) -> Money { Money(nanos: lhs.nanos &+ rhs.nanos) }
    public static func - (lhs: Money, rhs: Money) -> Money { Money(nanos: lhs.nanos &- rhs.nanos) }
    public static func += (lhs: inout Money, rhs: Money) { lhs.nanos &+= rhs.nanos }
    public static func -= (lhs: inout Money, rhs: Money) { lhs.nanos &-= rhs.nanos }
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.nanos < rhs.nanos }

    public static func * (lhs: Money, rhs: Int64) -> Money { Money(nanos: lhs.nanos * rhs) }

    /// The amount as a plain decimal: `0.00015`, `12`, `-3.5`.
    public var decimalString: String {
        let negative = nanos < 0
        let magnitude = nanos.magnitude
        let whole = magnitude / UInt64(Money.nanosPerDollar)
        var fraction = magnitude % UInt64(Money.nanosPerDollar)
        var text = negative ? "-" : ""
        text += String(whole)
        if fraction != 0 {
            var digits = 9
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text
    }

    public var description: String { "$" + decimalString }

    /// The amount in dollars as a double, for display and ratios only.
    public var dollars: Double { Double(nanos) / Double(Money.nanosPerDollar) }

    /// `self × numerator / denominator`, rounded half away from zero, computed without overflow.
    public func scaled(by numerator: Int64, over denominator: Int64) -> Money {
        Money(nanos: Int64(clamping: Money.divideRounded(Int128(nanos) * Int128(numerator), by: Int128(denominator))))
    }

    /// Integer division rounding half away from zero.
    public static func divideRounded(_ value: Int128, by divisor: Int128) -> Int128 {
        precondition(divisor > 0)
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        if remainder.magnitude * 2 >= divisor.magnitude {
            return value < 0 ? quotient - 1 : quotient + 1
        }
        return quotient
    }
}
