import Testing

@testable import CostdServer

@Suite struct LedgerFormatTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720's check value).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // Slicing-by-8 and the byte-at-a-time tail agree at every length.
        let bytes = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in 0...bytes.count {
            #expect(CRC32C.checksum(Array(bytes[0..<length])) == reference(Array(bytes[0..<length])))
        }
    }

    func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return crc ^ 0xFFFF_FFFF
    }

    @Test func entriesAreFramedWithLengthAndChecksum() {
        var buffer: [UInt8] = []
        GroupCommitWriter.encode(Array("{}".utf8), into: &buffer)
        #expect(buffer.count == 10)
        #expect(Array(buffer[0..<4]) == [0, 0, 0, 2])
        let crc = CRC32C.checksum(Array("{}".utf8))
        #expect(Array(buffer[4..<8]) == [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
    }
}
