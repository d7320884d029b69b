/// Finds, eight bytes at a time, where a run of string bytes that JSON leaves as they are ends:
/// prompts and cached answers are long strings, and looking at them one byte at a time was the
/// largest cost of a call that carries one (the parser's and the writer's string loops took over
/// half the daemon's time under a flood of 100 KB prompts).
enum JSONStringScanner {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The offset of the first byte from `start` on that is a quote, a backslash or a control
    /// character, or (with `stopAtNonASCII`) any byte of 0x80 or more; `bytes.count` if none.
    @inline(__always)
    static func firstSpecialByte(in bytes: UnsafeRawBufferPointer, from start: Int, stopAtNonASCII: Bool) -> Int {
        var index = start
        let count = bytes.count
        while index + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // Each test is exact for "some byte is" (the classic has-zero and has-less-than
            // tricks); the byte loop below then finds which one.
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            var special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
            if stopAtNonASCII { special |= word }
            if special & highBits != 0 { break }
            index += 8
        }
        while index < count {
            let byte = bytes[index]
            if byte == 0x22 || byte == 0x5C || byte < 0x20 || (stopAtNonASCII && byte >= 0x80) { return index }
            index += 1
        }
        return count
    }
}
