import CHiredis
import NIOCore

/// Parses Redis replies out of the bytes a connection receives, with hiredis's `redisReader`:
/// feed it every inbound buffer, then take whole replies until it has none. It keeps a partial
/// reply between buffers, and refuses to hold more than `maxBufferedBytes` of one: hiredis 0.14
/// has no cap of its own, so a hostile or broken peer could otherwise make it buffer without end.
///
/// Not thread-safe: it belongs to one channel handler on one event loop.
final class RESPReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>
    let maxBufferedBytes: Int

    init(maxBufferedBytes: Int) {
        guard let reader = redisReaderCreate() else { fatalError("redisReaderCreate could not allocate") }
        self.reader = reader
        self.maxBufferedBytes = maxBufferedBytes
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Adds received bytes. Throws when what is buffered (an unfinished reply) is over the limit.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw .connection("reply parser: \(errorText)") }
        let buffered = reader.pointee.len - reader.pointee.pos
        if buffered > maxBufferedBytes { throw .replyTooLarge(buffered) }
    }

    /// The next whole reply, or nil when the bytes so far end inside one.
    func next() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw .connection("malformed reply: \(errorText)")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisReply(raw.assumingMemoryBound(to: redisReply.self))
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
