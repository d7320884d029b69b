// Pre-tokenisation: splitting text into the pieces that tiktoken's split regex
// matches, without a regex engine.
//
// tiktoken runs `fancy_regex::Regex::find_iter` with the pattern over the text (or,
// with special tokens allowed, over each stretch of text between two special tokens,
// so `$` and `(?!\S)` see the end of that stretch). Both patterns match at every
// position and never match the empty string, so the matches tile the text: each
// piece starts where the previous one ended. The scanners below compute, for a start
// position, the end of the match that a backtracking (leftmost-first) engine finds:
// the first alternative that matches, in pattern order, with greedy quantifiers
// taking as much as they can and giving back only as needed.
//
// Classes, as used by the regex crate:
//   \p{L}, \p{N}, \p{M}, \p{Lu}, ...  Unicode general categories
//   \s                                Unicode White_Space
//   (?i:'s|...)                       simple case folding; the only non-ASCII fold that
//                                     matters here is U+017F LATIN SMALL LETTER LONG S ≡ s.

/// Bit flags describing one Unicode scalar for the split patterns.
enum CharFlags {
    /// `\p{L}`
    static let letter: UInt8 = 1 << 0
    /// `\p{N}`
    static let number: UInt8 = 1 << 1
    /// `\s` (White_Space)
    static let space: UInt8 = 1 << 2
    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k "upper" class)
    static let upper: UInt8 = 1 << 3
    /// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k "lower" class)
    static let lower: UInt8 = 1 << 4
    /// `[\r\n]`
    static let newline: UInt8 = 1 << 5

    /// The Unicode version of the character tables that tiktoken's regex engine uses
    /// (tiktoken 0.14.0 → fancy-regex → regex-syntax 0.8: Unicode 16.0).
    ///
    /// The Swift standard library may know a newer version (Swift 6.3: Unicode 17.0).
    /// Scalars assigned after this version are unassigned (`Cn`) for tiktoken, so they
    /// are classified as such here. The toolchain must know at least this version.
    static let regexUnicodeVersion = (major: 16, minor: 0)

    /// Scalars whose general category changed after `regexUnicodeVersion`, with their
    /// category in that version. Unicode 17.0 changed U+0295 LATIN LETTER PHARYNGEAL
    /// VOICED FRICATIVE from Ll to Lo. (`tools/crosscheck.py unicode` finds such changes
    /// by comparing with the Unicode 16.0 database.)
    static let categoryOverrides: [UInt32: Unicode.GeneralCategory] = [
        0x0295: .lowercaseLetter,
    ]

    /// Computes the flags of a scalar from the standard library's Unicode tables.
    static func of(_ scalar: Unicode.Scalar) -> UInt8 {
        guard let age = scalar.properties.age, (age.major, age.minor) <= regexUnicodeVersion else {
            return 0  // unassigned in regexUnicodeVersion
        }
        var flags: UInt8 = 0
        switch categoryOverrides[scalar.value] ?? scalar.properties.generalCategory {
        case .uppercaseLetter, .titlecaseLetter:
            flags = letter | upper
        case .lowercaseLetter:
            flags = letter | lower
        case .modifierLetter, .otherLetter:
            flags = letter | upper | lower
        case .nonspacingMark, .spacingMark, .enclosingMark:
            flags = upper | lower
        case .decimalNumber, .letterNumber, .otherNumber:
            flags = number
        default:
            break
        }
        if scalar.properties.isWhitespace { flags |= space }
        if scalar == "\r" || scalar == "\n" { flags |= newline }
        return flags
    }

    /// Flags of the scalar with value `value` (0 for surrogates, which never occur).
    static func of(value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        return of(scalar)
    }
}

/// Precomputed flags for the scalars U+0000 ..< U+20000 (the BMP, where nearly all
/// text lives, and plane 1, home of emoji). Built once, on first use; other scalars
/// are classified on the fly.
final class CharFlagsTable: @unchecked Sendable {
    // @unchecked: the buffer is written only in `init` and read-only afterwards.
    static let shared = CharFlagsTable()
    static let count = 0x20000

    let flags: UnsafeMutablePointer<UInt8>

    private init() {
        flags = .allocate(capacity: Self.count)
        for value in 0..<UInt32(Self.count) {
            flags[Int(value)] = CharFlags.of(value: value)
        }
    }

    deinit { flags.deallocate() }
}

/// Scans one stretch of valid UTF-8 (`base[0..<end]`) and finds piece boundaries.
///
/// Positions are byte offsets from `base`; a piece always starts and ends on a scalar
/// boundary. The caller keeps the memory alive while the scanner is used.
struct PieceScanner {
    let base: UnsafePointer<UInt8>
    let end: Int
    let table: UnsafePointer<UInt8>

    // MARK: Scalar access

    /// Flags and UTF-8 length of the scalar starting at byte offset `i`.
    @inline(__always)
    func scalar(at i: Int) -> (flags: UInt8, length: Int) {
        let b0 = base[i]
        if b0 < 0x80 { return (table[Int(b0)], 1) }
        return nonASCIIScalar(at: i, b0)
    }

    @inline(__always)
    private func nonASCIIScalar(at i: Int, _ b0: UInt8) -> (flags: UInt8, length: Int) {
        if b0 < 0xE0 {
            let v = Int(b0 & 0x1F) << 6 | Int(base[i + 1] & 0x3F)
            return (table[v], 2)
        }
        if b0 < 0xF0 {
            let v = Int(b0 & 0x0F) << 12 | Int(base[i + 1] & 0x3F) << 6 | Int(base[i + 2] & 0x3F)
            return (table[v], 3)
        }
        let v = Int(b0 & 0x07) << 18 | Int(base[i + 1] & 0x3F) << 12
            | Int(base[i + 2] & 0x3F) << 6 | Int(base[i + 3] & 0x3F)
        if v < CharFlagsTable.count { return (table[v], 4) }
        return (CharFlags.of(value: UInt32(v)), 4)
    }

    /// `[^\r\n\p{L}\p{N}]`
    @inline(__always)
    static func isNotLetterNumberNewline(_ f: UInt8) -> Bool {
        f & (CharFlags.letter | CharFlags.number | CharFlags.newline) == 0
    }

    /// `[^\s\p{L}\p{N}]`
    @inline(__always)
    static func isOther(_ f: UInt8) -> Bool {
        f & (CharFlags.letter | CharFlags.number | CharFlags.space) == 0
    }

    /// End of the run of scalars from `i` whose flags intersect `mask`.
    @inline(__always)
    func run(from i: Int, anyOf mask: UInt8) -> Int {
        var j = i
        while j < end {
            let (f, l) = scalar(at: j)
            if f & mask == 0 { break }
            j += l
        }
        return j
    }

    /// End of the run of `[^\s\p{L}\p{N}]` scalars from `i`.
    @inline(__always)
    func otherRun(from i: Int) -> Int {
        var j = i
        while j < end {
            let (f, l) = scalar(at: j)
            if !Self.isOther(f) { break }
            j += l
        }
        return j
    }

    /// End of the run of bytes from `i` that are `\r`, `\n` (or `/` if `slash`).
    @inline(__always)
    func newlineRun(from i: Int, slash: Bool) -> Int {
        var j = i
        while j < end {
            let b = base[j]
            if b == 0x0D || b == 0x0A || (slash && b == 0x2F) { j += 1 } else { break }
        }
        return j
    }

    /// If a contraction `'(?i:s|t|m|d|ll|ve|re)` starts at `i` (which holds `'`),
    /// returns its end; otherwise returns `i`. Both patterns use this same set.
    @inline(__always)
    func contractionEnd(at i: Int) -> Int {
        guard i + 1 < end else { return i }
        let b1 = base[i + 1]
        switch b1 | 0x20 {  // ASCII lower-casing (harmless for the non-letters compared)
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return i + 2
        case UInt8(ascii: "l"):
            if i + 2 < end && base[i + 2] | 0x20 == UInt8(ascii: "l") { return i + 3 }
        case UInt8(ascii: "v"), UInt8(ascii: "r"):
            if i + 2 < end && base[i + 2] | 0x20 == UInt8(ascii: "e") { return i + 3 }
        default:
            // U+017F LATIN SMALL LETTER LONG S (C5 BF) case-folds to "s".
            if b1 == 0xC5 && i + 2 < end && base[i + 2] == 0xBF { return i + 3 }
        }
        return i
    }

    /// For the whitespace alternatives of both patterns: `i` holds a `\s` scalar.
    /// Returns the end of the maximal whitespace run from `i`, the end of the last
    /// `[\r\n]` in it (-1 if none) and the start of its last scalar.
    @inline(__always)
    func whitespaceRun(from i: Int)
        -> (runEnd: Int, lastNewlineEnd: Int, lastScalarStart: Int)
    {
        var j = i
        var lastNewlineEnd = -1
        var lastStart = i
        while j < end {
            let (f, l) = scalar(at: j)
            if f & CharFlags.space == 0 { break }
            if f & CharFlags.newline != 0 { lastNewlineEnd = j + l }
            lastStart = j
            j += l
        }
        return (j, lastNewlineEnd, lastStart)
    }

    // MARK: cl100k_base

    /// End of the piece starting at `i` for
    /// `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
    @inline(__always)
    func cl100kPieceEnd(from i: Int) -> Int {
        let b0 = base[i]
        // '(?i:[sdmt]|ll|ve|re)
        if b0 == UInt8(ascii: "'") {
            let e = contractionEnd(at: i)
            if e != i { return e }
        }
        let (f0, l0) = scalar(at: i)
        // [^\r\n\p{L}\p{N}]?+\p{L}++   (both quantifiers possessive)
        if f0 & CharFlags.letter != 0 {
            return run(from: i + l0, anyOf: CharFlags.letter)
        }
        if Self.isNotLetterNumberNewline(f0) && i + l0 < end {
            let (f1, l1) = scalar(at: i + l0)
            if f1 & CharFlags.letter != 0 {
                return run(from: i + l0 + l1, anyOf: CharFlags.letter)
            }
        }
        // \p{N}{1,3}+
        if f0 & CharFlags.number != 0 {
            var j = i + l0
            for _ in 0..<2 {
                guard j < end else { break }
                let (f, l) = scalar(at: j)
                guard f & CharFlags.number != 0 else { break }
                j += l
            }
            return j
        }
        //  ?[^\s\p{L}\p{N}]++[\r\n]*+
        if Self.isOther(f0) {
            return newlineRun(from: otherRun(from: i + l0), slash: false)
        }
        if b0 == UInt8(ascii: " ") && i + 1 < end {
            let (f1, l1) = scalar(at: i + 1)
            if Self.isOther(f1) {
                return newlineRun(from: otherRun(from: i + 1 + l1), slash: false)
            }
        }
        // Only whitespace is left.
        let ws = whitespaceRun(from: i)
        if ws.runEnd == end { return end }                      // \s++$
        if ws.lastNewlineEnd >= 0 { return ws.lastNewlineEnd }   // \s*[\r\n]
        if ws.lastScalarStart > i { return ws.lastScalarStart }  // \s+(?!\S)
        return i + l0                                            // \s
    }

    // MARK: o200k_base

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` from `p`, with
    /// backtracking: returns the match end, or -1 if there is no match.
    @inline(__always)
    func upperStarLowerPlus(from p: Int) -> Int {
        var j = p
        var lastLowerEnd = -1  // end of the last scalar of the upper run that is also "lower"
        while j < end {
            let (f, l) = scalar(at: j)
            if f & CharFlags.upper == 0 {
                // The upper run ends here; if this scalar is "lower", the lower run starts.
                if f & CharFlags.lower != 0 { return run(from: j + l, anyOf: CharFlags.lower) }
                break
            }
            if f & CharFlags.lower != 0 { lastLowerEnd = j + l }
            j += l
        }
        // Backtrack the upper run to its last scalar that can be the one "lower" one.
        return lastLowerEnd
    }

    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` from `p`:
    /// returns the match end, or -1.
    @inline(__always)
    func upperPlusLowerStar(from p: Int) -> Int {
        let q = run(from: p, anyOf: CharFlags.upper)
        if q == p { return -1 }
        return run(from: q, anyOf: CharFlags.lower)
    }

    /// Appends an optional `(?i:'s|'t|'re|'ve|'m|'ll|'d)` to a word ending at `e`.
    @inline(__always)
    func withContraction(_ e: Int) -> Int {
        if e < end && base[e] == UInt8(ascii: "'") { return contractionEnd(at: e) }
        return e
    }

    /// End of the piece starting at `i` for the o200k_base pattern (see `SplitPattern.o200k`).
    @inline(__always)
    func o200kPieceEnd(from i: Int) -> Int {
        let (f0, l0) = scalar(at: i)
        let prefixable = Self.isNotLetterNumberNewline(f0)  // may be the leading `[^\r\n\p{L}\p{N}]?`
        // Alternative 1, first with the optional prefix taken, then without it.
        if prefixable && i + l0 < end {
            let e = upperStarLowerPlus(from: i + l0)
            if e >= 0 { return withContraction(e) }
        }
        if f0 & (CharFlags.upper | CharFlags.lower) != 0 {
            let e = upperStarLowerPlus(from: i)
            if e >= 0 { return withContraction(e) }
        }
        // Alternative 2, same order.
        if prefixable && i + l0 < end {
            let e = upperPlusLowerStar(from: i + l0)
            if e >= 0 { return withContraction(e) }
        }
        if f0 & CharFlags.upper != 0 {
            let e = upperPlusLowerStar(from: i)
            if e >= 0 { return withContraction(e) }
        }
        // \p{N}{1,3}
        if f0 & CharFlags.number != 0 {
            var j = i + l0
            for _ in 0..<2 {
                guard j < end else { break }
                let (f, l) = scalar(at: j)
                guard f & CharFlags.number != 0 else { break }
                j += l
            }
            return j
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        if Self.isOther(f0) {
            return newlineRun(from: otherRun(from: i + l0), slash: true)
        }
        if base[i] == UInt8(ascii: " ") && i + 1 < end {
            let (f1, l1) = scalar(at: i + 1)
            if Self.isOther(f1) {
                return newlineRun(from: otherRun(from: i + 1 + l1), slash: true)
            }
        }
        // Only whitespace is left.
        let ws = whitespaceRun(from: i)
        if ws.lastNewlineEnd >= 0 { return ws.lastNewlineEnd }   // \s*[\r\n]+
        if ws.runEnd == end { return end }                      // \s+(?!\S) at the end
        if ws.lastScalarStart > i { return ws.lastScalarStart }  // \s+(?!\S)
        return ws.runEnd                                         // \s+
    }
}
