import CostdCore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import CostdServer

/// The HTTP endpoint's connection handling in-process, on an embedded channel whose clock the
/// tests move: the request and idle timers, refusals before any work, malformed requests.
/// (Whole calls through the gateway are tested against real daemons in
/// tests/integration/test_http_endpoint.py.)
@Suite("HTTP gateway handler")
struct HTTPGatewayHandlerTests {
    final class Connection {
        let channel = EmbeddedChannel()
        let engine: CostdEngine
        let upstreams: UpstreamClient
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let directory: String

        init(_ configure: (inout HTTPSettings) -> Void = { _ in }) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-http-\(UUID().uuidString)").path
            let logger = Logger(label: "test")
            let ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), logger: logger)
            engine = try CostdEngine(
                rules: try Rules.load(Configuration()), ledger: ledger, redis: nil,
                tokenizers: Tokenizers(dataDirectory: nil, logger: logger), logger: logger
            )
            var settings = HTTPSettings()
            settings.requestTimeoutSeconds = 2
            settings.idleTimeoutSeconds = 10
            settings.maxBodyBytes = 1024
            configure(&settings)
            upstreams = try UpstreamClient(settings: settings, group: group, logger: logger)
            let gateway = HTTPGateway(engine: engine, upstreams: upstreams, settings: settings, logger: logger)
            try gateway.setUpConnection(channel, caller: nil)
            try channel.connect(to: SocketAddress(unixDomainSocketPath: directory + "/client.sock")).wait()
        }

        func close() async throws {
            _ = try? channel.finish()
            await upstreams.shutdown()
            try await group.shutdownGracefully()
            engine.close()
            try? FileManager.default.removeItem(atPath: directory)
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written to the client so far.
        func received() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func advance(seconds: Double) {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(Int64(seconds * 1000)))
        }
    }

    @Test func aHeadThatNeverEndsIsCutOffAtTheRequestTimeout() async throws {
        let connection = try Connection()
        try connection.send("POST /v1/chat/completions HTTP/1.1\r\nhost: costd\r\nx-slow: ")
        connection.advance(seconds: 1.9)
        #expect(connection.channel.isActive)
        connection.advance(seconds: 0.2)
        #expect(!connection.channel.isActive)
        // At most NIO's 400 for the truncated head, written as the connection closes.
        let written = try connection.received()
        #expect(written == "" || written.hasPrefix("HTTP/1.1 400"), "\(written)")
        try await connection.close()
    }

    @Test func anIdleConnectionClosesAtTheIdleTimeoutAndNotBefore() async throws {
        let connection = try Connection()
        connection.advance(seconds: 9.9)
        #expect(connection.channel.isActive)
        connection.advance(seconds: 0.2)
        #expect(!connection.channel.isActive)
        try await connection.close()
    }

    @Test func aBodyOverTheLimitIsRefusedBeforeItIsRead() async throws {
        let connection = try Connection()
        try connection.send("POST /v1/chat/completions HTTP/1.1\r\nhost: costd\r\ncontent-length: 5000\r\n\r\n{\"model\"")
        let answer = try connection.received()
        #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
        #expect(answer.lowercased().contains("connection: close"))
        #expect(answer.contains(#""code":"request_too_large""#))
        #expect(!connection.channel.isActive)
        try await connection.close()
    }

    @Test func aChunkedBodyOverTheLimitIsRefusedToo() async throws {
        let connection = try Connection()
        let chunk = String(repeating: "x", count: 800)
        try connection.send("POST /v1/chat/completions HTTP/1.1\r\nhost: costd\r\ntransfer-encoding: chunked\r\n\r\n320\r\n\(chunk)\r\n")
        #expect(try connection.received() == "")
        try connection.send("320\r\n\(chunk)\r\n")
        #expect(try connection.received().hasPrefix("HTTP/1.1 413"))
        #expect(!connection.channel.isActive)
        try await connection.close()
    }

    @Test func malformedHTTPGetsA400() async throws {
        let connection = try Connection()
        try? connection.send("\u{1}\u{2} garbage\r\n\r\n")
        #expect(try connection.received().hasPrefix("HTTP/1.1 400 Bad Request"))
        try await connection.close()
    }
}
