import Foundation
import Testing

@testable import CostdCore

/// The tokenizer on the real vocabularies (scripts/fetch-vocab puts them in data/tokenizers;
/// the full comparison with tiktoken is tests/integration/test_tokens_and_replay.py).
@Suite struct TokenizerTests {
    static func load(_ spec: EncodingSpec) throws -> BPEEncoding {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let directory = ProcessInfo.processInfo.environment["COSTD_DATA_DIR"] ?? url.appendingPathComponent("data").path
        let path = directory + "/tokenizers/" + spec.vocabularyFileName
        let data = try #require(FileManager.default.contents(atPath: path), "missing \(path): run scripts/fetch-vocab data/tokenizers")
        return try BPEEncoding(spec: spec, vocabulary: Array(data))
    }

    @Test func knownIds() throws {
        let o200k = try TokenizerTests.load(.o200kBase)
        #expect(o200k.encode("hello world") == [24912, 2375])
        #expect(o200k.count("hello world") == 2)
        let cl100k = try TokenizerTests.load(.cl100kBase)
        #expect(cl100k.encode("hello world") == [15339, 1917])
        #expect(cl100k.encode("<|endoftext|>", allowSpecial: true) == [100257])
        #expect(cl100k.encode("<|endoftext|>", allowSpecial: false).count > 1)
    }

    @Test func roundTripsAndCountsAgree() throws {
        let encoding = try TokenizerTests.load(.o200kBase)
        for text in ["", " ", "Tiếng Việt 😀 中文 ‍👩‍👩‍👧", "func f() { return 42 }\r\n\t", String(repeating: "9", count: 100)] {
            let ids = encoding.encode(text)
            #expect(encoding.count(text) == ids.count)
            #expect(try encoding.decodeText(ids) == text)
        }
    }

    @Test func aTamperedVocabularyIsRefused() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let directory = ProcessInfo.processInfo.environment["COSTD_DATA_DIR"] ?? url.appendingPathComponent("data").path
        var bytes = try #require(FileManager.default.contents(atPath: directory + "/tokenizers/cl100k_base.tiktoken")).map { $0 }
        bytes[10] ^= 1
        #expect(throws: BPEError.self) { try BPEEncoding(spec: .cl100kBase, vocabulary: bytes) }
    }

    /// The daemon loads without the hash check: a corrupt rank must be an error, not a 32 GB
    /// allocation for the rank-indexed tables.
    @Test func aRankFarPastTheTokenCountIsRefused() throws {
        #expect(throws: BPEError.malformedVocabulary(line: 2)) {
            try RankTable(tiktokenFile: Array("IQ== 0\nIg== 4000000000\n".utf8))
        }
        let dense = try RankTable(tiktokenFile: Array("IQ== 0\nIg== 1\n".utf8))
        #expect(dense.tokenCount == 2)
    }
}
