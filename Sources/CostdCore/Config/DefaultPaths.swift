/// Where the socket and the state live when nobody says, shared by the daemon and its clients.
public enum DefaultPaths {
    /// `$COSTD_SOCKET`, else `$XDG_RUNTIME_DIR/costd.sock`, else `/run/costd/costd.sock`.
    public static func socket(environment: [String: String]) -> String {
        if let path = environment["COSTD_SOCKET"], !path.isEmpty { return path }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/costd.sock" }
        return "/run/costd/costd.sock"
    }

    /// The HTTP endpoint's socket: `$COSTD_HTTP_SOCKET`; else, when the RPC socket was named
    /// (`--socket`, `socket =`, `$COSTD_SOCKET`), a sibling of it (`a.sock` → `a-http.sock`), so
    /// that daemons with sockets of their own never share one; else
    /// `$XDG_RUNTIME_DIR/costd-http.sock`; else `/run/costd/http.sock`.
    public static func httpSocket(environment: [String: String], rpcSocket: String?) -> String {
        if let path = environment["COSTD_HTTP_SOCKET"], !path.isEmpty { return path }
        let named = rpcSocket ?? environment["COSTD_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        if let named {
            let stem = named.hasSuffix(".sock") ? String(named.dropLast(5)) : named
            return stem + "-http.sock"
        }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/costd-http.sock" }
        return "/run/costd/http.sock"
    }

    /// `$COSTD_DATA_DIR`, else `share/costd` beside the binary's directory (an installed costd),
    /// else `data/` of the source tree the binary was built in, else `/usr/share/costd`.
    public static func dataDirectory(environment: [String: String], executablePath: String, exists: (String) -> Bool) -> String {
        if let directory = environment["COSTD_DATA_DIR"], !directory.isEmpty { return directory }
        var components = executablePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        components.removeLast()  // the binary
        let binaryDirectory = components.joined(separator: "/")
        let installed = binaryDirectory + "/../share/costd"
        if exists(installed) { return installed }
        // A build tree: <root>/.build/<triple>/<configuration>/costd.
        if let build = components.lastIndex(of: ".build") {
            let source = components[..<build].joined(separator: "/") + "/data"
            if exists(source) { return source }
        }
        return "/usr/share/costd"
    }

    /// The config file read when `--config` is not given: `$COSTD_CONFIG`, else the first that
    /// exists of `$XDG_CONFIG_HOME/costd/costd.toml` (`~/.config/costd/costd.toml`) and
    /// `/etc/costd/costd.toml`; nil when there is none (every setting then has its default).
    public static func configFile(environment: [String: String], exists: (String) -> Bool) -> String? {
        if let path = environment["COSTD_CONFIG"], !path.isEmpty { return path }
        var candidates: [String] = []
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty {
            candidates.append(config + "/costd/costd.toml")
        } else if let home = environment["HOME"], !home.isEmpty {
            candidates.append(home + "/.config/costd/costd.toml")
        }
        candidates.append("/etc/costd/costd.toml")
        return candidates.first(where: exists)
    }

    /// `$STATE_DIRECTORY` (set by systemd), else `$XDG_STATE_HOME/costd`, else `/var/lib/costd`.
    public static func stateDirectory(environment: [String: String]) -> String {
        if let directory = environment["STATE_DIRECTORY"], !directory.isEmpty {
            // systemd may list several, separated by colons; the first is ours.
            return String(directory.split(separator: ":").first ?? Substring(directory))
        }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/costd" }
        return "/var/lib/costd"
    }
}
