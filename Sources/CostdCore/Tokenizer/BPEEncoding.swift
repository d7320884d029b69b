// The public tokenizer: tiktoken-exact encoding, counting and decoding.

/// A tiktoken byte-pair encoding (`cl100k_base` or `o200k_base`), built from the bytes
/// of its `.tiktoken` vocabulary file. Immutable and thread-safe; copies are cheap.
///
/// Produces exactly the token ids of the Python `tiktoken` package:
/// - `encode(text, allowSpecial: true)` ≡ `enc.encode(text, allowed_special="all")`
/// - `encode(text)` / `encodeOrdinary(text)` ≡ `enc.encode_ordinary(text)` (special-token
///   text is encoded as ordinary text; tiktoken's `encode` would raise instead)
///
/// ```swift
/// let enc = try BPEEncoding(name: "o200k_base", vocabulary: fileBytes)
/// let ids = enc.encode("hello world")            // [24912, 2375]
/// let n = enc.count("hello world")               // 2, without building the array
/// let bytes = try enc.decode(ids)                // Array("hello world".utf8)
/// ```
public struct BPEEncoding: Sendable {
    /// The encoding's definition (name, split pattern, special tokens).
    public let spec: EncodingSpec
    let table: RankTable
    let specials: SpecialTokenMatcher

    /// tiktoken's name of the encoding, e.g. `"cl100k_base"`.
    public var name: String { spec.name }

    /// Special tokens and their ids.
    public var specialTokens: [String: Int] { spec.specialTokens }

    /// One more than the largest token id (tiktoken's `n_vocab`).
    public var vocabularySize: Int { max(table.rankCount, specials.maxID + 1) }

    /// Creates a built-in encoding (`"cl100k_base"` or `"o200k_base"`).
    ///
    /// - Parameters:
    ///   - vocabulary: the contents of the encoding's `.tiktoken` file.
    ///   - verifyHash: check the file's SHA-256 against tiktoken's expected hash.
    public init(name: String, vocabulary: [UInt8], verifyHash: Bool = true) throws(BPEError) {
        guard let spec = EncodingSpec.named(name) else { throw .unknownEncoding(name) }
        try self.init(spec: spec, vocabulary: vocabulary, verifyHash: verifyHash)
    }

    /// Creates an encoding from a spec and the contents of its `.tiktoken` file.
    public init(spec: EncodingSpec, vocabulary: [UInt8], verifyHash: Bool = true) throws(BPEError) {
        if verifyHash {
            let actual = VocabularyHash.hexDigest(vocabulary)
            guard actual == spec.vocabularySHA256 else {
                throw .vocabularyHashMismatch(expected: spec.vocabularySHA256, actual: actual)
            }
        }
        let table = try RankTable(tiktokenFile: vocabulary)
        for byte in 0..<256 where table.byteRanks[byte] == RankTable.none {
            // Byte-level BPE needs a token for every single byte (tiktoken would panic).
            throw .malformedVocabulary(line: 0)
        }
        self.spec = spec
        self.table = table
        self.specials = SpecialTokenMatcher(spec.specialTokens)
        // The character table is built on first use: here, with the vocabulary, on the
        // loading thread, rather than in the first call that counts tokens.
        _ = CharFlagsTable.shared
    }

    // MARK: Encoding

    /// Encodes `text` into token ids.
    ///
    /// - Parameter allowSpecial: if true, occurrences of special-token text (e.g.
    ///   `<|endoftext|>`) become the special token, as with tiktoken's
    ///   `allowed_special="all"`; if false, they are encoded as ordinary text, as with
    ///   `encode_ordinary`.
    public func encode(_ text: String, allowSpecial: Bool = false) -> [Int] {
        var sink = TokenArraySink()
        sink.tokens.reserveCapacity(text.utf8.count / 4 + 4)
        run(text, allowSpecial: allowSpecial, into: &sink)
        return sink.tokens
    }

    /// Encodes `text` treating special-token text as ordinary text
    /// (tiktoken's `encode_ordinary`).
    public func encodeOrdinary(_ text: String) -> [Int] {
        encode(text, allowSpecial: false)
    }

    /// The number of tokens `encode(text, allowSpecial:)` would return, without
    /// allocating the token array.
    public func count(_ text: String, allowSpecial: Bool = false) -> Int {
        var sink = TokenCountSink()
        run(text, allowSpecial: allowSpecial, into: &sink)
        return sink.count
    }

    // MARK: Decoding

    /// The bytes of the tokens, concatenated (tiktoken's `decode_bytes`). The result
    /// need not be valid UTF-8 if the tokens split a character.
    public func decode(_ tokens: [Int]) throws(BPEError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(tokens.count * 4)
        for token in tokens {
            if token >= 0 && token < table.rankCount && table.lengths[token] != 0 {
                let start = table.bytes + Int(table.starts[token])
                out.append(contentsOf: UnsafeBufferPointer(start: start, count: Int(table.lengths[token])))
            } else if let bytes = specials.bytesByID[token] {
                out.append(contentsOf: bytes)
            } else {
                throw .invalidToken(token)
            }
        }
        return withExtendedLifetime(table) { out }
    }

    /// The tokens decoded as text; invalid UTF-8 becomes U+FFFD (tiktoken's `decode`).
    public func decodeText(_ tokens: [Int]) throws(BPEError) -> String {
        String(decoding: try decode(tokens), as: UTF8.self)
    }

    // MARK: The encoding loop

    /// Splits `text` at special tokens (if allowed), pre-tokenises each stretch and
    /// byte-pair-encodes each piece into `sink`.
    @inline(__always)
    private func run<Sink: TokenSink>(_ text: String, allowSpecial: Bool, into sink: inout Sink) {
        var text = text
        withExtendedLifetime(table) {
            text.withUTF8 { utf8 in
                guard let base = utf8.baseAddress, !utf8.isEmpty else { return }
                let n = utf8.count
                withUnsafeTemporaryAllocation(of: MergePart.self, capacity: longPieceThreshold + 1) { parts in
                    let encoder = SegmentEncoder(
                        lookup: table.lookup, flags: UnsafePointer(CharFlagsTable.shared.flags),
                        pattern: spec.pattern, parts: parts.baseAddress!)
                    var start = 0
                    if allowSpecial {
                        // As tiktoken: encode the text before each special token on its own
                        // (the split pattern sees that stretch's end), then the special token.
                        while let match = specials.firstMatch(in: base, from: start, to: n) {
                            encoder.encode(base + start, length: match.start - start, into: &sink)
                            sink.append(UInt32(match.id))
                            start = match.end
                        }
                    }
                    encoder.encode(base + start, length: n - start, into: &sink)
                }
            }
        }
    }
}

/// Receives the tokens of an encoding run.
protocol TokenSink {
    /// Whether the sink needs the token ids (otherwise only their number).
    static var recordsTokens: Bool { get }
    mutating func append(_ token: UInt32)
    mutating func addCount(_ count: Int)
}

struct TokenArraySink: TokenSink {
    var tokens: [Int] = []
    static var recordsTokens: Bool { true }
    @inline(__always) mutating func append(_ token: UInt32) { tokens.append(Int(token)) }
    @inline(__always) mutating func addCount(_ count: Int) {}
}

struct TokenCountSink: TokenSink {
    var count = 0
    static var recordsTokens: Bool { false }
    @inline(__always) mutating func append(_ token: UInt32) { count += 1 }
    @inline(__always) mutating func addCount(_ count: Int) { self.count += count }
}

/// Encodes stretches of text without special tokens. Holds plain pointers that are
/// valid only during one `run`.
struct SegmentEncoder {
    let lookup: RankLookup
    let flags: UnsafePointer<UInt8>
    let pattern: SplitPattern
    let parts: UnsafeMutablePointer<MergePart>

    @inline(__always)
    func encode<Sink: TokenSink>(_ base: UnsafePointer<UInt8>, length: Int, into sink: inout Sink) {
        let scanner = PieceScanner(base: base, end: length, table: flags)
        var i = 0
        switch pattern {
        case .cl100k:
            while i < length {
                let e = scanner.cl100kPieceEnd(from: i)
                encodePiece(base + i, e - i, into: &sink)
                i = e
            }
        case .o200k:
            while i < length {
                let e = scanner.o200kPieceEnd(from: i)
                encodePiece(base + i, e - i, into: &sink)
                i = e
            }
        }
    }

    /// tiktoken: if the whole piece is a token, emit it; otherwise byte-pair merge.
    @inline(__always)
    func encodePiece<Sink: TokenSink>(_ piece: UnsafePointer<UInt8>, _ n: Int, into sink: inout Sink) {
        let rank = lookup.rank(piece, n)
        if rank != RankTable.none {
            sink.append(rank)
        } else if n <= longPieceThreshold {
            // n ≥ 2 here: every single byte is a token.
            let count = lookup.mergeShort(piece, n, parts: parts)
            if Sink.recordsTokens {
                for k in 0..<count { sink.append(parts[k].token) }
            } else {
                sink.addCount(count)
            }
        } else {
            let count = lookup.mergeLong(piece, n) { token in
                if Sink.recordsTokens { sink.append(token) }
            }
            if !Sink.recordsTokens { sink.addCount(count) }
        }
    }
}

/// Finds special-token text in UTF-8 bytes.
struct SpecialTokenMatcher: Sendable {
    /// Special tokens, longest first (so the longest wins if one were a prefix of another;
    /// no built-in special token is a prefix of another).
    let tokens: [(bytes: [UInt8], id: Int)]
    /// Whether a byte starts some special token.
    let isFirstByte: [Bool]
    let bytesByID: [Int: [UInt8]]
    let maxID: Int

    init(_ specialTokens: [String: Int]) {
        tokens = specialTokens.map { (Array($0.key.utf8), $0.value) }
            .filter { !$0.0.isEmpty }
            .sorted { $0.0.count != $1.0.count ? $0.0.count > $1.0.count : $0.0.lexicographicallyPrecedes($1.0) }
        var first = [Bool](repeating: false, count: 256)
        for token in tokens { first[Int(token.bytes[0])] = true }
        isFirstByte = first
        bytesByID = Dictionary(tokens.map { ($0.id, $0.bytes) }, uniquingKeysWith: { a, _ in a })
        maxID = specialTokens.values.max() ?? -1
    }

    /// The leftmost special token in `base[from..<end]`.
    func firstMatch(in base: UnsafePointer<UInt8>, from: Int, to end: Int) -> (start: Int, end: Int, id: Int)? {
        if tokens.isEmpty { return nil }
        return isFirstByte.withUnsafeBufferPointer { isFirst in
            var i = from
            while i < end {
                if isFirst[Int(base[i])] {
                    for token in tokens where token.bytes.count <= end - i {
                        let matches = token.bytes.withUnsafeBufferPointer { t in
                            for k in 1..<t.count where t[k] != base[i + k] { return false }
                            return t[0] == base[i]
                        }
                        if matches { return (i, i + token.bytes.count, token.id) }
                    }
                }
                i += 1
            }
            return nil
        }
    }
}

// MARK: - Chat messages

/// A chat message for `BPEEncoding.countChatTokens`.
public struct ChatMessage: Sendable, Hashable {
    public var role: String
    public var content: String
    public var name: String?

    public init(role: String, content: String, name: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
    }
}

extension BPEEncoding {
    /// Tokens used by a list of chat messages, as OpenAI's cookbook
    /// `num_tokens_from_messages` estimates them for gpt-4o / gpt-4 / gpt-3.5-turbo-0613+:
    /// 3 per message, plus the tokens of every value (role, content, name), plus 1 per
    /// `name`, plus 3 for the priming of the reply (`<|start|>assistant<|message|>`).
    /// Values are encoded as ordinary text.
    public func countChatTokens(_ messages: [ChatMessage]) -> Int {
        let tokensPerMessage = 3
        let tokensPerName = 1
        var total = 0
        for message in messages {
            total += tokensPerMessage
            total += count(message.role)
            total += count(message.content)
            if let name = message.name {
                total += count(name) + tokensPerName
            }
        }
        return total + 3
    }
}
