import CostdCore
import CostdProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import CostdServer

/// The engine on a manual clock: time passes when the test says so, not by sleeping.
@Suite("Engine clock")
struct EngineClockTests {
    final class Engine {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let engine: CostdEngine
        let directory: String
        let decoder = RPCMessageDecoder(limits: JSONParser.Limits(), maxBatchRequests: 10)

        init(clock: CostdClock, configuration: Configuration = Configuration()) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("costd-clock-\(UUID().uuidString)").path
            let logger = Logger(label: "test")
            let ledger = try SpendLedger(directory: directory, settings: LedgerSettings(), clock: clock, logger: logger)
            engine = try CostdEngine(
                rules: try Rules.load(configuration), ledger: ledger, redis: nil,
                tokenizers: Tokenizers(dataDirectory: nil, logger: logger), clock: clock, logger: logger
            )
        }

        deinit {
            engine.close()
            try? group.syncShutdownGracefully()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// Calls a method on the engine's event loop and waits for its answer.
        func call(_ method: String, _ params: String = "{}") throws -> JSONValue {
            var frame = ByteBuffer()
            frame.writeString(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#)
            let message = decoder.decode(frame: frame)
            let loop = group.next()
            let engine = self.engine
            let body = try loop.submit { () -> EventLoopFuture<[UInt8]> in
                var writer = JSONWriter()
                guard let deferred = engine.handle(message, caller: nil, on: loop, into: &writer) else {
                    return loop.makeSucceededFuture(writer.bytes)
                }
                let answer = loop.makePromise(of: [UInt8].self)
                deferred.result.whenComplete { answer.succeed(deferred.body(for: $0, logger: Logger(label: "test"))) }
                return answer.futureResult
            }.flatMap { $0 }.wait()
            return try JSONParser.parse(body)
        }
    }

    @Test func recordsAreDatedByTheEnginesClockAcrossADayBoundary() throws {
        // 2026-11-30 23:59:59.500 UTC.
        let time = ManualClock(wallMillis: 1_796_083_199_500)
        let engine = try Engine(clock: time.clock)
        let first = try engine.call("record", #"{"model":"gpt-4o","costUsd":1}"#)
        time.advance(millis: 500)
        let second = try engine.call("record", #"{"model":"gpt-4o","costUsd":2}"#)
        #expect(first["result"]?["day"]?["spentUsd"]?.money == .dollars(1))
        #expect(second["result"]?["day"]?["spentUsd"]?.money == .dollars(2), "a new day starts from zero")
        #expect(second["result"]?["month"]?["spentUsd"]?.money == .dollars(2), "and so does December")
        let november = try engine.call("report", #"{"date":"2026-11-30"}"#)
        #expect(november["result"]?["totalCostUsd"]?.money == .dollars(1))
    }

    @Test func aReservationExpiresOnTheEnginesClock() throws {
        let time = ManualClock(wallMillis: 1_796_000_000_000)
        var configuration = Configuration()
        configuration.budget.daily = .dollars(1)
        configuration.budget.hardDaily = true
        let engine = try Engine(clock: time.clock, configuration: configuration)
        let held = try engine.call("reserve", #"{"model":"gpt-4o","inputTokens":100000,"maxOutputTokens":50000,"ttl":60}"#)
        #expect(held["result"]?["amountUsd"]?.money == Money(usd: "0.75"))
        let refused = try engine.call("reserve", #"{"model":"gpt-4o","inputTokens":100000,"maxOutputTokens":50000}"#)
        #expect(refused["error"]?["code"]?.int == -32000, "$0.75 held of $1: another $0.75 does not fit")
        time.advance(millis: 60_000)
        let granted = try engine.call("reserve", #"{"model":"gpt-4o","inputTokens":100000,"maxOutputTokens":50000}"#)
        #expect(granted["result"]?["reservation"] != nil, "the first expired after its 60 s")
    }
}

extension JSONValue {
    var int: Int64? { numberValue?.int64 }
    var money: Money? { numberValue.flatMap { Money(usd: $0) } }
}
