import Crypto

/// The identity of a cache entry: SHA-256 over the model, the namespace and the canonical JSON
/// of the prompt.
///
/// ```
/// SHA-256( "costd.v1" 0x00 model 0x00 namespace 0x00 canonical-json(prompt) )
/// ```
///
/// Canonical JSON sorts object keys, drops insignificant white space and normalises numbers
/// (``JSONValue/canonicalBytes()``), so `{"a":1,"b":2}` and `{"b": 2, "a": 1.0}` are one entry.
/// The NUL separators keep `("ab", "c")` and `("a", "bc")` apart.
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    public let words: (UInt64, UInt64, UInt64, UInt64)

    public init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    public init(model: String, namespace: String, prompt: JSONValue) {
        // Everything hashed goes into one buffer, the prompt written straight in canonical form.
        var writer = JSONWriter(reservingCapacity: 64 + model.utf8.count + namespace.utf8.count)
        writer.raw("costd.v1\u{0}")
        writer.rawJSON(model.utf8)
        writer.raw("\u{0}")
        writer.rawJSON(namespace.utf8)
        writer.raw("\u{0}")
        writer.canonical(prompt)
        self.init(hashing: writer.bytes)
    }

    /// The first word of the SHA-256 of `bytes` (for benchmarks of the hash alone).
    public static func digestWord(_ bytes: [UInt8]) -> UInt64 {
        CacheKey(hashing: bytes).words.0
    }

    private init(hashing bytes: [UInt8]) {
        let digest = SHA256.hash(data: bytes)
        self.words = digest.withUnsafeBytes { raw in
            (
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            )
        }
    }

    /// Reads the 64 hex digits of ``hex``.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var words: [UInt64] = []
        for chunk in stride(from: 0, to: 64, by: 16) {
            guard let word = UInt64(String(decoding: utf8[chunk..<(chunk + 16)], as: UTF8.self), radix: 16) else {
                return nil
            }
            words.append(word)
        }
        self.words = (words[0], words[1], words[2], words[3])
    }

    /// The digest as 64 lowercase hex digits (how it appears in Redis keys and in responses).
    public var hex: String {
        let bigEndian = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)
        return withUnsafeBytes(of: bigEndian) { Hex.string($0) }
    }

    public var description: String { hex }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        // The digest is already uniformly distributed; one word is plenty for a hash table.
        hasher.combine(words.0)
    }

    /// A number for picking a shard, independent of the word the hash table uses.
    var shardSeed: UInt64 { words.1 }
}
