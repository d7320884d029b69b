import Crypto

/// SHA-1 in hex: how Redis names a loaded script.
enum SHA1Hex {
    static func digest(_ bytes: [UInt8]) -> String {
        Insecure.SHA1.hash(data: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
