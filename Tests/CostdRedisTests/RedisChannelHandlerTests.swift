import NIOCore
import NIOEmbedded
import Testing

@testable import CostdRedis

/// The connection handler without a socket: exact RESP bytes out, replies fed in pieces.
@Suite("Redis channel handler")
struct RedisChannelHandlerTests {
    final class Harness {
        let channel = EmbeddedChannel()
        let handler: RedisChannelHandler
        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        init(maxReplyBytes: Int = 1 << 20, onPush: ((RedisReply) -> Void)? = nil) throws {
            handler = RedisChannelHandler(maxReplyBytes: maxReplyBytes, onPush: onPush)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        }

        func send(_ commands: [RedisCommand], deadlineMillis: Int64 = 50) -> EventLoopFuture<[RedisReply]> {
            let promise = loop.makePromise(of: [RedisReply].self)
            handler.send(commands, deadline: loop.now + .milliseconds(deadlineMillis), promise: promise)
            return promise.futureResult
        }

        /// Everything written and flushed so far, as text.
        func written() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func receive(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    /// The result of a future that must already be complete.
    static func result(_ future: EventLoopFuture<[RedisReply]>) -> Result<[RedisReply], any Error>? {
        var result: Result<[RedisReply], any Error>?
        future.whenComplete { result = $0 }
        return result
    }

    @Test func aCommandIsWrittenAsRESPWithBinarySafeArguments() throws {
        let harness = try Harness()
        _ = harness.send([.make("SET", "k", [0x00, 0x0D, 0x0A, 0xFF] as [UInt8]), .make("GET", "k")])
        harness.loop.run()
        #expect(try harness.written() == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\u{0}\r\n\u{FFFD}\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
    }

    @Test func callsOfOneEventLoopTurnGoOutInOneFlush() throws {
        let harness = try Harness()
        _ = harness.send([.make("GET", "a")])
        _ = harness.send([.make("GET", "b")])
        #expect(try harness.written() == "", "nothing is flushed before the turn ends")
        harness.loop.run()
        #expect(try harness.written() == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n")
    }

    @Test func repliesSplitAcrossReadsAnswerPipelinedCallsInOrder() throws {
        let harness = try Harness()
        let first = harness.send([.make("GET", "a")])
        let second = harness.send([.make("INCR", "n"), .make("PTTL", "a")])
        harness.loop.run()
        try harness.receive("$5\r\nhel")
        #expect(Self.result(first) == nil, "half a reply answers nothing")
        try harness.receive("lo\r\n:7\r\n:-")
        #expect(try Self.result(first)?.get() == [.string(Array("hello".utf8))])
        #expect(Self.result(second) == nil)
        try harness.receive("1\r\n")
        #expect(try Self.result(second)?.get() == [.integer(7), .integer(-1)])
    }

    @Test func aDeadlineWithNoReplyFailsTheCallAndClosesTheConnection() throws {
        let harness = try Harness()
        let call = harness.send([.make("GET", "a")], deadlineMillis: 50)
        harness.loop.run()
        harness.loop.advanceTime(by: .milliseconds(49))
        #expect(Self.result(call) == nil)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(throws: RedisError.timedOut) { try Self.result(call)?.get() }
        #expect(!harness.channel.isActive)
        #expect(harness.handler.closeReason == .timedOut)
    }

    @Test func aBusyConnectionKeepsGoingWhenOneCallTimesOut() throws {
        let harness = try Harness()
        let early = harness.send([.make("GET", "early")], deadlineMillis: 1_000)
        let slow = harness.send([.make("GET", "slow")], deadlineMillis: 50)
        let after = harness.send([.make("GET", "after")], deadlineMillis: 1_000)
        harness.loop.run()
        harness.loop.advanceTime(by: .milliseconds(10))
        try harness.receive("$1\r\n1\r\n")
        harness.loop.advanceTime(by: .milliseconds(40))
        #expect(try Self.result(early)?.get() == [.string(Array("1".utf8))])
        #expect(throws: RedisError.timedOut) { try Self.result(slow)?.get() }
        #expect(harness.channel.isActive, "replies were flowing: Redis is busy, not gone")
        try harness.receive("$4\r\nlate\r\n$4\r\nmine\r\n")
        #expect(try Self.result(after)?.get() == [.string(Array("mine".utf8))])
    }

    @Test func aReplyOverTheLimitClosesTheConnectionWithoutBufferingIt() throws {
        let harness = try Harness(maxReplyBytes: 1_024)
        let call = harness.send([.make("GET", "big")])
        harness.loop.run()
        try harness.receive("$100000\r\n" + String(repeating: "x", count: 2_000))
        #expect(throws: RedisError.replyTooLarge(2_009)) { try Self.result(call)?.get() }
        #expect(!harness.channel.isActive)
    }

    @Test func garbageFromThePeerClosesTheConnection() throws {
        let harness = try Harness()
        let call = harness.send([.make("PING")])
        harness.loop.run()
        try harness.receive("?what\r\n")
        guard case .failure(RedisError.connection(let reason)) = Self.result(call) else {
            Issue.record("a malformed reply fails the call")
            return
        }
        #expect(reason.hasPrefix("malformed reply"))
        #expect(!harness.channel.isActive)
    }

    @Test func aClosedConnectionFailsWaitingAndLaterCalls() throws {
        let harness = try Harness()
        let waiting = harness.send([.make("GET", "a")])
        harness.loop.run()
        harness.channel.pipeline.fireChannelInactive()
        #expect(throws: RedisError.connection("connection closed by redis")) { try Self.result(waiting)?.get() }
        let later = harness.send([.make("GET", "b")])
        #expect(throws: RedisError.connection("connection closed by redis")) { try Self.result(later)?.get() }
    }

    @Test func aSubscriberHandsMessagesOnAfterItsConfirmation() throws {
        var messages: [RedisReply] = []
        let harness = try Harness(onPush: { messages.append($0) })
        let subscribe = harness.send([.make("SUBSCRIBE", "ch")])
        harness.loop.run()
        #expect(try harness.written() == "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        try harness.receive("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhi!\r\n")
        #expect(try Self.result(subscribe)?.get().first?.array?.first?.text == "subscribe")
        #expect(messages == [.array([.string(Array("message".utf8)), .string(Array("ch".utf8)), .string(Array("hi!".utf8))])])
    }
}
