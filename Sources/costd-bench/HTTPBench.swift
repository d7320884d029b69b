import CostdPOSIX
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 responses as the load generator sees them: where one ends and its status.
enum HTTPResponses {
    static let headEnd = Array("\r\n\r\n".utf8)

    /// The length of the whole response at the start of `bytes`, and its status; nil until it
    /// has all arrived.
    static func length(of bytes: ArraySlice<UInt8>) -> (Int, Int)? {
        guard let end = bytes.firstRange(of: headEnd) else { return nil }
        let head = String(decoding: bytes[bytes.startIndex..<end.lowerBound], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
        let bodyStart = end.upperBound
        if let line = lines.first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        {
            guard bytes.endIndex - bodyStart >= length else { return nil }
            return (bodyStart + length - bytes.startIndex, status)
        }
        guard lines.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) else {
            return (bodyStart - bytes.startIndex, status)
        }
        // Chunks: a hex size line, the data, CRLF; a size of 0 and a blank line end it.
        var index = bodyStart
        while true {
            guard let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) else { return nil }
            let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            let next = lineEnd.upperBound + size + 2
            guard bytes.endIndex >= next else { return nil }
            if size == 0 { return (next - bytes.startIndex, status) }
            index = next
        }
    }

    static func request(path: String, body: String, headers: [String] = []) -> [UInt8] {
        var text = "POST \(path) HTTP/1.1\r\nhost: costd\r\ncontent-type: application/json\r\nauthorization: Bearer sk-bench\r\n"
        for header in headers { text += header + "\r\n" }
        text += "content-length: \(body.utf8.count)\r\n\r\n" + body
        return Array(text.utf8)
    }

    /// Sends `request` on a new connection and reads the whole response.
    static func exchange(socket: String, _ request: [UInt8]) throws -> (status: Int, bytes: [UInt8]) {
        let fd = try UnixSocket.connect(socket)
        defer { close(fd) }
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { throw BenchError("http: short write") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let (length, status) = length(of: received[...]) { return (status, Array(received[..<length])) }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { throw BenchError("http: the server closed the connection") }
            received += buffer[..<count]
        }
    }

    /// Microseconds from sending a streamed request until the first `data:` event arrives, `count`
    /// times on one kept-alive connection (each response read to its end before the next).
    static func firstChunkMicros(socket: String, request: [UInt8], count: Int) throws -> [Double] {
        let fd = try UnixSocket.connect(socket)
        defer { close(fd) }
        var samples: [Double] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<count {
            let started = DispatchTime.now().uptimeNanoseconds
            guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { throw BenchError("http: short write") }
            var received: [UInt8] = []
            var first: UInt64? = nil
            while true {
                let readCount = read(fd, &buffer, buffer.count)
                guard readCount > 0 else { throw BenchError("http: the server closed the connection") }
                received += buffer[..<readCount]
                if first == nil, received.firstRange(of: Array("data:".utf8)) != nil { first = DispatchTime.now().uptimeNanoseconds }
                if let (_, status) = length(of: received[...]) {
                    guard status == 200 else { throw BenchError("http: status \(status): \(String(decoding: received, as: UTF8.self))") }
                    break
                }
            }
            samples.append(Double((first ?? started) - started) / 1_000)
        }
        return samples
    }
}

/// The HTTP endpoint's workloads: chat completions through costd, and the same bytes sent to the
/// fake upstream directly (the anchor).
struct HTTPWorkloads {
    let missThroughCostd: Workload
    let direct: Workload
    let hit: Workload
    let hitRequests: [[UInt8]]
    let streamed: [UInt8]

    static func body(_ index: Int, stream: Bool = false) -> String {
        #"{"model":"gpt-4o-mini","temperature":0,"max_tokens":16,"messages":[{"role":"user","content":"\#(Workloads.prompt(index))"}]\#(stream ? #","stream":true"# : "")}"#
    }

    init() {
        // A miss: the cache is bypassed, so every call is routed through to the upstream and recorded.
        let miss = HTTPResponses.request(path: "/v1/chat/completions", body: HTTPWorkloads.body(0), headers: ["x-costd-cache: off"])
        missThroughCostd = Workload(name: "http miss", framing: .http) { _, _ in [miss] }
        direct = Workload(name: "upstream", framing: .http) { _, _ in [miss] }
        let hits = (0..<Workloads.keyCount).map { HTTPResponses.request(path: "/v1/chat/completions", body: HTTPWorkloads.body($0)) }
        hitRequests = hits
        hit = Workload(name: "http hit", framing: .http) { connection, sequence in
            [hits[(connection &* 7919 &+ sequence) % Workloads.keyCount]]
        }
        streamed = HTTPResponses.request(path: "/v1/chat/completions", body: HTTPWorkloads.body(0, stream: true), headers: ["x-costd-cache: off"])
    }

    /// Asks every hit request once, so that the cache holds its answer.
    func populate(httpSocket: String) throws {
        for request in hitRequests {
            let (status, bytes) = try HTTPResponses.exchange(socket: httpSocket, request)
            guard status == 200 else { throw BenchError("populating the HTTP cache: status \(status): \(String(decoding: bytes, as: UTF8.self))") }
        }
    }
}
