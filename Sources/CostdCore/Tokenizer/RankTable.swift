import Crypto

// The mergeable-rank vocabulary: parsing of `.tiktoken` files and a hash table from
// byte sequences to ranks, plus the rank → bytes table used for decoding.

/// Errors thrown by this library.
public enum BPEError: Error, Sendable, Equatable {
    /// `name` is not a built-in encoding (see `EncodingSpec.all`).
    case unknownEncoding(String)
    /// The vocabulary file does not have the SHA-256 that tiktoken expects.
    case vocabularyHashMismatch(expected: String, actual: String)
    /// A line of the vocabulary file (1-based) is not `base64 SP rank`, or repeats a token or rank.
    case malformedVocabulary(line: Int)
    /// A token id passed to `decode` is neither a mergeable rank nor a special token.
    case invalidToken(Int)
}

/// One slot of the open-addressing hash table.
///
/// `key` holds the first (up to) 8 bytes of the token, little-endian, zero-padded, so
/// tokens of up to 8 bytes are compared without touching the token bytes. `length == 0`
/// marks an empty slot.
struct RankSlot {
    var key: UInt64
    var rank: UInt32
    var length: UInt32
}

/// Reads the first `min(n, 8)` bytes at `p` as a little-endian integer, zero-padded,
/// without reading outside `p[0..<n]`.
@inline(__always)
func loadPrefix(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
    let raw = UnsafeRawPointer(p)
    if n >= 8 { return UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) }
    if n >= 4 {
        // Two overlapping 4-byte loads; the shared bytes agree, so OR is exact.
        let lo = UInt64(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
        let hi = UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)))
        return lo | hi << UInt64((n - 4) * 8)
    }
    if n >= 2 {
        let lo = UInt64(UInt16(littleEndian: raw.loadUnaligned(as: UInt16.self)))
        let hi = UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: n - 2, as: UInt16.self)))
        return lo | hi << UInt64((n - 2) * 8)
    }
    return n == 1 ? UInt64(p[0]) : 0
}

@inline(__always)
func mixHash(_ x: UInt64) -> UInt64 {
    var h = x &* 0x9E37_79B9_7F4A_7C15
    h ^= h >> 29
    h = h &* 0xBF58_476D_1CE4_E5B9
    return h ^ (h >> 32)
}

/// Hash of the byte sequence `p[0..<n]` whose prefix (see `loadPrefix`) is `prefix`.
@inline(__always)
func hashBytes(_ p: UnsafePointer<UInt8>, _ n: Int, prefix: UInt64) -> UInt64 {
    var h = prefix ^ (UInt64(truncatingIfNeeded: n) &* 0xD6E8_FEB8_6659_FD93)
    if n > 8 {
        let raw = UnsafeRawPointer(p)
        var offset = 8
        while offset + 8 < n {
            h = mixHash(h) ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        // Last (possibly overlapping) 8 bytes.
        h = mixHash(h) ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
    }
    return mixHash(h)
}

/// The vocabulary of mergeable ranks. Immutable after `init`.
///
/// Owns raw buffers so that the hot loops can use plain pointers; a `final class`
/// so that copies of `BPEEncoding` share it.
final class RankTable: @unchecked Sendable {
    // @unchecked: all buffers are written only during `init` and read-only afterwards.

    /// Sentinel rank: "no such token".
    static let none = UInt32.max

    /// Number of rank slots: the largest rank + 1.
    let rankCount: Int
    /// Number of tokens.
    let tokenCount: Int
    /// All token bytes, in file order.
    let bytes: UnsafeMutablePointer<UInt8>
    /// For each rank: offset of its bytes in `bytes`.
    let starts: UnsafeMutablePointer<UInt32>
    /// For each rank: length of its bytes (0 if the rank is unused).
    let lengths: UnsafeMutablePointer<UInt32>
    /// Rank of each single byte (`none` if a byte has no token, which is not the case
    /// for the OpenAI encodings).
    let byteRanks: UnsafeMutablePointer<UInt32>
    /// Open-addressing hash table (linear probing), `slotMask + 1` slots.
    let slots: UnsafeMutablePointer<RankSlot>
    let slotMask: Int

    /// Parses the contents of a `.tiktoken` file: lines of `base64(token) rank`.
    init(tiktokenFile data: [UInt8]) throws(BPEError) {
        // Pass 1: decode every token into one buffer (decoded data is shorter than the
        // file, so `data.count` bytes suffice) and record (offset, length, rank, line).
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(data.count, 1))
        var entries: [Entry] = []
        entries.reserveCapacity(data.count / 12)
        var maxRank = -1
        do {
            try data.withUnsafeBufferPointer { (buf) throws(BPEError) in
                try Base64.values.withUnsafeBufferPointer { (table) throws(BPEError) in
                    try Self.parseLines(buf, table, into: bytes, entries: &entries, maxRank: &maxRank)
                }
            }
        } catch {
            bytes.deallocate()
            throw error
        }

        // Ranks are unique, so a vocabulary's are dense (tiktoken's are exactly 0..<n). One far
        // past the token count would make the rank-indexed tables below huge (a corrupt line
        // ranked 4e9 would ask for 32 GB): refuse it.
        if maxRank >= 2 * entries.count + 1024 {
            bytes.deallocate()
            throw .malformedVocabulary(line: entries.first { Int($0.rank) == maxRank }!.line)
        }
        self.bytes = bytes
        rankCount = maxRank + 1
        tokenCount = entries.count
        let rankSlots = max(rankCount, 1)
        starts = .allocate(capacity: rankSlots)
        starts.initialize(repeating: 0, count: rankSlots)
        lengths = .allocate(capacity: rankSlots)
        lengths.initialize(repeating: 0, count: rankSlots)
        byteRanks = .allocate(capacity: 256)
        byteRanks.initialize(repeating: Self.none, count: 256)
        var capacity = 1024
        while capacity < entries.count * 5 / 2 { capacity *= 2 }  // load factor ≤ 0.4
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: RankSlot(key: 0, rank: 0, length: 0), count: capacity)
        slotMask = capacity - 1

        // Pass 2: fill the decoder table and the hash table. (Throwing here is safe:
        // every property is initialised, so deinit frees the buffers.)
        for entry in entries {
            let rank = Int(entry.rank)
            guard lengths[rank] == 0 else { throw .malformedVocabulary(line: entry.line) }
            starts[rank] = entry.start
            lengths[rank] = entry.length
            let p = UnsafePointer(bytes + Int(entry.start))
            let n = Int(entry.length)
            if n == 1 { byteRanks[Int(p[0])] = entry.rank }
            guard insert(p, n, rank: entry.rank) else { throw .malformedVocabulary(line: entry.line) }
        }
    }

    /// A parsed vocabulary line.
    private struct Entry {
        var start: UInt32
        var length: UInt32
        var rank: UInt32
        var line: Int
    }

    /// Pass 1 of `init`: parses all lines, decoding tokens into `out`.
    private static func parseLines(
        _ buf: UnsafeBufferPointer<UInt8>, _ table: UnsafeBufferPointer<UInt8>,
        into out: UnsafeMutablePointer<UInt8>, entries: inout [Entry], maxRank: inout Int
    ) throws(BPEError) {
        @inline(__always) func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
        let n = buf.count
        var outCount = 0
        var lineNumber = 0
        var lineStart = 0
        while lineStart < n {
            lineNumber += 1
            var j = lineStart
            while j < n && isBlank(buf[j]) { j += 1 }
            if j == n { break }
            if buf[j] == 0x0A { lineStart = j + 1; continue }  // blank line
            let tokenStart = j
            while j < n && buf[j] != 0x0A && !isBlank(buf[j]) { j += 1 }
            let tokenEnd = j
            while j < n && isBlank(buf[j]) { j += 1 }
            var rank = 0
            var digits = 0
            while j < n, buf[j] &- 0x30 < 10, digits < 10 {
                rank = rank * 10 + Int(buf[j] &- 0x30)
                digits += 1
                j += 1
            }
            while j < n && isBlank(buf[j]) { j += 1 }
            guard digits > 0, j == n || buf[j] == 0x0A, rank < Int(UInt32.max) else {
                throw .malformedVocabulary(line: lineNumber)
            }
            lineStart = j + 1
            let decoded = Base64.decode(buf, tokenStart..<tokenEnd, table: table, into: out + outCount)
            guard decoded > 0 else { throw .malformedVocabulary(line: lineNumber) }
            entries.append(Entry(start: UInt32(outCount), length: UInt32(decoded), rank: UInt32(rank), line: lineNumber))
            outCount += decoded
            if rank > maxRank { maxRank = rank }
        }
    }

    deinit {
        bytes.deallocate()
        starts.deallocate()
        lengths.deallocate()
        byteRanks.deallocate()
        slots.deallocate()
    }

    /// Inserts a token; returns false if the same bytes are already present.
    private func insert(_ p: UnsafePointer<UInt8>, _ n: Int, rank: UInt32) -> Bool {
        let key = loadPrefix(p, n)
        var index = Int(truncatingIfNeeded: hashBytes(p, n, prefix: key)) & slotMask
        while slots[index].length != 0 {
            let slot = slots[index]
            if slot.key == key && Int(slot.length) == n && (n <= 8 || lookup.tailEqual(p, n, slot.rank)) {
                return false
            }
            index = (index + 1) & slotMask
        }
        slots[index] = RankSlot(key: key, rank: rank, length: UInt32(n))
        return true
    }

    /// A plain-pointer view for the hot loops. Valid while `self` is alive.
    var lookup: RankLookup {
        RankLookup(slots: slots, slotMask: slotMask, bytes: bytes, starts: starts, byteRanks: byteRanks)
    }
}

/// Non-owning view of a `RankTable` used in the hot loops.
struct RankLookup {
    let slots: UnsafeMutablePointer<RankSlot>
    let slotMask: Int
    let bytes: UnsafeMutablePointer<UInt8>
    let starts: UnsafeMutablePointer<UInt32>
    let byteRanks: UnsafeMutablePointer<UInt32>

    /// The rank of the token `p[0..<n]` (n ≥ 1), or `RankTable.none`.
    @inline(__always)
    func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt32 {
        let key = loadPrefix(p, n)
        var index = Int(truncatingIfNeeded: hashBytes(p, n, prefix: key)) & slotMask
        while true {
            let slot = slots[index]
            if slot.length == 0 { return RankTable.none }
            if slot.key == key && Int(slot.length) == n && (n <= 8 || tailEqual(p, n, slot.rank)) {
                return slot.rank
            }
            index = (index + 1) & slotMask
        }
    }

    /// Whether bytes 8..<n of `p` equal those of token `rank` (which has length n).
    func tailEqual(_ p: UnsafePointer<UInt8>, _ n: Int, _ rank: UInt32) -> Bool {
        let q = UnsafeRawPointer(bytes + Int(starts[Int(rank)]))
        let a = UnsafeRawPointer(p)
        var offset = 8
        while offset + 8 <= n {
            if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                != q.loadUnaligned(fromByteOffset: offset, as: UInt64.self) { return false }
            offset += 8
        }
        if offset < n {
            // Last, overlapping 8 bytes (n > 8 here).
            return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                == q.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        return true
    }
}

/// Standard base64 (RFC 4648, with `=` padding), as written by tiktoken.
enum Base64 {
    /// Maps an ASCII byte to its 6-bit value, or 0xFF.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (value, char) in alphabet.enumerated() { table[Int(char)] = UInt8(value) }
        return table
    }()

    /// Decodes `input[range]` into `output` (which has room for `range.count` bytes);
    /// returns the number of bytes written, or 0 if the input is not valid base64.
    @inline(__always)
    static func decode(
        _ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, table: UnsafeBufferPointer<UInt8>,
        into output: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var end = range.upperBound
        var padding = 0
        while end > range.lowerBound && input[end - 1] == UInt8(ascii: "=") && padding < 2 {
            end -= 1
            padding += 1
        }
        guard (end - range.lowerBound + padding) % 4 == 0, (end - range.lowerBound) % 4 != 1 else { return 0 }
        var accumulator: UInt32 = 0
        var bits: UInt32 = 0
        var count = 0
        for i in range.lowerBound..<end {
            let v = table[Int(input[i])]
            if v == 0xFF { return 0 }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output[count] = UInt8(truncatingIfNeeded: accumulator >> bits)
                count += 1
            }
        }
        return count
    }
}

/// SHA-256 of a vocabulary file, to check it against tiktoken's expected hash.
enum VocabularyHash {
    static func hexDigest(_ data: [UInt8]) -> String {
        Hex.string(Array(Crypto.SHA256.hash(data: data)))
    }
}
