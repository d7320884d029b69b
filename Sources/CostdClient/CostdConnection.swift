import CostdCore
import CostdPOSIX

#if canImport(Glibc)
import Glibc
#endif

/// Why a call did not get a result.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// Nothing listens on the socket (or it does not exist).
    case unreachable(path: String, reason: String)
    /// The connection broke or timed out mid-call.
    case connectionLost(String)
    /// The daemon answered with something that is not a JSON-RPC answer.
    case protocolViolation(String)
    /// The daemon answered with a JSON-RPC error.
    case rpc(code: Int, message: String, data: JSONValue?)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason): "costd is not reachable at \(path): \(reason)"
        case .connectionLost(let reason): "connection to costd lost: \(reason)"
        case .protocolViolation(let reason): "unexpected answer from costd: \(reason)"
        case .rpc(let code, let message, _): "\(message) (code \(code))"
        }
    }
}

/// A blocking connection to costd: one call at a time, or many frames sent ahead and read
/// back in order (pipelining, for load tools). Used by costctl, the benchmark and the tests.
/// One thread may send while another receives (a pipelining load tool does); two threads must
/// not send, or receive, at once.
public final class CostdConnection: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    private var nextId = 1
    private var readBuffer: [UInt8] = []
    private var readOffset = 0

    /// Connects to the socket at `path`; `timeoutSeconds` bounds every read and write.
    public init(path: String, timeoutSeconds: Double? = 30) throws(ClientError) {
        self.path = path
        do {
            fd = try UnixSocket.connect(path)
        } catch {
            throw .unreachable(path: path, reason: String(cString: strerror(error.errno)))
        }
        if let timeoutSeconds {
            var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - timeoutSeconds.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Half-closes: no more requests, but answers can still be read.
    /// Bytes received and not yet read (FIONREAD): what the daemon has sent so far.
    public var unreadBytes: Int {
        var count: Int32 = 0
        guard fd >= 0, ioctl(fd, UInt(FIONREAD), &count) == 0 else { return 0 }
        return Int(count)
    }

    public func shutdownWrite() {
        if fd >= 0 { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Calls `method` and returns its result, or throws its error.
    public func call(_ method: String, _ params: JSONValue = [:]) throws(ClientError) -> JSONValue {
        let id = nextId
        nextId += 1
        let request: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        try send(request.encoded())
        let response = try receiveJSON()
        return try CostdConnection.result(of: response, id: id)
    }

    /// Extracts the result of a response, or throws its error.
    public static func result(of response: JSONValue, id: Int?) throws(ClientError) -> JSONValue {
        if let id, let answered = response["id"]?.numberValue?.int64, answered != Int64(id) {
            throw .protocolViolation("answer for id \(answered), expected \(id)")
        }
        if let error = response["error"] {
            throw .rpc(
                code: Int(error["code"]?.numberValue?.int64 ?? 0),
                message: error["message"]?.stringValue ?? "unknown error",
                data: error["data"]
            )
        }
        guard let result = response["result"] else { throw .protocolViolation("no result and no error") }
        return result
    }

    /// Sends one frame holding `body`.
    public func send(_ body: [UInt8]) throws(ClientError) {
        var frame: [UInt8] = []
        frame.reserveCapacity(body.count + 4)
        let length = UInt32(body.count)
        frame += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        frame += body
        try sendRaw(frame)
    }

    /// Sends bytes as they are (for tests of malformed input).
    public func sendRaw(_ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .connectionLost(String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    /// Waits until a frame (or the end of the connection) can be read, at most `seconds`;
    /// false when none came in that time.
    public func waitForInput(seconds: Double) -> Bool {
        if readBuffer.count > readOffset { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&descriptor, 1, Int32(max(0, min(seconds * 1000, Double(Int32.max)))))
            if ready < 0 && errno == EINTR { continue }
            return ready != 0
        }
    }

    /// Reads one frame's body; nil when the daemon closed the connection cleanly between frames.
    public func receiveFrame() throws(ClientError) -> [UInt8]? {
        guard let header = try read(exactly: 4, allowEOF: true) else { return nil }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard let body = try read(exactly: length, allowEOF: false) else {
            throw .connectionLost("closed in the middle of a frame")
        }
        return body
    }

    public func receiveJSON() throws(ClientError) -> JSONValue {
        guard let body = try receiveFrame() else { throw .connectionLost("closed by costd") }
        do {
            return try JSONParser.parse(body, limits: .unlimited)
        } catch {
            throw .protocolViolation("invalid JSON: \(error)")
        }
    }

    private func read(exactly count: Int, allowEOF: Bool) throws(ClientError) -> [UInt8]? {
        while readBuffer.count - readOffset < count {
            if readOffset > 0 {
                readBuffer.removeFirst(readOffset)
                readOffset = 0
            }
            var chunk = [UInt8](repeating: 0, count: max(65_536, count - readBuffer.count))
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .connectionLost("timed out waiting for costd") }
                throw .connectionLost(String(cString: strerror(errno)))
            }
            if received == 0 {
                if allowEOF && readBuffer.count == readOffset { return nil }
                throw .connectionLost("closed by costd")
            }
            readBuffer.append(contentsOf: chunk[0..<received])
        }
        let bytes = Array(readBuffer[readOffset..<(readOffset + count)])
        readOffset += count
        return bytes
    }
}
