/// Why a document is not acceptable JSON, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidUTF8
        case invalidEscape
        case invalidNumber
        case trailingData
        /// Nesting deeper than ``JSONParser/Limits/maxDepth``.
        case tooDeep(limit: Int)
        /// A string longer than ``JSONParser/Limits/maxStringBytes``.
        case stringTooLong(limit: Int)
        /// An array or object with more elements than ``JSONParser/Limits/maxElements``.
        case tooManyElements(limit: Int)
    }

    public var kind: Kind
    /// Byte offset in the document where the problem was found.
    public var offset: Int

    /// True for the errors that are about size limits rather than syntax.
    public var isLimit: Bool {
        switch kind {
        case .tooDeep, .stringTooLong, .tooManyElements: true
        default: false
        }
    }

    public var description: String {
        switch kind {
        case .unexpectedEnd: "unexpected end of JSON at byte \(offset)"
        case .unexpectedByte(let byte):
            if byte >= 0x20 && byte < 0x7F {
                "unexpected '\(Character(Unicode.Scalar(byte)))' at byte \(offset)"
            } else {
                "unexpected byte 0x\(String(byte, radix: 16)) at byte \(offset)"
            }
        case .invalidUTF8: "invalid UTF-8 at byte \(offset)"
        case .invalidEscape: "invalid escape sequence at byte \(offset)"
        case .invalidNumber: "invalid number at byte \(offset)"
        case .trailingData: "unexpected data after the JSON value at byte \(offset)"
        case .tooDeep(let limit): "JSON nested deeper than \(limit) levels at byte \(offset)"
        case .stringTooLong(let limit): "JSON string longer than \(limit) bytes at byte \(offset)"
        case .tooManyElements(let limit): "JSON array or object with more than \(limit) elements at byte \(offset)"
        }
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes, with limits on what a hostile peer can make it build.
///
/// It validates UTF-8, rejects lone surrogates in escapes, and records the byte range of every
/// object member's value (``JSONObject/Member/sourceRange``), which is how a cached value is kept
/// exactly as the client sent it.
public struct JSONParser: ~Copyable {
    public struct Limits: Sendable, Equatable {
        /// How deep arrays and objects may nest.
        public var maxDepth: Int
        /// The longest string, in bytes of its encoded form.
        public var maxStringBytes: Int
        /// The most elements (or members) one array (or object) may have.
        public var maxElements: Int

        public init(maxDepth: Int = 64, maxStringBytes: Int = 4 << 20, maxElements: Int = 100_000) {
            self.maxDepth = maxDepth
            self.maxStringBytes = maxStringBytes
            self.maxElements = maxElements
        }

        public static let `default` = Limits()
        public static let unlimited = Limits(maxDepth: 10_000, maxStringBytes: .max, maxElements: .max)
    }

    private let bytes: UnsafeRawBufferPointer
    private let limits: Limits
    private var index: Int
    private var depth = 0

    private init(bytes: UnsafeRawBufferPointer, limits: Limits) {
        self.bytes = bytes
        self.limits = limits
        self.index = 0
    }

    /// Parses one complete JSON document (surrounding white space allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = .default) throws(JSONParseError)
        -> JSONValue
    {
        var parser = JSONParser(bytes: bytes, limits: limits)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw JSONParseError(kind: .trailingData, offset: parser.index)
        }
        return value
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = .default) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) in try parse(buffer, limits: limits) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: ArraySlice<UInt8>, limits: Limits = .default) throws(JSONParseError)
        -> JSONValue
    {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) in try parse(buffer, limits: limits) }
        }
        return try result.get()
    }

    public static func parse(_ string: String, limits: Limits = .default) throws(JSONParseError) -> JSONValue {
        try parse(Array(string.utf8), limits: limits)
    }

    // MARK: - Grammar

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object(try parseObject())
        case UInt8(ascii: "["): return .array(try parseArray())
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error(.unexpectedByte(bytes[index]))
        }
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        guard depth <= limits.maxDepth else { throw error(.tooDeep(limit: limits.maxDepth)) }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONObject {
        try enterContainer()
        index += 1  // {
        var members: [JSONObject.Member] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return JSONObject(members)
        }
        // A request's envelope has four members and most objects in one fewer: one allocation
        // instead of growing through one, two and four.
        members.reserveCapacity(4)
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard bytes[index] == UInt8(ascii: "\"") else { throw error(.unexpectedByte(bytes[index])) }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let start = index
            let value = try parseValue()
            members.append(JSONObject.Member(key: key, value: value, sourceRange: start..<index))
            guard members.count <= limits.maxElements else {
                throw error(.tooManyElements(limit: limits.maxElements))
            }
            skipWhitespace()
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            depth -= 1
            return JSONObject(members)
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> [JSONValue] {
        try enterContainer()
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return elements
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            guard elements.count <= limits.maxElements else {
                throw error(.tooManyElements(limit: limits.maxElements))
            }
            skipWhitespace()
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            depth -= 1
            return elements
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        let quote = index
        index += 1
        let start = index
        // Fast path: printable ASCII without escapes is copied as is.
        index = JSONStringScanner.firstSpecialByte(in: bytes, from: start, stopAtNonASCII: true)
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            try checkStringLength(index - start)
            let string = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return string
        }
        guard index < bytes.count else { throw JSONParseError(kind: .unexpectedEnd, offset: index) }
        return try parseStringSlowPath(start: start, quote: quote)
    }

    private mutating func parseStringSlowPath(start: Int, quote: Int) throws(JSONParseError) -> String {
        var scalars: [UInt8] = []
        scalars.reserveCapacity(index - start + 16)
        scalars.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            try checkStringLength(index - start)
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &scalars)
            case 0..<0x20:
                throw error(.unexpectedByte(byte))
            case 0x20..<0x80:
                let end = JSONStringScanner.firstSpecialByte(in: bytes, from: index + 1, stopAtNonASCII: true)
                scalars.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                index = end
            default:
                let length = try validateUTF8Sequence()
                scalars.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)]))
                index += length
            }
        }
    }

    private func checkStringLength(_ length: Int) throws(JSONParseError) {
        guard length <= limits.maxStringBytes else {
            throw JSONParseError(kind: .stringTooLong(limit: limits.maxStringBytes), offset: index)
        }
    }

    /// Checks the multi-byte UTF-8 sequence at `index` (RFC 3629: no overlongs, no surrogates,
    /// nothing above U+10FFFF) and returns its length.
    private func validateUTF8Sequence() throws(JSONParseError) -> Int {
        let lead = bytes[index]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upperBound = 0x9F
        case 0xF0:
            length = 4
            lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upperBound = 0x8F
        default:
            throw JSONParseError(kind: .invalidUTF8, offset: index)
        }
        guard index + length <= bytes.count else { throw JSONParseError(kind: .invalidUTF8, offset: index) }
        let second = bytes[index + 1]
        guard second >= lowerBound && second <= upperBound else {
            throw JSONParseError(kind: .invalidUTF8, offset: index)
        }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 {
            throw JSONParseError(kind: .invalidUTF8, offset: index)
        }
        return length
    }

    private mutating func parseEscape(into output: inout [UInt8]) throws(JSONParseError) {
        index += 1  // backslash
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): output.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                else { throw JSONParseError(kind: .invalidEscape, offset: index) }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw JSONParseError(kind: .invalidEscape, offset: index)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw JSONParseError(kind: .invalidEscape, offset: index)
            }
            guard let unicode = Unicode.Scalar(scalar) else {
                throw JSONParseError(kind: .invalidEscape, offset: index)
            }
            output.append(contentsOf: UTF8.encode(unicode)!)
        default:
            throw JSONParseError(kind: .invalidEscape, offset: index - 1)
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error(.unexpectedEnd) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error(.invalidEscape)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw error(.invalidNumber) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            skipDigits()
        } else {
            throw error(.invalidNumber)
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek(), isDigit(byte) else { throw error(.invalidNumber) }
            skipDigits()
        }
        if let byte = peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            index += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek(), isDigit(byte) else { throw error(.invalidNumber) }
            skipDigits()
        }
        guard index - start <= 512 else { throw JSONParseError(kind: .invalidNumber, offset: start) }
        return JSONNumber(
            validatedLiteral: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        )
    }

    // MARK: - Helpers

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func skipDigits() {
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws(JSONParseError) {
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        guard bytes[index] == byte else { throw error(.unexpectedByte(bytes[index])) }
        index += 1
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error(.unexpectedEnd) }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] {
            throw JSONParseError(kind: .unexpectedByte(bytes[index + offset]), offset: index + offset)
        }
        index += count
    }

    private func error(_ kind: JSONParseError.Kind) -> JSONParseError {
        JSONParseError(kind: kind, offset: index)
    }
}
