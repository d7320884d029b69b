/// Whether an LLM call through the HTTP endpoint is looked up in the cache and whether its
/// answer is stored: `http.cache`, the request's determinism, and the per-request headers.
///
/// | header                         | lookup | store | `x-costd-cache` |
/// | ------------------------------ | ------ | ----- | --------------- |
/// | `x-costd-cache: off`           | no     | no    | bypass          |
/// | `x-costd-cache: refresh`       | no     | yes   | refresh         |
/// | `Cache-Control: no-cache`      | no     | yes   | refresh         |
/// | `x-costd-cache: on`            | yes    | yes   | hit / miss      |
/// | `Cache-Control: no-store`      | yes    | no    | hit / miss      |
///
/// Without a header, `http.cache = "deterministic"` (the default) caches only requests with
/// `temperature` 0 or a `seed` (and embeddings), `"all"` caches every request and `"off"`
/// none; `"off"` also wins over `x-costd-cache: on`.
public struct GatewayCachePolicy: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case deterministic, all, off
    }

    public var lookup: Bool
    public var store: Bool
    /// What `x-costd-cache` says when the call was not a hit.
    public var label: String

    public static let bypass = GatewayCachePolicy(lookup: false, store: false, label: "bypass")

    public init(lookup: Bool, store: Bool, label: String) {
        self.lookup = lookup
        self.store = store
        self.label = label
    }

    public init(mode: Mode, deterministic: Bool, costdCacheHeader: String?, cacheControl: String?) {
        let directives = Set(
            (cacheControl ?? "").lowercased().split(separator: ",").map { $0.trimmingSpaces() })
        let header = costdCacheHeader?.lowercased().trimmingSpaces()
        guard mode != .off, header != "off" else {
            self = .bypass
            return
        }
        if header == "refresh" || directives.contains("no-cache") {
            self.init(lookup: false, store: !directives.contains("no-store"), label: "refresh")
            return
        }
        guard header == "on" || mode == .all || deterministic else {
            self = .bypass
            return
        }
        self.init(lookup: true, store: !directives.contains("no-store"), label: "miss")
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
