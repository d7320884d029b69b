/// Writes compact JSON into a byte array.
///
/// One writer is used for every response and every file costd writes, so escaping is done
/// the same way everywhere: `"`, `\` and control characters are escaped, everything else is
/// written as raw UTF-8.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func raw(_ literal: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends bytes that are already valid JSON (a stored value, a pre-encoded fragment).
    /// Concrete overloads, not one generic: a generic called from another module would run
    /// unspecialised, a byte at a time, on the hot path.
    public mutating func rawJSON(_ fragment: [UInt8]) {
        bytes.append(contentsOf: fragment)
    }

    public mutating func rawJSON(_ fragment: ArraySlice<UInt8>) {
        bytes.append(contentsOf: fragment)
    }

    public mutating func rawJSON(_ fragment: String.UTF8View) {
        bytes.append(contentsOf: fragment)
    }

    public mutating func rawJSON(_ fragment: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: fragment)
    }

    public mutating func null() { raw("null") }

    public mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    public mutating func int(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func int(_ value: Int) {
        int(Int64(value))
    }

    /// `units` of 10^-`scale` as an exact decimal number, trailing zeros of the fraction left
    /// out (`12500, scale 3` is `12.5`): no `Double` in between, so nothing to round.
    public mutating func decimal(_ units: Int64, scale: Int) {
        precondition((0...18).contains(scale), "a scale Int64 can hold")
        var divisor: Int64 = 1
        for _ in 0..<scale { divisor *= 10 }
        if units < 0 { bytes.append(UInt8(ascii: "-")) }
        let magnitude = units.magnitude
        bytes.append(contentsOf: String(magnitude / UInt64(divisor)).utf8)
        var fraction = magnitude % UInt64(divisor)
        guard fraction > 0 else { return }
        var digits = scale
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        bytes.append(UInt8(ascii: "."))
        let text = String(fraction)
        for _ in 0..<(digits - text.utf8.count) { bytes.append(UInt8(ascii: "0")) }
        bytes.append(contentsOf: text.utf8)
    }

    public mutating func double(_ value: Double) {
        if let number = JSONNumber(value) { bytes.append(contentsOf: number.text.utf8) } else { null() }
    }

    public mutating func number(_ number: JSONNumber) {
        bytes.append(contentsOf: number.text.utf8)
    }

    /// A quoted, escaped string.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            var runStart = 0
            while true {
                let special = JSONStringScanner.firstSpecialByte(in: raw, from: runStart, stopAtNonASCII: false)
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[runStart..<special]))
                guard special < raw.count else { break }
                appendEscaped(raw[special])
                runStart = special + 1
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscaped(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case 0x22: bytes.append(0x22)
        case 0x5C: bytes.append(0x5C)
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        default:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }

    /// Writes a value as it is (object members in their order).
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let bool): self.bool(bool)
        case .number(let number): self.number(number)
        case .string(let string): self.string(string)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in array.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                self.value(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (offset, member) in object.members.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                string(member.key)
                bytes.append(UInt8(ascii: ":"))
                self.value(member.value)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    // MARK: - Building objects field by field

    /// Starts an object; pair with ``endObject()``. Fields are written with the `field` methods.
    public mutating func beginObject() { bytes.append(UInt8(ascii: "{")) }
    public mutating func endObject() {
        if bytes.last == UInt8(ascii: ",") { bytes.removeLast() }
        bytes.append(UInt8(ascii: "}"))
    }
    public mutating func beginArray() { bytes.append(UInt8(ascii: "[")) }
    public mutating func endArray() {
        if bytes.last == UInt8(ascii: ",") { bytes.removeLast() }
        bytes.append(UInt8(ascii: "]"))
    }
    /// Separates array elements written with the plain value methods.
    public mutating func comma() { bytes.append(UInt8(ascii: ",")) }

    /// Writes `"key":` — the value follows, then a comma is added by the field helpers.
    public mutating func key(_ key: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(key)
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    public mutating func key(_ key: String) {
        string(key)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ key: StaticString, _ value: String) {
        self.key(key)
        string(value)
        comma()
    }

    public mutating func field(_ key: StaticString, _ value: Int64) {
        self.key(key)
        int(value)
        comma()
    }

    public mutating func field(_ key: StaticString, _ value: Int) {
        field(key, Int64(value))
    }

    public mutating func field(_ key: StaticString, _ value: Bool) {
        self.key(key)
        bool(value)
        comma()
    }

    public mutating func field(_ key: StaticString, _ value: Double) {
        self.key(key)
        double(value)
        comma()
    }

    public mutating func field(_ key: StaticString, _ value: Money) {
        self.key(key)
        money(value)
        comma()
    }

    public mutating func field(_ key: StaticString, _ value: JSONValue) {
        self.key(key)
        self.value(value)
        comma()
    }

    /// A field whose value is written by `body`.
    public mutating func field(_ key: StaticString, _ body: (inout JSONWriter) -> Void) {
        self.key(key)
        body(&self)
        comma()
    }

    public mutating func field(_ key: String, _ body: (inout JSONWriter) -> Void) {
        self.key(key)
        body(&self)
        comma()
    }

    /// USD as an exact decimal number.
    public mutating func money(_ value: Money) {
        bytes.append(contentsOf: value.decimalString.utf8)
    }
}

extension JSONValue {
    /// Compact JSON text.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    public var jsonString: String {
        String(decoding: encoded(), as: UTF8.self)
    }

    /// The canonical form: object keys sorted by their UTF-8 bytes, no insignificant white
    /// space, strings minimally escaped, numbers normalised (`1.0` and `1` are the same), so two
    /// documents that mean the same thing have the same bytes.
    public func canonicalBytes() -> [UInt8] {
        var writer = JSONWriter()
        writer.canonical(self)
        return writer.bytes
    }
}

extension JSONWriter {
    /// Writes `value` in canonical form (see ``JSONValue/canonicalBytes()``), without building
    /// a canonical copy of it first.
    public mutating func canonical(_ value: JSONValue) {
        switch value {
        case .string(let string): self.string(string)
        case .number(let number): self.number(number.canonical)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in array.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                canonical(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            // Later duplicates win, as in lookups; then keys sort by their UTF-8 bytes.
            var seen = Set<String>()
            var members = object.members.reversed().filter { seen.insert($0.key).inserted }
            members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (offset, member) in members.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                string(member.key)
                bytes.append(UInt8(ascii: ":"))
                canonical(member.value)
            }
            bytes.append(UInt8(ascii: "}"))
        default: self.value(value)
        }
    }
}

extension JSONNumber {
    /// Integers keep every digit (beyond 2^53 too); other numbers are printed as the shortest
    /// text that reads back to the same double.
    var canonical: JSONNumber {
        if let integer = int64 { return JSONNumber(integer) }
        let isIntegerLiteral = text.utf8.allSatisfy { $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) }
        if isIntegerLiteral { return self }
        guard let double, let number = JSONNumber(double) else { return self }
        // A double past 2^53 prints as `5.555555555555556e+17`, an integer that fits Int64:
        // written as that integer, the canonical form stays a fixed point.
        if let integer = number.int64 { return JSONNumber(integer) }
        return number
    }
}

extension JSONWriter {
    /// Drops everything written after `count` bytes (to replace a half-written result).
    public mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
    }
}
