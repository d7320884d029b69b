import CostdCore
import CostdProtocol

/// Typed access to a request's named parameters, with JSON-RPC errors that say which
/// parameter is wrong and why. Unknown parameters are ignored, so newer clients can send
/// fields an older daemon does not know.
struct Params {
    let request: RPCRequest

    init(_ request: RPCRequest) {
        self.request = request
    }

    func value(_ key: String) -> JSONValue? {
        guard let value = request.params[key], !value.isNull else { return nil }
        return value
    }

    func require(_ key: String) throws(RPCError) -> JSONValue {
        guard let value = value(key) else { throw .invalidParams("'\(key)' is required") }
        return value
    }

    func string(_ key: String, maxLength: Int = 1024) throws(RPCError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let string) = value else {
            throw .invalidParams("'\(key)' must be a string, not \(value.typeName)")
        }
        guard string.utf8.count <= maxLength else {
            throw .invalidParams("'\(key)' is longer than \(maxLength) bytes")
        }
        return string
    }

    func requireString(_ key: String, maxLength: Int = 1024) throws(RPCError) -> String {
        guard let string = try string(key, maxLength: maxLength) else { throw .invalidParams("'\(key)' is required") }
        guard !string.isEmpty else { throw .invalidParams("'\(key)' must not be empty") }
        return string
    }

    /// A name (model, user, feature, namespace): a string of at most 256 bytes without control
    /// characters, so it can be part of a key or a field name anywhere.
    func name(_ key: String) throws(RPCError) -> String? {
        guard let name = try string(key, maxLength: 256) else { return nil }
        guard !name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .invalidParams("'\(key)' must not contain control characters")
        }
        return name
    }

    func requireName(_ key: String) throws(RPCError) -> String {
        guard let name = try name(key) else { throw .invalidParams("'\(key)' is required") }
        guard !name.isEmpty else { throw .invalidParams("'\(key)' must not be empty") }
        return name
    }

    /// A non-negative integer (JSON `12`, `12.0` and `1.2e1` all count as 12).
    func count(_ key: String, max: Int64 = 1 << 50) throws(RPCError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value, let int = number.int64 else {
            throw .invalidParams("'\(key)' must be a non-negative integer, not \(value.typeName == "number" ? "\(value.numberValue!)" : value.typeName)")
        }
        guard int >= 0, int <= max else { throw .invalidParams("'\(key)' must be between 0 and \(max)") }
        return int
    }

    func requireCount(_ key: String, max: Int64 = 1 << 50) throws(RPCError) -> Int64 {
        guard let count = try count(key, max: max) else { throw .invalidParams("'\(key)' is required") }
        return count
    }

    func bool(_ key: String) throws(RPCError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let bool) = value else { throw .invalidParams("'\(key)' must be true or false, not \(value.typeName)") }
        return bool
    }

    /// A non-negative amount of USD, read exactly from its decimal text.
    func money(_ key: String) throws(RPCError) -> Money? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value, let money = Money(usd: number) else {
            throw .invalidParams("'\(key)' must be a number of USD")
        }
        guard money.nanos >= 0 else { throw .invalidParams("'\(key)' must not be negative") }
        return money
    }

    /// A non-negative decimal, scaled to an integer by 10^`decimals` (exact).
    func decimal(_ key: String, decimals: Int) throws(RPCError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard case .number(let number) = value, let scaled = number.scaled(byPowerOfTen: decimals), scaled >= 0 else {
            throw .invalidParams("'\(key)' must be a non-negative number")
        }
        return scaled
    }

    /// The exact bytes the client sent for `key`.
    func raw(_ key: String) -> [UInt8]? {
        request.rawParam(key)
    }
}
