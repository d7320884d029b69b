/// Why a Redis call did not get its reply.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Could not connect, or the connection broke.
    case connection(String)
    /// A reply over the configured size; the connection is dropped rather than buffer it.
    case replyTooLarge(Int)
    /// Redis is known to be down; the call was not tried.
    case unavailable
    /// The call's deadline passed before its reply came.
    case timedOut
    /// This Redis may evict spend (``RedisMemoryPolicy``): spend is not kept in it.
    case spendNotKept(String)

    public var description: String {
        switch self {
        case .connection(let reason): "redis: \(reason)"
        case .replyTooLarge(let size): "redis: reply of \(size) bytes is over the limit"
        case .unavailable: "redis is unavailable"
        case .timedOut: "redis did not answer in time"
        case .spendNotKept(let reason): "redis does not keep spend: \(reason)"
        }
    }
}
