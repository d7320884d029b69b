// The registry of supported encodings: their pre-tokenisation pattern, special tokens
// and the SHA-256 of their vocabulary file, exactly as in tiktoken's
// `tiktoken_ext/openai_public.py` (tiktoken 0.14.0).

/// The pre-tokenisation ("split") pattern of an encoding.
///
/// tiktoken splits text with a regular expression (run by the Rust `fancy-regex`
/// crate) before applying byte-pair merges inside each piece. This library does not
/// use a regex engine: each pattern is implemented as a hand-written scanner over
/// Unicode scalars (see `PreTokenizer.swift`) that yields exactly the same pieces.
public enum SplitPattern: String, Sendable, CaseIterable {
    /// The `cl100k_base` pattern.
    case cl100k
    /// The `o200k_base` pattern.
    case o200k

    /// The regular expression that the scanner implements, verbatim from tiktoken.
    public var regex: String {
        switch self {
        case .cl100k:
            return #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"#
        case .o200k:
            return [
                #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
                #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
                #"\p{N}{1,3}"#,
                #" ?[^\s\p{L}\p{N}]+[\r\n/]*"#,
                #"\s*[\r\n]+"#,
                #"\s+(?!\S)"#,
                #"\s+"#,
            ].joined(separator: "|")
        }
    }
}

/// Everything that defines an encoding apart from its vocabulary file.
public struct EncodingSpec: Sendable, Hashable {
    /// tiktoken's name of the encoding, e.g. `"o200k_base"`.
    public let name: String
    /// The pre-tokenisation pattern.
    public let pattern: SplitPattern
    /// Special tokens and their ids.
    public let specialTokens: [String: Int]
    /// File name of the vocabulary, e.g. `"o200k_base.tiktoken"`.
    public let vocabularyFileName: String
    /// Lower-case hex SHA-256 of the vocabulary file (tiktoken's `expected_hash`).
    public let vocabularySHA256: String

    public init(
        name: String, pattern: SplitPattern, specialTokens: [String: Int],
        vocabularyFileName: String, vocabularySHA256: String
    ) {
        self.name = name
        self.pattern = pattern
        self.specialTokens = specialTokens
        self.vocabularyFileName = vocabularyFileName
        self.vocabularySHA256 = vocabularySHA256
    }

    /// `cl100k_base` (GPT-4, GPT-3.5-turbo, text-embedding-3-*).
    public static let cl100kBase = EncodingSpec(
        name: "cl100k_base",
        pattern: .cl100k,
        specialTokens: [
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        ],
        vocabularyFileName: "cl100k_base.tiktoken",
        vocabularySHA256: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    )

    /// `o200k_base` (GPT-4o, GPT-4.1, o-series).
    public static let o200kBase = EncodingSpec(
        name: "o200k_base",
        pattern: .o200k,
        specialTokens: [
            "<|endoftext|>": 199999,
            "<|endofprompt|>": 200018,
        ],
        vocabularyFileName: "o200k_base.tiktoken",
        vocabularySHA256: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    )

    /// All built-in encodings.
    public static let all: [EncodingSpec] = [.cl100kBase, .o200kBase]

    /// The built-in encoding called `name`, if any.
    public static func named(_ name: String) -> EncodingSpec? {
        all.first { $0.name == name }
    }
}
