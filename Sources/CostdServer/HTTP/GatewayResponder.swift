import NIOCore
import NIOHTTP1

/// Writes one response from the gateway's async work to its connection, each write waited for
/// (so a slow reader slows the upstream read, nothing piles up), failing once the client is gone.
struct GatewayResponder: Sendable {
    let channel: any Channel
    let version: HTTPVersion

    func head(_ status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers))).value()
    }

    func body(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: bytes)))).value()
    }

    func body(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer))).value()
    }

    func end() async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).value()
    }

    /// A response costd made, whole (an error, a cache hit).
    func send(_ response: GatewayResponse) async throws {
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: response.status, headers: response.headers)), promise: nil)
        for part in response.parts where !part.isEmpty {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: part))), promise: nil)
        }
        try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).value()
    }

    /// A whole response with a known length.
    func respond(_ status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) async throws {
        try await send(GatewayResponse(status: status, headers: headers, parts: [body], streamed: false))
    }
}
