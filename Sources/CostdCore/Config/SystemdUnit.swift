/// Reading a process's systemd unit from its control group.
public enum SystemdUnit {
    /// The unit of a process from the text of `/proc/PID/cgroup`: the innermost `.service` or
    /// `.scope` on the unified (v2) hierarchy, or on the v1 `name=systemd` one.
    ///
    /// `0::/system.slice/backup.service` → `backup.service`;
    /// `0::/user.slice/user-1000.slice/user@1000.service/app.slice/notes.service` → `notes.service`;
    /// `0::/` → nil.
    public static func fromCgroup(_ text: String) -> String? {
        var unified: [Substring] = []
        var legacy: [Substring] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty { unified.append(parts[2]) }
            if parts[1] == "name=systemd" { legacy.append(parts[2]) }
        }
        for path in unified + legacy {
            if let unit = path.split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }) {
                return String(unit)
            }
        }
        return nil
    }
}
