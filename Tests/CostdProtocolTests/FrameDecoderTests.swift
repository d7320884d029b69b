import CostdCore
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import CostdProtocol

@Suite struct FrameDecoderTests {
    func frame(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFrame(Array(text.utf8))
        return buffer
    }

    @Test func decodesFramesWhateverTheChunking() throws {
        // The verifier feeds the input one byte at a time and all at once.
        let inputs = ["{}", "[1,2,3]", "", String(repeating: "x", count: 1000)]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: inputs.map { (frame($0), [ByteBuffer(string: $0)]) },
            decoderFactory: { FrameDecoder(maxFrameBytes: 4096) }
        )
    }

    @Test func rejectsAnOversizeFrameFromItsHeaderAlone() throws {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1025))  // no body at all: the header is enough to refuse
        #expect(throws: FrameDecoderError.frameTooLarge(length: 1025, limit: 1024)) {
            try decoder.decode(buffer: &buffer)
        }
        var huge = ByteBuffer()
        huge.writeInteger(UInt32.max)
        #expect(throws: FrameDecoderError.self) { try decoder.decode(buffer: &huge) }
    }

    @Test func waitsForTheWholeFrame() throws {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(5))
        buffer.writeString("abc")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("de")
        #expect(try decoder.decode(buffer: &buffer) == ByteBuffer(string: "abcde"))
    }

    @Test func worksInAChannelPipeline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64)))
        try channel.writeInbound(frame("{\"a\":1}"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "{\"a\":1}"))
        var oversize = ByteBuffer()
        oversize.writeInteger(UInt32(65))
        #expect(throws: FrameDecoderError.self) { try channel.writeInbound(oversize) }
        _ = try? channel.finish()
    }
}

@Suite struct RPCMessageDecoderTests {
    let decoder = RPCMessageDecoder(limits: .init(maxDepth: 8), maxBatchRequests: 3)

    func decode(_ text: String) -> RPCMessage {
        decoder.decode(frame: ByteBuffer(string: text))
    }

    func error(_ text: String) -> RPCError? {
        switch decode(text) {
        case .unreadable(let error): error
        case .single(.invalid(_, let error)): error
        default: nil
        }
    }

    @Test func decodesARequest() throws {
        guard case .single(.request(let request)) = decode(#"{"jsonrpc":"2.0","id":"a","method":"ping","params":{"x": [1, 2]}}"#) else {
            Issue.record("not a request")
            return
        }
        #expect(request.id == "a")
        #expect(request.method == "ping")
        #expect(request.rawParam("x") == Array("[1, 2]".utf8))
        #expect(!request.isNotification)
    }

    @Test func aRequestWithoutIdIsANotification() {
        guard case .single(.request(let request)) = decode(#"{"jsonrpc":"2.0","method":"ping"}"#) else {
            Issue.record("not a request")
            return
        }
        #expect(request.isNotification)
    }

    @Test func classifiesErrors() {
        #expect(error("{oops")?.code == RPCError.parseErrorCode)
        #expect(error("[]")?.code == RPCError.invalidRequestCode)
        #expect(error("42")?.code == RPCError.invalidRequestCode)
        #expect(error(#"{"id":1,"method":"ping"}"#)?.code == RPCError.invalidRequestCode)
        #expect(error(#"{"jsonrpc":"2.0","id":1}"#)?.code == RPCError.invalidRequestCode)
        #expect(error(#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#)?.code == RPCError.invalidRequestCode)
        #expect(error(#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#)?.code == RPCError.invalidParamsCode)
        #expect(error(String(repeating: "[", count: 9) + String(repeating: "]", count: 9))?.code == RPCError.payloadTooLargeCode)
        #expect(error("[1,2,3,4]")?.code == RPCError.payloadTooLargeCode)
    }

    @Test func decodesABatch() {
        guard case .batch(let calls) = decode(#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#) else {
            Issue.record("not a batch")
            return
        }
        #expect(calls.count == 2)
        if case .invalid = calls[1] {} else { Issue.record("the second element should be invalid") }
    }
}
