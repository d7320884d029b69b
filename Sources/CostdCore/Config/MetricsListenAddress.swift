/// Where `GET /metrics` is served: `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`), or `unix:PATH`,
/// which the shipped unit's sandbox (`RestrictAddressFamilies=AF_UNIX`, `PrivateNetwork=yes`)
/// allows; Prometheus scrapes it through a local proxy or node_exporter's textfile, or any HTTP
/// client that speaks over a Unix socket (`curl --unix-socket`).
public enum MetricsListenAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init(parsing text: String) throws(ConfigError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else { throw ConfigError("metrics_listen unix:PATH needs an absolute path, not '\(path)'") }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigError("metrics_listen must be HOST:PORT (like 127.0.0.1:9464) or unix:PATH, not '\(text)'")
        }
        var host = Substring(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw ConfigError("metrics_listen needs a host, like 127.0.0.1:\(port)") }
        self = .tcp(host: String(host), port: port)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:" + path
        }
    }
}
