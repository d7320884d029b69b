import CostdCore

/// Field names inside the day hash: `spent`, `n`, … for totals, and `<kind>\u{1F}<name>\u{1F}<field>`
/// for the breakdowns (kind `m` model, `u` user, `f` feature, `x` systemd unit). The separator
/// is a control character, which names may not contain.
public enum SpendFields {
    public static let separator = "\u{1F}"

    public static func breakdown(_ kind: String, _ name: String, _ field: String) -> String {
        kind + separator + name + separator + field
    }
}
