/// A JSON document as a tree.
///
/// Numbers keep their literal text so that money and token counts are read exactly
/// (see ``JSONNumber``); objects keep their members in document order and, when they
/// come from ``JSONParser``, the byte range of each member's value in the source, so a
/// value can be stored and returned byte-for-byte without re-encoding it.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON number, kept as its validated literal text.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal as it appeared in the document (already validated against the JSON grammar).
    public let text: String

    /// Wraps text that is known to be a valid JSON number literal.
    public init(validatedLiteral text: String) {
        self.text = text
    }

    public init(_ value: Int64) {
        self.text = String(value)
    }

    public init(_ value: Int) {
        self.text = String(value)
    }

    /// A finite double, printed in the shortest form that reads back to the same value.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            self.text = String(Int64(value))
        } else {
            self.text = "\(value)"
        }
    }

    public var description: String { text }

    /// The value as an integer, if the literal is an integer (`12`, `-3`, `1e3`, `2.0`) that fits.
    public var int64: Int64? {
        DecimalLiteral(text)?.scaled(byPowerOfTen: 0, rounding: false)
    }

    public var double: Double? { Double(text) }

    /// The value multiplied by 10^power, rounded half away from zero to an integer; nil on overflow.
    ///
    /// This is how decimal money is read exactly: `scaled(byPowerOfTen: 9)` of `0.15` is
    /// `150000000` nano-units, with no binary floating point in between.
    public func scaled(byPowerOfTen power: Int) -> Int64? {
        DecimalLiteral(text)?.scaled(byPowerOfTen: power, rounding: true)
    }
}

/// The members of a JSON object, in document order.
public struct JSONObject: Sendable, Equatable {
    public struct Member: Sendable {
        public var key: String
        public var value: JSONValue
        /// Where the value's bytes lie in the parsed source, if the object was parsed.
        public var sourceRange: Range<Int>?

        public init(key: String, value: JSONValue, sourceRange: Range<Int>? = nil) {
            self.key = key
            self.value = value
            self.sourceRange = sourceRange
        }
    }

    public var members: [Member]

    public init(_ members: [Member] = []) {
        self.members = members
    }

    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        self.members = pairs.map { Member(key: $0.key, value: $0.value) }
    }

    /// The last member with this key (JSON-RPC peers that repeat a key mean the last one).
    public subscript(key: String) -> JSONValue? {
        member(key)?.value
    }

    public func member(_ key: String) -> Member? {
        for index in members.indices.reversed() where members[index].key == key {
            return members[index]
        }
        return nil
    }

    public var isEmpty: Bool { members.isEmpty }
    public var count: Int { members.count }

    public mutating func append(_ key: String, _ value: JSONValue) {
        members.append(Member(key: key, value: value))
    }

    /// Gives `key` the value `value`: the member keeps its place (and its duplicates go), or a
    /// new one goes last.
    public mutating func set(_ key: String, _ value: JSONValue) {
        guard let first = members.firstIndex(where: { $0.key == key }) else {
            append(key, value)
            return
        }
        members[first] = Member(key: key, value: value)
        members = members.enumerated().filter { $0.offset == first || $0.element.key != key }.map(\.element)
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue {
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    public var numberValue: JSONNumber? {
        if case .number(let number) = self { return number }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    public static func int(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONObject.Member(key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// A decimal literal split into its digits and a power of ten: value = digits × 10^exponent.
struct DecimalLiteral {
    var negative: Bool
    var digits: [UInt8]  // without leading zeros; empty means zero
    var exponent: Int

    init?(_ text: String) {
        var negative = false
        var digits: [UInt8] = []
        var exponent = 0
        var utf8 = Array(text.utf8)[...]
        if utf8.first == UInt8(ascii: "-") {
            negative = true
            utf8 = utf8.dropFirst()
        } else if utf8.first == UInt8(ascii: "+") {
            utf8 = utf8.dropFirst()
        }
        var sawDigit = false
        var inFraction = false
        while let byte = utf8.first {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                sawDigit = true
                if !(digits.isEmpty && byte == UInt8(ascii: "0")) {
                    digits.append(byte - UInt8(ascii: "0"))
                }
                if inFraction { exponent -= 1 }
            } else if byte == UInt8(ascii: "."), !inFraction {
                inFraction = true
            } else {
                break
            }
            utf8 = utf8.dropFirst()
        }
        guard sawDigit else { return nil }
        if let byte = utf8.first, byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            utf8 = utf8.dropFirst()
            var exponentNegative = false
            if utf8.first == UInt8(ascii: "-") {
                exponentNegative = true
                utf8 = utf8.dropFirst()
            } else if utf8.first == UInt8(ascii: "+") {
                utf8 = utf8.dropFirst()
            }
            var value = 0
            var sawExponentDigit = false
            while let byte = utf8.first, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                sawExponentDigit = true
                value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 100_000)
                utf8 = utf8.dropFirst()
            }
            guard sawExponentDigit else { return nil }
            exponent += exponentNegative ? -value : value
        }
        guard utf8.isEmpty else { return nil }
        // Leading zeros of the fraction ("0.05") were dropped above but still moved the exponent.
        self.negative = negative
        self.digits = digits
        self.exponent = exponent
    }

    /// digits × 10^(exponent + power) as an Int64; nil on overflow, or when `rounding` is false
    /// and the result is not a whole number.
    func scaled(byPowerOfTen power: Int, rounding: Bool) -> Int64? {
        if digits.isEmpty { return 0 }
        let shift = exponent + power
        var kept = digits
        var roundUp = false
        if shift < 0 {
            let drop = -shift
            if drop > kept.count {
                guard rounding else { return nil }
                return 0
            }
            let removed = kept[(kept.count - drop)...]
            guard rounding || removed.allSatisfy({ $0 == 0 }) else { return nil }
            roundUp = rounding && (removed.first ?? 0) >= 5
            kept.removeLast(drop)
        } else {
            guard kept.count + shift <= 19 else { return nil }
            kept.append(contentsOf: repeatElement(0, count: shift))
        }
        var magnitude: UInt64 = 0
        for digit in kept {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2 else { return nil }
            magnitude = sum
        }
        if roundUp {
            let (sum, overflow) = magnitude.addingReportingOverflow(1)
            guard !overflow else { return nil }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { Member(key: $0.0, value: $0.1) })
    }
}
