import CostdCore
import Crypto

/// SHA-1 in hex: how Redis names a loaded script.
enum SHA1Hex {
    static func digest(_ bytes: [UInt8]) -> String {
        Hex.string(Array(Insecure.SHA1.hash(data: bytes)))
    }
}
