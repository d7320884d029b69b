/// A TOML 1.0 reader that produces the same ``JSONValue`` tree as JSON documents, so the
/// config is validated by one piece of code whatever format it was written in.
///
/// Supported: comments, bare/quoted/dotted keys, `[tables]`, `[[arrays of tables]]`, basic and
/// literal strings (single and multi-line), integers (decimal, hex, octal, binary, with
/// underscores), floats, booleans, arrays and inline tables. Dates and times are kept as their
/// text. `inf` and `nan` are rejected (no config value means them). Errors name the line.
public enum TOMLParser {
    public static func parse(_ text: String) throws(ConfigError) -> JSONValue {
        var reader = Reader(bytes: Array(text.utf8))
        return try reader.parseDocument()
    }
}

private final class TOMLTable {
    var entries: [(key: String, node: TOMLNode)] = []
    /// Defined by a `[header]` (may not be defined again) rather than implicitly by a dotted key.
    var definedByHeader = false
    /// An inline table is closed: nothing may be added to it later.
    var sealed = false

    func node(_ key: String) -> TOMLNode? {
        entries.first { $0.key == key }?.node
    }

    func set(_ key: String, _ node: TOMLNode) {
        entries.append((key, node))
    }

    func replace(_ key: String, _ node: TOMLNode) {
        if let index = entries.firstIndex(where: { $0.key == key }) { entries[index].node = node }
    }

    var json: JSONValue {
        .object(JSONObject(entries.map { JSONObject.Member(key: $0.key, value: $0.node.json) }))
    }
}

private enum TOMLNode {
    case value(JSONValue)
    case table(TOMLTable)
    case arrayOfTables([TOMLTable])

    var json: JSONValue {
        switch self {
        case .value(let value): value
        case .table(let table): table.json
        case .arrayOfTables(let tables): .array(tables.map(\.json))
        }
    }
}

private struct Reader {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    /// Arrays and inline tables open around the value being read: bounded, so that a hostile
    /// file gets an error instead of overflowing the stack.
    var depth = 0
    static let maxDepth = 32

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    func error(_ message: String) -> ConfigError {
        ConfigError("line \(line): \(message)")
    }

    var atEnd: Bool { index >= bytes.count }
    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") { line += 1 }
        index += 1
    }

    mutating func skipSpaces() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 { index += 1 }
    }

    mutating func skipComment() {
        if peek() == UInt8(ascii: "#") {
            while let byte = peek(), byte != UInt8(ascii: "\n") { index += 1 }
        }
    }

    /// Spaces, comments and newlines (between array elements and between statements).
    mutating func skipBlank() {
        while let byte = peek() {
            if byte == 0x20 || byte == 0x09 || byte == 0x0D {
                index += 1
            } else if byte == UInt8(ascii: "\n") {
                advance()
            } else if byte == UInt8(ascii: "#") {
                skipComment()
            } else {
                return
            }
        }
    }

    mutating func expectEndOfLine() throws(ConfigError) {
        skipSpaces()
        skipComment()
        if peek() == 0x0D { index += 1 }
        guard atEnd || peek() == UInt8(ascii: "\n") else { throw error("expected the end of the line") }
    }

    // MARK: - Document

    mutating func parseDocument() throws(ConfigError) -> JSONValue {
        let root = TOMLTable()
        var current = root
        while true {
            skipBlank()
            guard let byte = peek() else { break }
            if byte == UInt8(ascii: "[") {
                if peek(1) == UInt8(ascii: "[") {
                    index += 2
                    skipSpaces()
                    let path = try parseKeyPath()
                    skipSpaces()
                    guard peek() == UInt8(ascii: "]"), peek(1) == UInt8(ascii: "]") else { throw error("expected ']]'") }
                    index += 2
                    current = try appendTableArray(root, path)
                } else {
                    index += 1
                    skipSpaces()
                    let path = try parseKeyPath()
                    skipSpaces()
                    guard peek() == UInt8(ascii: "]") else { throw error("expected ']'") }
                    index += 1
                    current = try defineTable(root, path)
                }
                try expectEndOfLine()
            } else {
                try parseKeyValue(into: current)
                try expectEndOfLine()
            }
        }
        return root.json
    }

    mutating func parseKeyValue(into table: TOMLTable) throws(ConfigError) {
        let path = try parseKeyPath()
        skipSpaces()
        guard peek() == UInt8(ascii: "=") else { throw error("expected '=' after the key") }
        index += 1
        skipSpaces()
        let value = try parseValue()
        var target = table
        for key in path.dropLast() {
            switch target.node(key) {
            case nil:
                let child = TOMLTable()
                target.set(key, .table(child))
                target = child
            case .table(let child) where !child.sealed && !child.definedByHeader:
                target = child
            default:
                throw error("key '\(key)' is already defined")
            }
        }
        let last = path.last!
        guard target.node(last) == nil else { throw error("key '\(path.joined(separator: "."))' is defined twice") }
        target.set(last, value)
    }

    func walk(_ root: TOMLTable, _ path: ArraySlice<String>) throws(ConfigError) -> TOMLTable {
        var table = root
        for key in path {
            switch table.node(key) {
            case nil:
                let child = TOMLTable()
                table.set(key, .table(child))
                table = child
            case .table(let child) where !child.sealed:
                table = child
            case .arrayOfTables(let tables):
                table = tables.last!
            default:
                throw error("key '\(key)' is not a table")
            }
        }
        return table
    }

    func defineTable(_ root: TOMLTable, _ path: [String]) throws(ConfigError) -> TOMLTable {
        let parent = try walk(root, path.dropLast())
        let last = path.last!
        switch parent.node(last) {
        case nil:
            let table = TOMLTable()
            table.definedByHeader = true
            parent.set(last, .table(table))
            return table
        case .table(let table) where !table.definedByHeader && !table.sealed:
            table.definedByHeader = true
            return table
        default:
            throw error("table [\(path.joined(separator: "."))] is defined twice")
        }
    }

    func appendTableArray(_ root: TOMLTable, _ path: [String]) throws(ConfigError) -> TOMLTable {
        let parent = try walk(root, path.dropLast())
        let last = path.last!
        let table = TOMLTable()
        switch parent.node(last) {
        case nil:
            parent.set(last, .arrayOfTables([table]))
        case .arrayOfTables(var tables):
            tables.append(table)
            parent.replace(last, .arrayOfTables(tables))
        default:
            throw error("[[\(path.joined(separator: "."))]] conflicts with an earlier definition")
        }
        return table
    }

    // MARK: - Keys

    mutating func parseKeyPath() throws(ConfigError) -> [String] {
        var path = [try parseKey()]
        while true {
            skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return path }
            index += 1
            skipSpaces()
            path.append(try parseKey())
        }
    }

    mutating func parseKey() throws(ConfigError) -> String {
        switch peek() {
        case UInt8(ascii: "\""): return try parseBasicString()
        case UInt8(ascii: "'"): return try parseLiteralString()
        default:
            let start = index
            while let byte = peek(), isBareKeyByte(byte) { index += 1 }
            guard index > start else { throw error("expected a key") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
    }

    func isBareKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    // MARK: - Values

    mutating func parseValue() throws(ConfigError) -> TOMLNode {
        guard let byte = peek() else { throw error("expected a value") }
        let opensNesting = byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{")
        if opensNesting {
            guard depth < Reader.maxDepth else { throw error("arrays and tables nested more than \(Reader.maxDepth) deep") }
            depth += 1
        }
        defer { if opensNesting { depth -= 1 } }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                return .value(.string(try parseMultilineBasicString()))
            }
            return .value(.string(try parseBasicString()))
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                return .value(.string(try parseMultilineLiteralString()))
            }
            return .value(.string(try parseLiteralString()))
        case UInt8(ascii: "["):
            return .value(try parseArray())
        case UInt8(ascii: "{"):
            return .table(try parseInlineTable())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matches("true") {
                index += 4
                return .value(.bool(true))
            }
            if matches("false") {
                index += 5
                return .value(.bool(false))
            }
            throw error("expected a value")
        default:
            return .value(try parseNumberOrDate())
        }
    }

    func matches(_ word: String) -> Bool {
        let utf8 = Array(word.utf8)
        guard index + utf8.count <= bytes.count, Array(bytes[index..<(index + utf8.count)]) == utf8 else {
            return false
        }
        if let next = peek(utf8.count), isBareKeyByte(next) { return false }
        return true
    }

    mutating func parseArray() throws(ConfigError) -> JSONValue {
        index += 1  // [
        var elements: [JSONValue] = []
        while true {
            skipBlank()
            guard let byte = peek() else { throw error("unterminated array") }
            if byte == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            elements.append(try parseValue().json)
            skipBlank()
            if peek() == UInt8(ascii: ",") {
                index += 1
            } else if peek() != UInt8(ascii: "]") {
                throw error("expected ',' or ']' in array")
            }
        }
    }

    mutating func parseInlineTable() throws(ConfigError) -> TOMLTable {
        index += 1  // {
        let table = TOMLTable()
        skipSpaces()
        if peek() == UInt8(ascii: "}") {
            index += 1
            table.sealed = true
            return table
        }
        while true {
            skipSpaces()
            try parseKeyValue(into: table)
            skipSpaces()
            if peek() == UInt8(ascii: ",") {
                index += 1
            } else if peek() == UInt8(ascii: "}") {
                index += 1
                table.sealed = true
                return table
            } else {
                throw error("expected ',' or '}' in inline table")
            }
        }
    }

    mutating func parseNumberOrDate() throws(ConfigError) -> JSONValue {
        let start = index
        while let byte = peek(),
            isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
                || (byte == 0x20 && isDateTimeSpace(start))
        {
            index += 1
        }
        let token = String(decoding: bytes[start..<index], as: UTF8.self)
        guard !token.isEmpty else { throw error("expected a value") }
        if isDate(token) { return .string(token) }
        var text = String(token.filter { $0 != "_" })
        guard !token.contains("__"), !token.hasPrefix("_"), !token.hasSuffix("_") else {
            throw error("invalid number '\(token)'")
        }
        if text.hasPrefix("+") { text.removeFirst() }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where text.hasPrefix(prefix) {
            guard let value = Int64(text.dropFirst(2), radix: radix) else { throw error("invalid number '\(token)'") }
            return .int(value)
        }
        if ["inf", "-inf", "nan", "-nan"].contains(text) {
            throw error("'\(token)' is not a supported value here")
        }
        // What is left must be a decimal literal in JSON's own grammar (TOML's is the same, bar '+' and '_').
        guard case .number(let number)? = try? JSONParser.parse(text) else {
            throw error("invalid value '\(token)'")
        }
        if text.count > 1, text.hasPrefix("0"), !text.hasPrefix("0."), !text.hasPrefix("0e"), !text.hasPrefix("0E") {
            throw error("leading zeros are not allowed in '\(token)'")
        }
        return .number(number)
    }

    func isDateTimeSpace(_ start: Int) -> Bool {
        // "1979-05-27 07:32:00": a space between a date and a time.
        let sofar = String(decoding: bytes[start..<index], as: UTF8.self)
        guard isDate(sofar), sofar.count == 10, let next = peek(1) else { return false }
        return next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9")
    }

    func isDate(_ token: String) -> Bool {
        let utf8 = Array(token.utf8)
        guard utf8.count >= 8 else { return false }
        if utf8.count >= 10, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-") { return true }
        return utf8[2] == UInt8(ascii: ":") && utf8[5] == UInt8(ascii: ":")
    }

    // MARK: - Strings

    mutating func parseBasicString() throws(ConfigError) -> String {
        index += 1  // "
        var output: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return try decode(output)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &output)
            case UInt8(ascii: "\n"):
                throw error("newline in a single-line string")
            default:
                output.append(byte)
                index += 1
            }
        }
    }

    mutating func parseMultilineBasicString() throws(ConfigError) -> String {
        index += 3
        if peek() == 0x0D { index += 1 }
        if peek() == UInt8(ascii: "\n") { advance() }
        var output: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            if byte == UInt8(ascii: "\""), peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                index += 3
                // Up to two quotes may sit right before the closing delimiter.
                while peek() == UInt8(ascii: "\""), output.count < Int.max {
                    output.append(UInt8(ascii: "\""))
                    index += 1
                }
                return try decode(output)
            }
            if byte == UInt8(ascii: "\\") {
                // A line-ending backslash trims the newline and the white space after it.
                var lookahead = index + 1
                while lookahead < bytes.count, bytes[lookahead] == 0x20 || bytes[lookahead] == 0x09 || bytes[lookahead] == 0x0D {
                    lookahead += 1
                }
                if lookahead < bytes.count, bytes[lookahead] == UInt8(ascii: "\n") {
                    index = lookahead
                    skipBlankInString()
                    continue
                }
                try parseEscape(into: &output)
                continue
            }
            output.append(byte)
            advance()
        }
    }

    mutating func skipBlankInString() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == UInt8(ascii: "\n") {
            advance()
        }
    }

    mutating func parseLiteralString() throws(ConfigError) -> String {
        index += 1
        let start = index
        while let byte = peek(), byte != UInt8(ascii: "'") {
            guard byte != UInt8(ascii: "\n") else { throw error("newline in a single-line string") }
            index += 1
        }
        guard peek() == UInt8(ascii: "'") else { throw error("unterminated string") }
        let text = try decode(Array(bytes[start..<index]))
        index += 1
        return text
    }

    mutating func parseMultilineLiteralString() throws(ConfigError) -> String {
        index += 3
        if peek() == 0x0D { index += 1 }
        if peek() == UInt8(ascii: "\n") { advance() }
        var output: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            if byte == UInt8(ascii: "'"), peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                index += 3
                while peek() == UInt8(ascii: "'") {
                    output.append(UInt8(ascii: "'"))
                    index += 1
                }
                return try decode(output)
            }
            output.append(byte)
            advance()
        }
    }

    mutating func parseEscape(into output: inout [UInt8]) throws(ConfigError) {
        index += 1
        guard let byte = peek() else { throw error("unterminated escape") }
        index += 1
        switch byte {
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "e"): output.append(0x1B)
        case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let digits = byte == UInt8(ascii: "u") ? 4 : 8
            guard index + digits <= bytes.count,
                let value = UInt32(String(decoding: bytes[index..<(index + digits)], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(value)
            else { throw error("invalid unicode escape") }
            index += digits
            output.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(byte)))'")
        }
    }

    func decode(_ utf8: [UInt8]) throws(ConfigError) -> String {
        guard let string = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return string
    }
}
