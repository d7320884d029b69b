import CHiredis
import CostdPOSIX
import Foundation
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// How requests and answers are framed on the wire.
enum Framing {
    /// costd and the echo servers: a 4-byte big-endian length, then the body.
    case lengthPrefixed
    /// Redis's RESP, parsed by hiredis's reader.
    case resp
    /// HTTP/1.1 responses (a content length, or chunked), on a kept-alive connection.
    case http
}

/// One kind of operation: the requests it sends, one after the other (an operation of several
/// steps, like route → cacheGet → record, sends the next when the answer to the last arrives).
struct Workload: Sendable {
    var name: String
    var framing: Framing
    /// The requests of operation number `sequence` on connection `connection`, framed.
    var steps: @Sendable (_ connection: Int, _ sequence: Int) -> [[UInt8]]
}

struct LoadResult: Sendable {
    var operations: UInt64
    var seconds: Double
    var latency: Histogram<UInt64>
    var errors: UInt64

    var operationsPerSecond: Double { Double(operations) / seconds }

    func percentile(_ value: Double) -> Double {
        Double(latency.valueAtPercentile(value)) / 1_000  // ns → µs
    }
}

/// Drives a server with C connections, each with P operations in flight, from a few client
/// threads that each multiplex their connections with poll(2). The same code drives costd,
/// redis-server and the echo servers, so their figures are comparable.
enum LoadGenerator {
    static func run(
        socketPath: String, workload: Workload, connections: Int, inFlight: Int, threads: Int,
        warmup: Double, duration: Double
    ) throws -> LoadResult {
        let threadCount = max(1, min(threads, connections))
        let results = ResultBox()
        let start = DispatchTime.now().uptimeNanoseconds
        let measureFrom = start + UInt64(warmup * 1e9)
        let measureUntil = measureFrom + UInt64(duration * 1e9)
        var workers: [Thread] = []
        let group = DispatchGroup()
        for threadIndex in 0..<threadCount {
            let mine = Array(stride(from: threadIndex, to: connections, by: threadCount))
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    results.add(try drive(
                        socketPath: socketPath, workload: workload, connectionIndices: mine, inFlight: inFlight,
                        measureFrom: measureFrom, measureUntil: measureUntil
                    ))
                } catch {
                    results.fail(error)
                }
            }
            thread.stackSize = 1 << 20
            workers.append(thread)
            thread.start()
        }
        group.wait()
        if let error = results.error { throw error }
        var total = LoadResult(operations: 0, seconds: duration, latency: Histogram(highestTrackableValue: 60_000_000_000), errors: 0)
        for part in results.parts {
            total.operations += part.operations
            total.errors += part.errors
            total.latency.add(part.latency)
        }
        return total
    }

    private final class Connection {
        let fd: Int32
        var pending: [(started: UInt64, remaining: [[UInt8]])] = []
        var input: [UInt8] = []
        var inputOffset = 0
        var output: [UInt8] = []
        var sequence = 0
        let reader: UnsafeMutablePointer<redisReader>?

        init(fd: Int32, framing: Framing) {
            self.fd = fd
            reader = framing == .resp ? redisReaderCreate() : nil
        }

        deinit {
            if let reader { redisReaderFree(reader) }
            close(fd)
        }
    }

    private static func drive(
        socketPath: String, workload: Workload, connectionIndices: [Int], inFlight: Int, measureFrom: UInt64,
        measureUntil: UInt64
    ) throws -> LoadResult {
        var connections: [Connection] = []
        for _ in connectionIndices {
            connections.append(Connection(fd: try connect(socketPath), framing: workload.framing))
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        var operations: UInt64 = 0
        var errors: UInt64 = 0
        func startOperation(_ connection: Connection, index: Int) {
            var steps = workload.steps(index, connection.sequence)
            connection.sequence += 1
            let first = steps.removeFirst()
            connection.output.append(contentsOf: first)
            connection.pending.append((DispatchTime.now().uptimeNanoseconds, steps))
        }
        for (offset, connection) in connections.enumerated() {
            for _ in 0..<inFlight { startOperation(connection, index: connectionIndices[offset]) }
            try flush(connection)
        }
        var pollSet = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while DispatchTime.now().uptimeNanoseconds < measureUntil {
            let ready = poll(&pollSet, nfds_t(pollSet.count), 100)
            if ready < 0 {
                if errno == EINTR { continue }
                throw BenchError("poll: \(String(cString: strerror(errno)))")
            }
            for index in pollSet.indices where pollSet[index].revents != 0 {
                let connection = connections[index]
                let count = buffer.withUnsafeMutableBytes { read(connection.fd, $0.baseAddress, $0.count) }
                if count <= 0 { throw BenchError("the server closed a connection (\(count), \(String(cString: strerror(errno))))") }
                connection.input.append(contentsOf: buffer[0..<count])
                while let answerIsError = nextAnswer(connection, framing: workload.framing) {
                    let now = DispatchTime.now().uptimeNanoseconds
                    var slot = connection.pending.removeFirst()
                    if answerIsError { errors += 1 }
                    if slot.remaining.isEmpty {
                        if slot.started >= measureFrom && now <= measureUntil {
                            _ = histogram.record(now - slot.started)
                            operations += 1
                        }
                        startOperation(connection, index: connectionIndices[index])
                    } else {
                        // The next step's answer comes after every answer already due.
                        connection.output.append(contentsOf: slot.remaining.removeFirst())
                        connection.pending.append(slot)
                    }
                }
                if connection.inputOffset > 0 {
                    connection.input.removeFirst(connection.inputOffset)
                    connection.inputOffset = 0
                }
                try flush(connection)
            }
        }
        return LoadResult(operations: operations, seconds: Double(measureUntil - measureFrom) / 1e9, latency: histogram, errors: errors)
    }

    /// Takes one whole answer off the connection's input; returns whether it was an error, or nil
    /// when no whole answer has arrived yet.
    private static func nextAnswer(_ connection: Connection, framing: Framing) -> Bool? {
        switch framing {
        case .lengthPrefixed:
            let available = connection.input.count - connection.inputOffset
            guard available >= 4 else { return nil }
            let o = connection.inputOffset
            let length = Int(connection.input[o]) << 24 | Int(connection.input[o + 1]) << 16 | Int(connection.input[o + 2]) << 8 | Int(connection.input[o + 3])
            guard available >= 4 + length else { return nil }
            // An error answer carries `"error":` near its start; results never do at that place.
            let head = connection.input[(o + 4)..<min(o + 4 + length, o + 4 + 40)]
            let isError = head.count >= 30 && String(decoding: head, as: UTF8.self).contains("\"error\"")
            connection.inputOffset += 4 + length
            return isError
        case .http:
            guard let (length, status) = HTTPResponses.length(of: connection.input[connection.inputOffset...]) else { return nil }
            connection.inputOffset += length
            return status != 200
        case .resp:
            guard let reader = connection.reader else { return nil }
            if connection.inputOffset < connection.input.count {
                connection.input[connection.inputOffset...].withUnsafeBytes { bytes in
                    _ = redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
                }
                connection.inputOffset = connection.input.count
            }
            var reply: UnsafeMutableRawPointer? = nil
            guard redisReaderGetReply(reader, &reply) == REDIS_OK, let reply else { return nil }
            let isError = reply.assumingMemoryBound(to: redisReply.self).pointee.type == REDIS_REPLY_ERROR
            freeReplyObject(reply)
            return isError
        }
    }

    private static func flush(_ connection: Connection) throws {
        var offset = 0
        while offset < connection.output.count {
            let written = connection.output.withUnsafeBytes { write(connection.fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw BenchError("write: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        connection.output.removeAll(keepingCapacity: true)
    }

    static func connect(_ path: String) throws -> Int32 {
        try UnixSocket.connect(path)
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var parts: [LoadResult] = []
        private(set) var error: (any Error)?
        func add(_ result: LoadResult) { lock.lock(); parts.append(result); lock.unlock() }
        func fail(_ error: any Error) { lock.lock(); self.error = self.error ?? error; lock.unlock() }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Framing helpers for the workloads.
enum Requests {
    static func frame(_ json: String) -> [UInt8] {
        let body = Array(json.utf8)
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    static func resp(_ arguments: [[UInt8]]) -> [UInt8] {
        var command: UnsafeMutablePointer<CChar>? = nil
        let lengths = arguments.map(\.count)
        var storage: [UInt8] = []
        var offsets: [Int] = []
        for argument in arguments {
            offsets.append(storage.count)
            storage += argument + [0]
        }
        let length = storage.withUnsafeBufferPointer { bytes -> Int32 in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return redisFormatCommandArgv(&command, Int32(arguments.count), &argv, lengths)
        }
        defer { redisFreeCommand(command) }
        return Array(UnsafeRawBufferPointer(start: command, count: Int(length)))
    }
}
