import NIOCore

/// Splits a byte stream into costd frames.
///
/// Every message in both directions is one frame:
///
/// ```
/// +----------------------------+------------------------------+
/// | length N: UInt32, big end. | N bytes of UTF-8 JSON        |
/// +----------------------------+------------------------------+
/// ```
///
/// A length above `maxFrameBytes` is rejected from the 4-byte header alone, before a single
/// byte of the body is buffered, so a peer cannot make the daemon reserve memory by announcing
/// a large frame (NIO's `LengthFieldBasedFrameDecoder` has no such bound).
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public static let headerLength = 4

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length <= maxFrameBytes else {
            throw FrameDecoderError.frameTooLarge(length: Int(length), limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= Self.headerLength + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Self.headerLength)
        return buffer.readSlice(length: Int(length))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}

public enum FrameDecoderError: Error, Equatable, Sendable {
    /// The header announced more than the limit; the connection cannot be resynchronised.
    case frameTooLarge(length: Int, limit: Int)
}

extension ByteBuffer {
    /// Writes `body` as one frame: its length, then its bytes.
    public mutating func writeFrame(_ body: [UInt8]) {
        writeInteger(UInt32(body.count), endianness: .big)
        writeBytes(body)
    }
}
