import CostdCore
import CostdProtocol
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import CostdServer

/// The connection handler in-process, on an embedded channel whose clock the tests move: a real
/// engine on the embedded store (a ledger in a temporary directory), frames in, frames out.
@Suite("RPC connection handler")
struct RPCConnectionHandlerTests {
    /// Counts the reads that get past the connection handler to the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    final class Connection {
        let channel = EmbeddedChannel()
        let engine: CostdEngine
        let reads = ReadCounter()
        let directory: String

        init(clock: CostdClock = .system, metrics: DaemonMetrics? = nil, _ configure: (inout ServerLimits) -> Void = { _ in }) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-handler-\(UUID().uuidString)").path
            let logger = Logger(label: "test")
            let ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), logger: logger)
            engine = try CostdEngine(
                rules: try Rules.load(Configuration()), ledger: ledger, redis: nil,
                tokenizers: Tokenizers(dataDirectory: nil, logger: logger), metrics: metrics, clock: clock, logger: logger
            )
            var limits = ServerLimits()
            configure(&limits)
            try channel.pipeline.syncOperations.addHandler(reads)
            try channel.pipeline.syncOperations.addHandler(RPCConnectionHandler(engine: engine, limits: limits, caller: nil, logger: logger))
            try channel.connect(to: SocketAddress(unixDomainSocketPath: directory + "/client.sock")).wait()
        }

        deinit {
            _ = try? channel.finish()
            engine.close()
            try? FileManager.default.removeItem(atPath: directory)
        }

        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        static func frames(_ bodies: [String]) -> ByteBuffer {
            var buffer = ByteBuffer()
            for body in bodies { buffer.writeFrame(Array(body.utf8)) }
            return buffer
        }

        func send(_ bodies: String...) throws {
            try channel.writeInbound(Self.frames(bodies))
        }

        func send(bytes: ByteBuffer) throws {
            try channel.writeInbound(bytes)
        }

        /// Every outbound buffer written so far, each cut into its frames' bodies.
        func writes() throws -> [[String]] {
            var writes: [[String]] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                var bodies: [String] = []
                while let length = buffer.readInteger(as: UInt32.self), let body = buffer.readString(length: Int(length)) {
                    bodies.append(body)
                }
                writes.append(bodies)
            }
            return writes
        }
    }

    static func call(_ id: Int, _ method: String, _ params: String = "{}") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    @Test func pipelinedCallsAreAnsweredInOrderInOneWrite() throws {
        let connection = try Connection()
        // Three calls, cut across two reads in the middle of the second frame.
        var bytes = Connection.frames([
            Self.call(1, "ping"), Self.call(2, "cacheSet", #"{"model":"m","prompt":"p","value":"v"}"#),
            Self.call(3, "cacheGet", #"{"model":"m","prompt":"p"}"#),
        ])
        let head = bytes.readSlice(length: 70)!
        try connection.send(bytes: head)
        try connection.send(bytes: bytes)
        let writes = try connection.writes()
        #expect(writes.count == 2, "the first read answers ping, the second the other two together")
        let bodies = writes.flatMap { $0 }
        #expect(bodies.count == 3, "\(bodies)")
        #expect(bodies[0].contains(#""id":1"#) && bodies[0].contains(#""pong":true"#))
        #expect(bodies[1].contains(#""id":2"#) && bodies[1].contains(#""stored":true"#))
        #expect(bodies[2].contains(#""id":3"#) && bodies[2].contains(#""value":"v""#))
        #expect(writes[1].count == 2)
    }

    /// A `cacheSet` that fills the lease another call of the same connection waits for answers
    /// that call from inside its own frame: the handler takes it after the frame (it used to
    /// re-enter itself, an exclusivity violation that aborted the daemon).
    @Test func aFillOfALeaseTheSameConnectionWaitsForAnswersBothCalls() throws {
        let connection = try Connection()
        try connection.send(Self.call(1, "cacheGet", #"{"model":"m","prompt":"p","lease":true}"#))
        let granted = try connection.writes().flatMap { $0 }
        #expect(granted.count == 1)
        let lease = try #require(granted.first.flatMap { body in
            body.range(of: #""lease":""#).map { String(body[$0.upperBound...].prefix { $0 != "\"" }) }
        })
        try connection.send(Self.call(2, "cacheGet", #"{"model":"m","prompt":"p","lease":true,"waitMs":10000}"#))
        #expect(try connection.writes().isEmpty, "the second caller waits for the first's answer")
        // The fill and another call in one read: the answered waiter must not take the next frame
        // from inside the fill's.
        try connection.send(Self.call(3, "cacheSet", #"{"model":"m","prompt":"p","value":"v","lease":"\#(lease)"}"#), Self.call(4, "ping"))
        connection.channel.embeddedEventLoop.run()
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 3, "\(bodies)")
        #expect(bodies.contains { $0.contains(#""id":4"#) && $0.contains(#""pong":true"#) })
        #expect(bodies.contains { $0.contains(#""id":3"#) && $0.contains(#""stored":true"#) })
        #expect(bodies.contains { $0.contains(#""id":2"#) && $0.contains(#""value":"v""#) && $0.contains(#""layer":"fill""#) })
    }

    @Test func aConnectionPastItsShareOfTheLoopIsPausedThenServed() throws {
        // No burst: any frame overdraws the budget, and the pause (the frame's real time, at the
        // whole loop's share of a light connection) is far under an hour.
        let connection = try Connection { $0.connectionCPUBurstMillis = 0 }
        try connection.send(Self.call(1, "ping"), Self.call(2, "ping"))
        #expect(try connection.writes().flatMap { $0 }.count == 1, "the second frame waits for the first's time to be paid back")
        let readsBefore = connection.reads.reads
        connection.channel.read()
        #expect(connection.reads.reads == readsBefore, "a paused connection is not read from")
        connection.loop.advanceTime(by: .hours(1))
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 1)
        #expect(bodies.first?.contains(#""id":2"#) == true)
        #expect(connection.reads.reads == readsBefore + 1, "the held read goes ahead once the pause is over")
    }

    @Test func backPressureHoldsFramesAndReadsUntilAnAnswerGoesOut() throws {
        let connection = try Connection { $0.maxInFlightPerConnection = 2 }
        let lease = #"{"model":"m","prompt":"slow","lease":true,"waitMs":1000}"#
        // The first takes the lease; the next two wait for it to be filled (two in flight); the
        // fourth must wait in the buffer.
        try connection.send(Self.call(1, "cacheGet", lease), Self.call(2, "cacheGet", lease), Self.call(3, "cacheGet", lease), Self.call(4, "ping"))
        #expect(try connection.writes().flatMap { $0 }.count == 1, "only the lease is answered")
        let readsBefore = connection.reads.reads
        connection.channel.read()
        #expect(connection.reads.reads == readsBefore, "no read while two calls are in flight")
        // The waiters give up after 1 s: their answers go out, the held ping is taken, and
        // reading resumes.
        connection.loop.advanceTime(by: .seconds(1))
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 3, "\(bodies)")
        #expect(bodies.contains { $0.contains(#""id":2"#) && $0.contains(#""hit":false"#) })
        #expect(bodies.contains { $0.contains(#""id":4"#) && $0.contains(#""pong":true"#) })
        #expect(connection.reads.reads == readsBefore + 1, "the held read goes ahead")
    }

    @Test func aHalfClosedClientGetsEveryAnswerThenTheConnectionCloses() throws {
        let connection = try Connection()
        try connection.send(Self.call(1, "ping"), Self.call(2, "estimate", #"{"model":"gpt-4o-mini","dailyRequests":1,"avgInputTokens":1,"avgOutputTokens":1}"#))
        connection.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        connection.loop.run()
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 2)
        #expect(bodies[1].contains(#""perRequestUsd""#))
        #expect(!connection.channel.isActive, "closed once the answers were out")
    }

    @Test func anOversizeFrameIsAnsweredFromItsHeaderAndTheConnectionClosed() throws {
        let connection = try Connection { $0.maxFrameBytes = 1_024 }
        var header = ByteBuffer()
        header.writeInteger(UInt32(1 << 30))
        header.writeString("{")
        try connection.send(bytes: header)
        connection.loop.run()
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 1)
        #expect(bodies[0].contains(#""code":-32002"#) && bodies[0].contains(#""id":null"#))
        #expect(!connection.channel.isActive)
    }

    @Test func aFrameLeftHalfSentIsClosedAfterTheTimeout() throws {
        let connection = try Connection { $0.partialFrameTimeoutSeconds = 10 }
        var bytes = Connection.frames([Self.call(1, "ping")])
        try connection.send(bytes: bytes.readSlice(length: 10)!)
        connection.loop.advanceTime(by: .seconds(9))
        #expect(connection.channel.isActive, "9 s half-sent is within the limit")
        connection.loop.advanceTime(by: .seconds(1))
        #expect(!connection.channel.isActive, "10 s half-sent is not")
        #expect(try connection.writes().isEmpty)
    }

    @Test func anIdleConnectionIsClosedAndABusyOneIsNot() throws {
        let connection = try Connection {
            $0.idleTimeoutSeconds = 60
            $0.partialFrameTimeoutSeconds = 100
        }
        connection.loop.advanceTime(by: .seconds(50))
        try connection.send(Self.call(1, "ping"))
        connection.loop.advanceTime(by: .seconds(50))
        #expect(connection.channel.isActive, "it spoke 50 s ago")
        connection.loop.advanceTime(by: .seconds(40))
        #expect(!connection.channel.isActive, "silent for 60 s and more")
    }

    @Test func cacheEntriesExpireAtTheirTTLOnTheEnginesClock() throws {
        let time = ManualClock(wallMillis: 1_796_000_000_000)
        let connection = try Connection(clock: time.clock)
        try connection.send(
            Self.call(1, "cacheSet", #"{"model":"m","prompt":"short","value":1,"ttl":0.3}"#),
            Self.call(2, "cacheSet", #"{"model":"m","prompt":"long","value":2}"#)
        )
        time.advance(millis: 299)
        try connection.send(Self.call(3, "cacheGet", #"{"model":"m","prompt":"short"}"#))
        time.advance(millis: 1)
        try connection.send(
            Self.call(4, "cacheGet", #"{"model":"m","prompt":"short"}"#), Self.call(5, "cacheGet", #"{"model":"m","prompt":"long"}"#)
        )
        let bodies = try connection.writes().flatMap { $0 }
        #expect(bodies.count == 5)
        #expect(bodies[2].contains(#""hit":true"#), "299 ms into a 300 ms TTL")
        #expect(bodies[3].contains(#""hit":false"#), "300 ms: expired")
        #expect(bodies[4].contains(#""hit":true"#))
    }

    /// A client whose stream always ends mid-frame, but that keeps completing frames, is busy,
    /// not stalled: the half-sent timeout counts from the last whole frame.
    @Test func aBusyClientIsNotTakenForAStalledOne() throws {
        let connection = try Connection { $0.partialFrameTimeoutSeconds = 2 }
        let frame = Connection.frames([Self.call(1, "ping")])
        let half = frame.readableBytes / 2
        try connection.send(bytes: frame.getSlice(at: 0, length: half)!)
        // Three times the timeout, one second at a time, never a whole number of frames buffered.
        for _ in 0..<6 {
            connection.loop.advanceTime(by: .seconds(1))
            var next = frame.getSlice(at: half, length: frame.readableBytes - half)!
            next.writeImmutableBuffer(frame.getSlice(at: 0, length: half)!)
            try connection.send(bytes: next)
            #expect(connection.channel.isActive)
        }
        #expect(try connection.writes().flatMap { $0 }.count == 6)
        connection.loop.advanceTime(by: .seconds(3))
        #expect(!connection.channel.isActive, "once it stops, the half frame times out")
    }
}
