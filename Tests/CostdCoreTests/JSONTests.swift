import Testing

@testable import CostdCore

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}}"#)
        #expect(value["a"] == [1, .number(JSONNumber(validatedLiteral: "-2.5e3")), true, false, nil])
        #expect(value["b"]?["c"]?.stringValue == "d\né😀")
    }

    @Test func keepsTheByteRangeOfEachMember() throws {
        let text = #"{"value" :  {"x": [1, 2]} , "n": 3}"#
        let bytes = Array(text.utf8)
        let value = try JSONParser.parse(bytes)
        let range = try #require(value.objectValue?.member("value")?.sourceRange)
        #expect(String(decoding: bytes[range], as: UTF8.self) == #"{"x": [1, 2]}"#)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "+1", "1e", "\"abc", "tru", "nul", "{\"a\" 1}",
        "[1 2]", "\"\\x\"", "\"\\u12\"", "\"a\u{01}b\"", "{1:2}", "1 2", "NaN", "Infinity",
    ])
    func rejectsInvalidDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test(arguments: [
        [0x22, 0xC0, 0xAF, 0x22],  // overlong
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
        [0x22, 0xFF, 0x22],
    ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func rejectsLoneSurrogateEscapes() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#""\ud800""#) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#""\udc00\ud800""#) }
    }

    @Test func enforcesTheDepthLimit() throws {
        let limits = JSONParser.Limits(maxDepth: 64)
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONParser.parse(ok, limits: limits)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(deep, limits: limits) }
        #expect(error?.kind == .tooDeep(limit: 64))
        #expect(error?.isLimit == true)
    }

    @Test func enforcesStringAndElementLimits() {
        let limits = JSONParser.Limits(maxDepth: 8, maxStringBytes: 10, maxElements: 3)
        #expect(throws: JSONParseError.self) { try JSONParser.parse("\"01234567890\"", limits: limits) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("\"é0123456789\"", limits: limits) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("[1,2,3,4]", limits: limits) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a":1,"b":2,"c":3,"d":4}"#, limits: limits) }
        #expect((try? JSONParser.parse("[1,2,3]", limits: limits)) != nil)
    }

    @Test func lastDuplicateKeyWins() throws {
        let value = try JSONParser.parse(#"{"a":1,"a":2}"#)
        #expect(value["a"] == 2)
    }
}

@Suite struct CanonicalJSONTests {
    func canonical(_ text: String) throws -> String {
        String(decoding: try JSONParser.parse(text).canonicalBytes(), as: UTF8.self)
    }

    @Test func sortsKeysAndDropsWhiteSpace() throws {
        #expect(try canonical(#"{"b": 2, "a": {"d": [1, 2], "c": null}}"#) == #"{"a":{"c":null,"d":[1,2]},"b":2}"#)
        #expect(try canonical(#"{"a":1,"b":2}"#) == (try canonical(#"{ "b" : 2 , "a" : 1 }"#)))
    }

    @Test func normalisesNumbersAndEscapes() throws {
        #expect(try canonical("[1.0, 1e2, -0, 0.50, 12345678901234567890]") == "[1,100,0,0.5,12345678901234567890]")
        #expect(try canonical(#""\u0041\/\u00e9""#) == "\"A/é\"")
        #expect(try canonical(#""a\"b\\c\u0001""#) == #""a\"b\\c\u0001""#)
    }

    /// Found by the fuzzer: a fraction past 2^53 became `5.555555555555556e+17`, which is an
    /// integer, so canonicalising again changed it.
    @Test func theCanonicalFormOfLargeNumbersIsAFixedPoint() throws {
        for literal in ["555555555555555555.5555", "1.5e300", "-9.2e18", "123456789012345678.9", "1e19"] {
            let once = try canonical(literal)
            #expect(try canonical(once) == once, "\(literal) -> \(once)")
        }
        #expect(try canonical("555555555555555555.5555") == "555555555555555600")
    }

    @Test func duplicateKeysKeepTheLastValue() throws {
        #expect(try canonical(#"{"a":1,"a":2}"#) == #"{"a":2}"#)
    }

    @Test func keySeparatesModelNamespaceAndPrompt() throws {
        let prompt = try JSONParser.parse(#"{"q":"x"}"#)
        let key = CacheKey(model: "gpt-4o", namespace: "", prompt: prompt)
        #expect(key == CacheKey(model: "gpt-4o", namespace: "", prompt: try JSONParser.parse(#"{ "q" : "x" }"#)))
        #expect(key != CacheKey(model: "gpt-4o-mini", namespace: "", prompt: prompt))
        #expect(key != CacheKey(model: "gpt-4o", namespace: "n", prompt: prompt))
        #expect(CacheKey(model: "ab", namespace: "c", prompt: "x") != CacheKey(model: "a", namespace: "bc", prompt: "x"))
        #expect(CacheKey(hex: key.hex) == key)
        #expect(key.hex.count == 64)
    }

    /// Daemons of different versions share keys through Redis: the layout must not drift.
    /// Expected: `sha256(b"costd.v1\0gpt-4o\0\0" + b'{"a":1,"q":"x"}')` from Python's hashlib.
    @Test func keyIsTheDocumentedHash() throws {
        let key = CacheKey(model: "gpt-4o", namespace: "", prompt: try JSONParser.parse(#"{"q": "x", "a": 1.0}"#))
        #expect(key.hex == "e183ee1cdfeb935df033e5858beb18d03e7c954edd9b30ea944a954a973ddd3a")
    }
}

@Suite struct JSONWriterTests {
    @Test func escapesControlCharacters() {
        var writer = JSONWriter()
        writer.string("a\"b\\c\n\u{0}é")
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #""a\"b\\c\n\u0000é""#)
    }

    @Test func roundTripsThroughTheParser() throws {
        let value: JSONValue = ["x": [1, "two", ["three": nil]], "y": true]
        #expect(try JSONParser.parse(value.encoded()) == value)
    }

    @Test(arguments: [
        (Int64(12_500), 3, "12.5"), (0, 3, "0"), (7, 3, "0.007"), (1_000, 3, "1"), (1_010, 3, "1.01"), (-1_500, 3, "-1.5"),
        (123, 0, "123"), (Int64.min, 9, "-9223372036.854775808"), (Int64.max, 18, "9.223372036854775807"),
    ])
    func decimalsAreExactWithoutTrailingZeros(units: Int64, scale: Int, text: String) throws {
        var writer = JSONWriter()
        writer.decimal(units, scale: scale)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == text)
        guard case .number(let number) = try JSONParser.parse(writer.bytes) else {
            Issue.record("not a JSON number: \(text)")
            return
        }
        #expect(number.text == text)
    }
}

/// The word-at-a-time scan of string bytes, against the byte-at-a-time rule it replaces: every
/// special byte, at every offset of a word, in runs of every length.
@Suite struct JSONStringScannerTests {
    func reference(_ bytes: [UInt8], from start: Int, stopAtNonASCII: Bool) -> Int {
        bytes[start...].firstIndex { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 || (stopAtNonASCII && $0 >= 0x80) } ?? bytes.count
    }

    @Test func findsTheFirstSpecialByteWhereverItIs() {
        let specials: [UInt8] = [0x00, 0x09, 0x1F, 0x22, 0x5C, 0x80, 0xC3, 0xFF]
        let plain: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz !#[]{}~".utf8)
        for length in 0..<40 {
            for position in 0...length {
                for special in specials {
                    var bytes = (0..<length).map { plain[$0 % plain.count] }
                    if position < length { bytes[position] = special }
                    for start in [0, 1, 7].filter({ $0 <= length }) {
                        for stop in [true, false] {
                            let found = bytes.withUnsafeBytes {
                                JSONStringScanner.firstSpecialByte(in: $0, from: start, stopAtNonASCII: stop)
                            }
                            #expect(found == reference(bytes, from: start, stopAtNonASCII: stop), "\(bytes) from \(start)")
                        }
                    }
                }
            }
        }
    }

    @Test func longStringsRoundTripWithEscapesAndUnicodeAnywhere() throws {
        for text in ["plain " + String(repeating: "x", count: 1000), String(repeating: "ab\"c\\d\ne\u{1}é日本🙂", count: 50)] {
            let encoded = JSONValue.string(text).encoded()
            #expect(try JSONParser.parse(encoded) == .string(text))
        }
    }
}
