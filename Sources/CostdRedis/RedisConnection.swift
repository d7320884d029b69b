import CHiredis
import CostdCore

#if canImport(Glibc)
import Glibc
#endif

/// A Redis reply, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .string(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    public var bytes: [UInt8]? {
        if case .string(let bytes) = self { return bytes }
        return nil
    }

    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// A flat array of field/value pairs (HGETALL) as a dictionary.
    public var fields: [String: [UInt8]] {
        guard case .array(let elements) = self else { return [:] }
        var fields: [String: [UInt8]] = [:]
        var index = 0
        while index + 1 < elements.count {
            if let key = elements[index].text, let value = elements[index + 1].bytes { fields[key] = value }
            index += 2
        }
        return fields
    }

    /// Bytes a reply holds, to check it against the reply-size limit.
    var size: Int {
        switch self {
        case .string(let bytes): bytes.count
        case .status(let text), .error(let text): text.utf8.count
        case .integer, .null: 8
        case .array(let elements): elements.reduce(16) { $0 + $1.size }
        }
    }
}

/// A command: its arguments as binary-safe byte strings.
public typealias RedisCommand = [[UInt8]]

public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Could not connect, or the connection broke (timeouts included: hiredis's context is
    /// unusable after any error, so the connection must be made again).
    case connection(String)
    /// A reply over the configured size.
    case replyTooLarge(Int)
    /// Redis is known to be down; the call was not tried.
    case unavailable
    /// The caller's deadline passed before the command could be sent.
    case timedOut

    public var description: String {
        switch self {
        case .connection(let reason): "redis: \(reason)"
        case .replyTooLarge(let size): "redis: reply of \(size) bytes is over the limit"
        case .unavailable: "redis is unavailable"
        case .timedOut: "redis did not answer in time"
        }
    }
}

/// One hiredis context: blocking, not thread-safe. It lives on one thread (a worker of
/// ``RedisClient`` or the subscriber) and is rebuilt after any error.
final class RedisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    let endpoint: RedisEndpoint
    let connectTimeoutMillis: Int64
    let commandTimeoutMillis: Int64
    let maxReplyBytes: Int
    let name: String

    init(endpoint: RedisEndpoint, connectTimeoutMillis: Int64, commandTimeoutMillis: Int64, maxReplyBytes: Int, name: String) {
        self.endpoint = endpoint
        self.connectTimeoutMillis = connectTimeoutMillis
        self.commandTimeoutMillis = commandTimeoutMillis
        self.maxReplyBytes = maxReplyBytes
        self.name = name
    }

    deinit {
        disconnect()
    }

    var isConnected: Bool { context != nil }

    var fileDescriptor: Int32 { context?.pointee.fd ?? -1 }

    func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    static func timeval(millis: Int64) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(millis / 1000), tv_usec: Int((millis % 1000) * 1000))
    }

    /// Connects, then applies what every new connection needs: timeouts, keepalive, AUTH,
    /// SELECT and a client name.
    func connect() throws(RedisError) {
        disconnect()
        let connectTimeout = RedisConnection.timeval(millis: connectTimeoutMillis)
        let made: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case .tcp(let host, let port): made = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path): made = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let made else { throw .connection("cannot allocate a hiredis context") }
        if made.pointee.err != 0 {
            let reason = RedisConnection.errorString(made)
            redisFree(made)
            throw .connection(reason)
        }
        context = made
        if commandTimeoutMillis > 0 { redisSetTimeout(made, RedisConnection.timeval(millis: commandTimeoutMillis)) }
        if case .tcp = endpoint.address { redisEnableKeepAlive(made) }
        var setup: [RedisCommand] = []
        if let password = endpoint.password {
            if let username = endpoint.username {
                setup.append([Array("AUTH".utf8), Array(username.utf8), Array(password.utf8)])
            } else {
                setup.append([Array("AUTH".utf8), Array(password.utf8)])
            }
        }
        if endpoint.database != 0 { setup.append([Array("SELECT".utf8), Array(String(endpoint.database).utf8)]) }
        setup.append([Array("CLIENT".utf8), Array("SETNAME".utf8), Array(name.utf8)])
        let replies = try pipeline(setup)
        for reply in replies {
            if let message = reply.errorMessage, !message.contains("unknown command") {
                disconnect()
                throw .connection(message)
            }
        }
    }

    /// Sends every command, then reads every reply (one round trip for the batch).
    func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard let context else { throw .connection("not connected") }
        for command in commands {
            let status = RedisConnection.withArgv(command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw fail(context) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer? = nil
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw fail(context) }
            let reply = RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if reply.size > maxReplyBytes {
                disconnect()
                throw .replyTooLarge(reply.size)
            }
            replies.append(reply)
        }
        return replies
    }

    func command(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try pipeline([command])[0]
    }

    /// Sends a command without reading its reply (SUBSCRIBE).
    func send(_ command: RedisCommand) throws(RedisError) {
        guard let context else { throw .connection("not connected") }
        let status = RedisConnection.withArgv(command) { argc, argv, lengths in
            redisAppendCommandArgv(context, argc, argv, lengths)
        }
        guard status == REDIS_OK else { throw fail(context) }
        // Flush the output buffer by asking for nothing: redisBufferWrite until done.
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else { throw fail(context) }
        }
    }

    /// Reads one reply (a pub/sub message); nil when the read timed out with nothing received.
    func receive() throws(RedisError) -> RedisReply? {
        guard let context else { throw .connection("not connected") }
        var raw: UnsafeMutableRawPointer? = nil
        if redisGetReply(context, &raw) != REDIS_OK {
            if context.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // A read timeout: the context is unusable after it, so the caller reconnects.
                disconnect()
                return nil
            }
            throw fail(context)
        }
        guard let raw else { return nil }
        let reply = RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    private func fail(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let reason = RedisConnection.errorString(context)
        disconnect()
        return .connection(reason)
    }

    static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len)) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: value.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: value.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(convert(element)) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    /// Calls `body` with C argv/argvlen arrays pointing into `command`'s bytes.
    static func withArgv<Result>(
        _ command: RedisCommand, _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        // One contiguous copy of all arguments, so the pointers stay valid for the whole call.
        var storage: [UInt8] = []
        storage.reserveCapacity(command.reduce(0) { $0 + $1.count + 1 })
        var offsets: [Int] = []
        for argument in command {
            offsets.append(storage.count)
            storage.append(contentsOf: argument)
            storage.append(0)
        }
        let lengths = command.map(\.count)
        return storage.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(command.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}

extension RedisCommand {
    /// A command from strings and byte arrays.
    public static func make(_ parts: any RedisArgument...) -> RedisCommand {
        parts.map(\.redisBytes)
    }
}

public protocol RedisArgument {
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument {
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public var redisBytes: [UInt8] { self }
}

extension Int64: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

extension Int: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}
