import CHiredis
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A command: its arguments as binary-safe byte strings.
///
/// The arguments are kept one after another in one byte array (with where each ends), not as an
/// array per argument: a batch of records is a command of hundreds of arguments, and building
/// them one allocation each (numbers through `String` first) was a fifth of a record's CPU
/// through Redis. Numbers are written as decimal digits straight into the bytes.
public struct RedisCommand: Sendable, Equatable, RandomAccessCollection {
    /// Every argument's bytes, one after another.
    private var bytes: [UInt8] = []
    /// Where each argument ends in `bytes`.
    private var ends: [Int] = []

    public init() {}

    /// A command from strings, byte arrays and numbers.
    public static func make(_ parts: any RedisArgument...) -> RedisCommand {
        make(parts)
    }

    public static func make(_ parts: [any RedisArgument]) -> RedisCommand {
        var command = RedisCommand()
        command.ends.reserveCapacity(parts.count)
        for part in parts { command.append(part) }
        return command
    }

    /// Appends one argument.
    public mutating func append(_ argument: some RedisArgument) {
        argument.appendRedisBytes(to: &bytes)
        ends.append(bytes.count)
    }

    /// Appends the arguments in order.
    public mutating func append(contentsOf arguments: some Sequence<some RedisArgument>) {
        for argument in arguments { append(argument) }
    }

    /// The command with its first `count` arguments replaced by `arguments` (`EVALSHA sha` by
    /// `EVAL source`).
    func replacingPrefix(_ count: Int, with arguments: [[UInt8]]) -> RedisCommand {
        var command = RedisCommand()
        command.append(contentsOf: arguments)
        for index in count..<self.count { command.append(self[index]) }
        return command
    }

    // MARK: RandomAccessCollection

    public var startIndex: Int { 0 }
    public var endIndex: Int { ends.count }

    public subscript(position: Int) -> ArraySlice<UInt8> {
        bytes[(position == 0 ? 0 : ends[position - 1])..<ends[position]]
    }

    // MARK: RESP

    /// Appends the command in RESP, as hiredis's `redisFormatCommandArgv` writes it:
    ///
    ///     *<argc>\r\n  then for each argument  $<length>\r\n<bytes>\r\n
    func encode(into buffer: inout ByteBuffer) {
        var target: UnsafeMutablePointer<CChar>? = nil
        let count = ends.count
        let length = bytes.withUnsafeBufferPointer { storage in
            // A one-byte stand-in keeps an empty command's (or empty arguments') pointers valid.
            let base = UnsafeRawPointer(storage.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
            return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                    var start = 0
                    for (index, end) in ends.enumerated() {
                        argv[index] = base + start
                        lengths[index] = end - start
                        start = end
                    }
                    return redisFormatCommandArgv(&target, Int32(count), argv.baseAddress!, lengths.baseAddress!)
                }
            }
        }
        // hiredis fails only when malloc does.
        guard length >= 0, let target else { fatalError("redisFormatCommandArgv could not allocate") }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
        redisFreeCommand(target)
    }
}

/// What can be an argument of a command: its bytes are appended as they go on the wire.
public protocol RedisArgument {
    func appendRedisBytes(to bytes: inout [UInt8])
}

extension RedisArgument {
    /// The argument's bytes alone.
    public var redisBytes: [UInt8] {
        var bytes: [UInt8] = []
        appendRedisBytes(to: &bytes)
        return bytes
    }
}

extension String: RedisArgument {
    public func appendRedisBytes(to bytes: inout [UInt8]) { bytes.append(contentsOf: utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public func appendRedisBytes(to bytes: inout [UInt8]) { bytes.append(contentsOf: self) }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    public func appendRedisBytes(to bytes: inout [UInt8]) { bytes.append(contentsOf: self) }
}

extension Int64: RedisArgument {
    /// Decimal digits, as `String(self)` spells them, without making the string.
    public func appendRedisBytes(to bytes: inout [UInt8]) {
        if self < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = self.magnitude
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 20 digits at most, kept backwards
        var count = 0
        withUnsafeMutableBytes(of: &digits) { reversed in
            repeat {
                reversed[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(reversed[index]) }
        }
    }
}

extension Int: RedisArgument {
    public func appendRedisBytes(to bytes: inout [UInt8]) { Int64(self).appendRedisBytes(to: &bytes) }
}
