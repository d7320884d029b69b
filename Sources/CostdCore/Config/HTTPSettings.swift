/// The OpenAI-compatible HTTP endpoint: where it listens, what it caches, its limits, and the
/// upstreams it forwards to. Every default is here, once.
public struct HTTPSettings: Sendable, Equatable {
    /// Whether the endpoint is served at all (`http.enabled`, `--no-http`).
    public var enabled = true
    /// The Unix socket; nil picks the default (see ``DefaultPaths/httpSocket(environment:rpcSocket:)``).
    public var socketPath: String?
    /// `HOST:PORT` of an extra TCP listener; off unless given.
    public var listen: String?
    /// Whether `listen` may be an address other than loopback.
    public var allowRemote = false
    public var cache = GatewayCachePolicy.Mode.deterministic
    /// The largest request body accepted (413 past it).
    public var maxBodyBytes = 32 << 20
    /// The largest upstream answer kept whole (non-streamed answers, and streams for the cache).
    public var maxResponseBytes = 64 << 20
    /// How long a client may take to send a whole request, head and body (seconds).
    public var requestTimeoutSeconds: Int64 = 30
    /// How long a kept-alive connection may sit idle between requests (seconds).
    public var idleTimeoutSeconds: Int64 = 300
    public var connectTimeoutMillis: Int64 = 10_000
    /// The longest silence from an upstream while it answers (a slow model streams; a dead one stops).
    public var readTimeoutMillis: Int64 = 600_000
    /// The output limit reserved against a hard budget when a request sets none.
    public var defaultMaxOutputTokens: Int64 = 4_096
    /// How long an entry stored by the endpoint lives (seconds); nil uses `cache.default_ttl`.
    public var cacheTTLSeconds: Int64?
    public var upstreams: [String: Upstream] = [
        "openai": Upstream(url: "https://api.openai.com/v1"),
        "anthropic": Upstream(url: "https://api.anthropic.com/v1", auth: .xAPIKey),
    ]

    public init() {}

    /// One provider the endpoint forwards to.
    public struct Upstream: Sendable, Equatable {
        public enum Auth: String, Sendable {
            /// `Authorization: Bearer KEY` (OpenAI and most compatible servers).
            case bearer
            /// `x-api-key: KEY` (Anthropic).
            case xAPIKey = "x-api-key"
        }

        /// The base URL, up to and including `/v1` (`https://api.openai.com/v1`); a server on a
        /// Unix socket is `http+unix://` and the socket's path, percent-encoded, as the host.
        public var url: String
        /// A file holding a key for clients that send none (systemd `LoadCredential=`).
        public var keyFile: String?
        public var auth: Auth

        public init(url: String, keyFile: String? = nil, auth: Auth = .bearer) {
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.keyFile = keyFile
            self.auth = auth
        }
    }

    /// The TCP listener's host and port, checked: loopback only unless `allow_remote`.
    public func listenAddress() throws(ConfigError) -> (host: String, port: Int)? {
        guard let listen else { return nil }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port)
        else { throw ConfigError("http.listen must be HOST:PORT, like 127.0.0.1:8787") }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard loopback || allowRemote else {
            throw ConfigError("http.listen \(listen) is not a loopback address; set http.allow_remote = true to serve other hosts")
        }
        return (host, port)
    }

    public func validate() throws(ConfigError) {
        _ = try listenAddress()
        guard maxBodyBytes >= 1024, maxResponseBytes >= 1024 else {
            throw ConfigError("http.max_body_bytes and http.max_response_bytes must be at least 1024")
        }
        guard requestTimeoutSeconds > 0, connectTimeoutMillis > 0, readTimeoutMillis > 0 else {
            throw ConfigError("http: timeouts must be positive")
        }
        for (name, upstream) in upstreams {
            // `http+unix://%2Fpath%2Fto.sock/v1`: a local server on a Unix socket.
            guard ["http://", "https://", "http+unix://", "https+unix://"].contains(where: upstream.url.hasPrefix) else {
                throw ConfigError("upstreams.\(name).url must start with http://, https:// or http+unix://, not '\(upstream.url)'")
            }
        }
    }
}
