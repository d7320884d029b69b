import ArgumentParser
import CostdCore
import CostdPOSIX
import CostdProtocol
import Foundation
import NIOCore

/// Micro-benchmarks of the pieces on the hot path, in release mode: nanoseconds per operation,
/// the median of several runs.
struct Micro: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time the hot-path pieces one by one.")

    @Option(help: "Iterations per run.") var iterations: Int = 200_000
    @Option(help: "Runs per piece (the median is printed).") var runs: Int = 5
    @Option(name: .customLong("data-dir"), help: "Where tokenizers/ is (default: $COSTD_DATA_DIR or the source tree's data/).")
    var dataDirectory: String?

    func run() throws {
        let value = "\"" + String(repeating: "x", count: 1022) + "\""
        let request = #"{"jsonrpc":"2.0","id":1,"method":"cacheGet","params":{"model":"gpt-4o-mini","prompt":"bench prompt number 17"}}"#
        var frame = ByteBuffer()
        frame.writeFrame(Array(request.utf8))
        let decoder = RPCMessageDecoder(limits: .init(), maxBatchRequests: 1000)
        let parsed = try JSONParser.parse(request)
        let prompt = parsed["params"]!["prompt"]!
        let cache = L1Cache(capacityBytes: 256 << 20)
        let key = CacheKey(model: "gpt-4o-mini", namespace: "", prompt: prompt)
        for index in 0..<1_000 {
            cache.set(CacheKey(model: "gpt-4o-mini", namespace: "", prompt: .int(index)), value: Array(value.utf8), namespace: "", expiresAt: .max, now: 0)
        }
        cache.set(key, value: Array(value.utf8), namespace: "", expiresAt: .max, now: 0)
        let prices = PriceTable.builtIn
        let usage = Usage(inputTokens: 1_234, outputTokens: 567, cachedInputTokens: 200)

        print("| piece | ns/op |")
        print("| --- | ---: |")
        measure("frame decode (4-byte header + slice)") { sink in
            var decoder = FrameDecoder(maxFrameBytes: 4 << 20)
            var buffer = frame
            sink &+= (try? decoder.decode(buffer: &buffer))??.readableBytes ?? 0
        }
        measure("request parse (frame → JSON-RPC request)") { sink in
            if case .single(.request(let request)) = decoder.decode(frame: frame) { sink &+= request.method.utf8.count }
        }
        measure("key derivation (canonical JSON + SHA-256)") { sink in
            sink &+= Int(truncatingIfNeeded: CacheKey(model: "gpt-4o-mini", namespace: "", prompt: prompt).words.0 & 1)
        }
        let sixtyFour = [UInt8](repeating: 7, count: 64)
        measure("  of which SHA-256 of 64 bytes") { sink in
            sink &+= Int(CacheKey.digestWord(sixtyFour) & 1)
        }
        measure("  of which canonical writing of the prompt") { sink in
            var writer = JSONWriter(reservingCapacity: 96)
            writer.canonical(prompt)
            sink &+= writer.bytes.count
        }
        measure("L1 lookup (hit)") { sink in
            sink &+= cache.get(key, now: 1)?.value.count ?? 0
        }
        let valueBytes = Array(value.utf8)
        measure("response encode (envelope + 1 KB value + frame)") { sink in
            var writer = JSONWriter(reservingCapacity: 1200)
            writer.beginResultResponse(id: 1)
            writer.raw("{\"hit\":true,\"value\":")
            writer.rawJSON(valueBytes)
            writer.raw(",\"layer\":\"l1\"}")
            writer.endResponse()
            var out = ByteBuffer()
            out.writeFrame(writer.bytes)
            sink &+= out.readableBytes
        }
        measure("price computation (cached input + output)") { sink in
            sink &+= Int((try? prices.cost(model: "gpt-4o", usage: usage))?.nanos ?? 0)
        }
        try tokenizer()
    }

    /// Tokenizer throughput on English prose, MB/s on one core.
    func tokenizer() throws {
        let executable = Executable.currentPath()
        let directory = dataDirectory
            ?? DefaultPaths.dataDirectory(environment: ProcessInfo.processInfo.environment, executablePath: executable) {
                FileManager.default.fileExists(atPath: $0)
            }
        let words = "the quick brown fox jumps over a lazy dog while customers ask about invoices refunds and shipping; our team answers every question within a day, and the quarterly report shows revenue growth of twelve percent".split(separator: " ")
        var prose = ""
        var state: UInt64 = 1
        while prose.utf8.count < 4 << 20 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            prose += words[Int(state >> 33) % words.count] + (state % 11 == 0 ? ". " : " ")
        }
        print("")
        print("| tokenizer | MB/s, one core (count, English prose) |")
        print("| --- | ---: |")
        for spec in EncodingSpec.all {
            guard let data = FileManager.default.contents(atPath: "\(directory)/tokenizers/\(spec.vocabularyFileName)") else {
                print("| \(spec.name) | (no vocabulary in \(directory)/tokenizers: run scripts/fetch-vocab) |")
                continue
            }
            let encoding = try BPEEncoding(spec: spec, vocabulary: Array(data), verifyHash: false)
            _ = encoding.count(String(prose.prefix(10_000)))
            var rates: [Double] = []
            for _ in 0..<max(1, runs) {
                let start = DispatchTime.now().uptimeNanoseconds
                let count = encoding.count(prose)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rates.append(Double(prose.utf8.count) / 1e6 / seconds)
                if count == 0 { print("") }
            }
            print("| \(spec.name) | \(String(format: "%.1f", rates.sorted()[rates.count / 2])) |")
        }
    }

    func measure(_ name: String, _ body: (inout Int) -> Void) {
        var sink = 0
        var results: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { body(&sink) }
            results.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations))
        }
        print("| \(name) | \(String(format: "%.0f", results.sorted()[runs / 2])) |")
        if sink == 42 { print("") }  // keeps the work observable
    }
}
