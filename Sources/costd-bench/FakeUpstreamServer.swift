import ArgumentParser
import CostdPOSIX
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A fake LLM provider for the HTTP benchmark: OpenAI's chat completions on a Unix socket,
/// answered from memory at once, so that what is measured through costd is costd. A streamed
/// answer sends its first event at once and the rest 5 ms later, so that a proxy that buffered
/// would show it in the first-chunk figure.
struct FakeUpstream: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fake-upstream", abstract: "A fake OpenAI upstream on a Unix socket (used by run).")
    @Option var socket: String
    @Option var threads: Int = 1

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        unlink(socket)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        _ = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeUpstreamHandler())
                }
            }
            .bind(unixDomainSocketPath: socket).wait()
        while true { sleep(1000) }
    }

    static let answer = Array(
        #"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"bench answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":3,"total_tokens":23}}"#.utf8)
    static let firstEvent = Array((#"data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"bench"},"finish_reason":null}]}"# + "\n\n").utf8)
    static let restEvents = Array(
        (#"data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
            + "\n\n"
            + #"data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":1,"total_tokens":21}}"#
            + "\n\ndata: [DONE]\n\n").utf8)
}

final class FakeUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var streams = false
    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            streams = false
            keepAlive = head.isKeepAlive
        case .body(let body):
            streams = streams || body.readableBytesView.firstRange(of: Array(#""stream":true"#.utf8)) != nil
        case .end:
            if streams { stream(context: context) } else { answer(context: context) }
        }
    }

    private func answer(context: ChannelHandlerContext) {
        let headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(FakeUpstream.answer.count))])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: FakeUpstream.answer)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func stream(context: ChannelHandlerContext) {
        let headers = HTTPHeaders([("content-type", "text/event-stream")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: FakeUpstream.firstEvent)))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(5)) {
            let context = bound.value
            context.write(handler.value.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: FakeUpstream.restEvents)))), promise: nil)
            context.writeAndFlush(handler.value.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
