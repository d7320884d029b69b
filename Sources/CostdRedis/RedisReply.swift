import CHiredis

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

    /// Copies a reply out of hiredis (the caller frees the original with `freeReplyObject`).
    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            self = .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len)) } ?? [])
        case REDIS_REPLY_STATUS:
            self = .status(RedisReply.text(value))
        case REDIS_REPLY_ERROR:
            self = .error(RedisReply.text(value))
        case REDIS_REPLY_INTEGER:
            self = .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(RedisReply(element)) }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func text(_ value: redisReply) -> String {
        value.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: value.len), as: UTF8.self) } ?? ""
    }
}
