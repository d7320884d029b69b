import NIOCore
import Testing

@testable import CostdRedis

/// Commands keep their arguments in one byte array; what goes on the wire is hiredis's RESP.
@Suite("Redis commands")
struct RedisCommandTests {
    static func wire(_ command: RedisCommand) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        command.encode(into: &buffer)
        return String(decoding: buffer.readableBytesView, as: UTF8.self)
    }

    @Test(arguments: [Int64.min, Int64.min + 1, -1_000_000_007, -10, -9, -1, 0, 1, 9, 10, 99, 100, 604_800, 1 << 53, Int64.max - 1, Int64.max])
    func numbersAreTheirDecimalDigits(number: Int64) {
        #expect(number.redisBytes == Array(String(number).utf8))
        #expect(Int(number).redisBytes == Array(String(number).utf8))
    }

    @Test func argumentsKeepTheirBoundariesIncludingEmptyOnes() {
        var command = RedisCommand.make("SET", "", [0x00, 0x0D, 0x0A] as [UInt8])
        command.append(Int64(-42))
        command.append(contentsOf: ["a", ""])
        #expect(command.map { Array($0) } == [Array("SET".utf8), [], [0x00, 0x0D, 0x0A], Array("-42".utf8), Array("a".utf8), []])
        #expect(Self.wire(command) == "*6\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\n\u{0}\r\n\r\n$3\r\n-42\r\n$1\r\na\r\n$0\r\n\r\n")
    }

    @Test func anEmptyCommandIsAnEmptyArray() {
        #expect(Self.wire(RedisCommand()) == "*0\r\n")
    }

    @Test func evalReplacesEvalshaAndTheDigestKeepingTheRest() {
        let evalsha = RedisCommand.make("EVALSHA", "abc", 1, "k", Int64(7))
        let eval = evalsha.replacingPrefix(2, with: [Array("EVAL".utf8), Array("return 1".utf8)])
        #expect(eval == RedisCommand.make("EVAL", "return 1", 1, "k", "7"))
        #expect(Self.wire(eval) == "*5\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n7\r\n")
    }
}
