import CHiredis
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A command: its arguments as binary-safe byte strings.
public typealias RedisCommand = [[UInt8]]

extension RedisCommand {
    /// A command from strings and byte arrays.
    public static func make(_ parts: any RedisArgument...) -> RedisCommand {
        parts.map(\.redisBytes)
    }

    /// Appends the command in RESP, as hiredis's `redisFormatCommandArgv` writes it:
    ///
    ///     *<argc>\r\n  then for each argument  $<length>\r\n<bytes>\r\n
    func encode(into buffer: inout ByteBuffer) {
        var target: UnsafeMutablePointer<CChar>? = nil
        let length = withArgv { argc, argv, lengths in redisFormatCommandArgv(&target, argc, argv, lengths) }
        // hiredis fails only when malloc does.
        guard length >= 0, let target else { fatalError("redisFormatCommandArgv could not allocate") }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
        redisFreeCommand(target)
    }

    /// Calls `body` with C argv/argvlen arrays pointing into the command's bytes.
    private func withArgv<Result>(
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        // One contiguous copy of all arguments, so the pointers stay valid for the whole call.
        var storage: [UInt8] = []
        storage.reserveCapacity(reduce(0) { $0 + $1.count + 1 })
        var offsets: [Int] = []
        offsets.reserveCapacity(count)
        for argument in self {
            offsets.append(storage.count)
            storage.append(contentsOf: argument)
            storage.append(0)
        }
        let lengths = map(\.count)
        return storage.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}

public protocol RedisArgument {
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument {
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public var redisBytes: [UInt8] { self }
}

extension Int64: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

extension Int: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}
