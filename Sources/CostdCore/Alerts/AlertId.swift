/// `<unix ms>-<n>`: ordered by time, then by `n` (as Redis stream ids are).
public struct AlertId: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var millis: Int64
    public var sequence: Int64

    public init(millis: Int64, sequence: Int64) {
        self.millis = millis
        self.sequence = sequence
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let millis = Int64(parts[0]), let sequence = Int64(parts[1]), millis >= 0, sequence >= 0 else { return nil }
        self.init(millis: millis, sequence: sequence)
    }

    public var description: String { "\(millis)-\(sequence)" }

    public static func < (lhs: AlertId, rhs: AlertId) -> Bool {
        (lhs.millis, lhs.sequence) < (rhs.millis, rhs.sequence)
    }
}
