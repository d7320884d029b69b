/// Lower-case hexadecimal text of bytes: cache digests, namespaces in Redis keys, script SHAs.
/// One implementation, without a String per byte (it runs for every Redis cache call).
public enum Hex {
    private static let digits: StaticString = "0123456789abcdef"

    public static func string(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            let digits = Hex.digits.utf8Start
            var index = 0
            for byte in bytes {
                buffer[index] = digits[Int(byte >> 4)]
                buffer[index + 1] = digits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }
}
