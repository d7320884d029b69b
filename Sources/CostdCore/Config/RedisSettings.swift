/// Where Redis is: `redis://[[user]:password@]host[:port][/db]` or `unix:///path/redis.sock?db=N`.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var database: Int
    public var username: String?
    public var password: String?

    public init(address: Address, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.address = address
        self.database = database
        self.username = username
        self.password = password
    }

    public init(url: String) throws(ConfigError) {
        if url.hasPrefix("unix://") {
            let rest = String(url.dropFirst("unix://".count))
            let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let path = String(parts[0])
            guard path.hasPrefix("/") else { throw ConfigError("redis URL \(url): the socket path must be absolute") }
            var database = 0
            if parts.count == 2 {
                for pair in parts[1].split(separator: "&") {
                    let keyValue = pair.split(separator: "=", maxSplits: 1)
                    guard keyValue.count == 2 else { throw ConfigError("redis URL \(url): bad query '\(pair)'") }
                    switch keyValue[0] {
                    case "db":
                        guard let value = Int(keyValue[1]), value >= 0 else { throw ConfigError("redis URL \(url): bad db") }
                        database = value
                    default:
                        throw ConfigError("redis URL \(url): unknown parameter '\(keyValue[0])' (only db; give the password with --redis-password-file or $COSTD_REDIS_PASSWORD)")
                    }
                }
            }
            self.init(address: .unix(path: path), database: database)
            return
        }
        guard url.hasPrefix("redis://") else {
            throw ConfigError("redis URL \(url) must start with redis:// or unix://")
        }
        var rest = Substring(url.dropFirst("redis://".count))
        var username: String? = nil
        var password: String? = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let value = Int(path), value >= 0 else { throw ConfigError("redis URL \(url): bad database number") }
                database = value
            }
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port = 6379
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                throw ConfigError("redis URL \(url): bad port")
            }
            port = value
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ConfigError("redis URL \(url): no host") }
        self.init(address: .tcp(host: host, port: port), database: database, username: username, password: password)
    }

    /// The endpoint without its password, for logs.
    public var description: String {
        switch address {
        case .tcp(let host, let port): "redis://\(host):\(port)/\(database)"
        case .unix(let path): "unix://\(path)?db=\(database)"
        }
    }
}

/// How costd uses Redis, when it does. Every default is here.
public struct RedisSettings: Sendable, Equatable {
    public var endpoint: RedisEndpoint
    /// A Redis of its own for spend (`redis.spend_url`), so that an evicting cache Redis and a
    /// durable spend Redis can sit side by side; nil keeps spend in `endpoint`'s Redis.
    public var spendEndpoint: RedisEndpoint?
    /// Prefix of every key and channel costd uses; several fleets can share one Redis.
    public var keyPrefix = "costd:"
    /// Connections for commands, spread over the event loops; 0 means one per event loop (each
    /// call then goes out on its own loop's connection). The subscriber has one more.
    public var poolSize = 0
    public var connectTimeoutMillis: Int64 = 500
    /// A cache call never waits longer than this on Redis; it answers from L1 (or misses).
    public var cacheTimeoutMillis: Int64 = 50
    /// A record never waits longer than this on Redis; it goes to the local backlog.
    public var recordTimeoutMillis: Int64 = 1_000
    /// How long a record id is remembered in Redis (exactly-once window; also bounds backlog replay).
    public var recordIdWindowSeconds: Int64 = 7 * 86_400
    /// Expiry of per-day spend keys (history for reports), and of per-month keys.
    public var dayKeyTTLDays: Int64 = 400
    public var monthKeyTTLDays: Int64 = 800
    /// The largest reply accepted from Redis.
    public var maxReplyBytes = 64 << 20

    public init(endpoint: RedisEndpoint) {
        self.endpoint = endpoint
    }

    /// These settings with spend's Redis as the endpoint (the same Redis without `spend_url`).
    public var forSpend: RedisSettings {
        var settings = self
        settings.endpoint = spendEndpoint ?? endpoint
        settings.spendEndpoint = nil
        return settings
    }

    public func validate() throws(ConfigError) {
        guard poolSize >= 0, poolSize <= 64 else { throw ConfigError("redis.pool_size must be between 0 (one per event loop) and 64") }
        guard cacheTimeoutMillis > 0, recordTimeoutMillis > 0, connectTimeoutMillis > 0 else {
            throw ConfigError("redis timeouts must be positive")
        }
        guard !keyPrefix.contains("{"), !keyPrefix.contains("}"), !keyPrefix.contains("*") else {
            throw ConfigError("redis.key_prefix must not contain '{', '}' or '*'")
        }
        guard recordIdWindowSeconds > 0, dayKeyTTLDays >= 1, monthKeyTTLDays >= 1 else {
            throw ConfigError("redis: TTLs must be positive")
        }
    }
}
