/// What a budget applies to: calls whose attributes all match (`{"user": "ann"}`, `{"feature":
/// "etl", "model": "gpt-4o"}`); the empty scope is the host budget's, which every call matches.
///
/// Its ``key``, the canonical JSON of the object, names the budget's spend, reservations and
/// alert flags in both stores; it never contains a control character, so it is safe between
/// the unit separators of Redis's hash fields.
public struct SpendScope: Sendable, Hashable, CustomStringConvertible {
    /// The attributes a scope may name, as the config and the protocol spell them.
    public enum Dimension: String, Sendable, CaseIterable, Comparable {
        case feature
        case model
        case unit
        case unixUser = "unix_user"
        case user

        public static func < (lhs: Dimension, rhs: Dimension) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The attributes, by dimension, in the order of their names.
    public private(set) var values: [(dimension: Dimension, value: String)]
    public let key: String

    public static let host = SpendScope([:])

    public init(_ values: [Dimension: String]) {
        self.values = values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var writer = JSONWriter()
        SpendScope.write(self.values, to: &writer)
        self.key = String(decoding: writer.bytes, as: UTF8.self)
    }

    /// The scope a ``key`` names (nil when it is not one).
    public init?(key: String) {
        guard let json = try? JSONParser.parse(Array(key.utf8)) else { return nil }
        self.init(json: json)
        guard self.key == key else { return nil }
    }

    /// The scope a JSON object names, as alerts and errors carry it (nil when it is not one).
    public init?(json: JSONValue) {
        guard case .object(let object) = json else { return nil }
        var values: [Dimension: String] = [:]
        for member in object.members {
            guard let dimension = Dimension(rawValue: member.key), let value = member.value.stringValue else { return nil }
            values[dimension] = value
        }
        self.init(values)
    }

    public var isHost: Bool { values.isEmpty }
    public var description: String { key }

    public static func == (lhs: SpendScope, rhs: SpendScope) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// Whether a call with these attributes counts toward the scope.
    public func matches(_ attributes: SpendAttributes) -> Bool {
        values.allSatisfy { attributes[$0.dimension] == $0.value }
    }

    /// The scope as a JSON value (an error's `data.scope`).
    public var json: JSONValue {
        var object = JSONObject()
        for (dimension, value) in values { object.append(dimension.rawValue, .string(value)) }
        return .object(object)
    }

    /// The scope as the JSON object alerts, errors and reports carry.
    public func write(to writer: inout JSONWriter) {
        SpendScope.write(values, to: &writer)
    }

    private static func write(_ values: [(dimension: Dimension, value: String)], to writer: inout JSONWriter) {
        writer.beginObject()
        for (dimension, value) in values {
            writer.key(dimension.rawValue)
            writer.string(value)
            writer.comma()
        }
        writer.endObject()
    }
}
