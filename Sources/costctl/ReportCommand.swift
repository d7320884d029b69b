import ArgumentParser
import CostdClient
import CostdCore
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show spend, budgets, cache hit rate and savings."
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "The day (YYYY-MM-DD); default today.") var date: String?
    @Option(help: "day or month.") var period: String = "day"
    @Flag(help: "Refresh the report in place every --interval seconds.") var watch = false
    @Option(help: "Seconds between refreshes with --watch.") var interval: Double = 2
    @Option(help: "Write a self-contained HTML page with the same figures to this file.") var html: String?

    func fetch(_ connection: CostdConnection) throws -> JSONValue {
        var params = JSONObject()
        if let date { params.append("date", .string(date)) }
        params.append("period", .string(period))
        params.append("days", 30)
        return try connection.call("report", .object(params))
    }

    func run() throws {
        let connection = try options.connect()
        if let html {
            let report = try fetch(connection)
            let page = HTMLReport.render(report)
            guard FileManager.default.createFile(atPath: html, contents: Data(page.utf8)) else {
                throw ValidationError("cannot write \(html)")
            }
            print("wrote \(html)")
            return
        }
        let style = TerminalStyle.detect()
        if !watch {
            let report = try fetch(connection)
            print(options.json ? report.jsonString : TerminalReport.render(report, style: style), terminator: options.json ? "\n" : "")
            return
        }
        while true {
            let report = try fetch(connection)
            let text = options.json ? report.jsonString + "\n" : TerminalReport.render(report, style: style)
            // Home the cursor and clear below, so the report refreshes in place without flicker.
            print("\u{1B}[H\u{1B}[J" + text, terminator: "")
            fflush(nil)
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

/// Colours and box characters when writing to a terminal, plain text otherwise.
struct TerminalStyle {
    var color: Bool
    var width: Int

    static func detect() -> TerminalStyle {
        let environment = ProcessInfo.processInfo.environment
        let tty = isatty(STDOUT_FILENO) == 1
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        var width = 80
        var size = winsize()
        if tty, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 {
            width = Int(size.ws_col)
        } else if let columns = environment["COLUMNS"].flatMap(Int.init), columns > 20 {
            width = columns
        }
        return TerminalStyle(color: tty && !noColor && environment["TERM"] != "dumb", width: min(width, 120))
    }

    func paint(_ text: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    func bold(_ text: String) -> String { paint(text, "1") }
    func dim(_ text: String) -> String { paint(text, "2") }
    func green(_ text: String) -> String { paint(text, "32") }
    func yellow(_ text: String) -> String { paint(text, "33") }
    func red(_ text: String) -> String { paint(text, "31") }
    func cyan(_ text: String) -> String { paint(text, "36") }
}

enum Format {
    /// Dollars for people: cents for large amounts, more digits for small ones.
    static func usd(_ money: Money) -> String {
        let dollars = money.dollars
        let magnitude = abs(dollars)
        if magnitude >= 100 { return String(format: "%.2f", dollars) }
        if magnitude >= 0.01 || magnitude == 0 {
            var text = String(format: "%.4f", dollars)
            while text.hasSuffix("0"), let dot = text.firstIndex(of: "."), text.distance(from: dot, to: text.endIndex) > 3 {
                text.removeLast()
            }
            return text
        }
        return String(format: "%.6f", dollars)
    }

    /// `$1.25`, `-$0.0025`: the sign goes before the dollar sign.
    static func usd(_ value: JSONValue?) -> String {
        guard let number = value?.numberValue, let money = Money(usd: number) else { return "-" }
        return money.nanos < 0 ? "-$" + usd(Money(nanos: -money.nanos)) : "$" + usd(money)
    }

    static func calls(_ value: JSONValue?) -> String {
        let count = value?.numberValue?.int64 ?? 0
        return count == 1 ? "1 call" : "\(Format.count(value)) calls"
    }

    /// A name cut to `width` characters, with an ellipsis when it was longer.
    static func truncated(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }

    static func percent(_ fraction: Double) -> String {
        String(format: "%.1f%%", fraction * 100)
    }

    static func count(_ value: JSONValue?) -> String {
        guard let int = value?.numberValue?.int64 else { return "0" }
        var digits = Array(String(int.magnitude))
        var index = digits.count - 3
        while index > 0 {
            digits.insert(",", at: index)
            index -= 3
        }
        return (int < 0 ? "-" : "") + String(digits)
    }

    static func dollars(_ value: JSONValue?) -> Double {
        value?.numberValue?.double ?? 0
    }

    /// A bar of `width` cells for `fraction`, with eighth-cell resolution.
    static func bar(_ fraction: Double, width: Int) -> String {
        let clamped = max(0, min(1, fraction.isFinite ? fraction : 0))
        let eighths = Int((clamped * Double(width * 8)).rounded())
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var bar = String(repeating: "█", count: eighths / 8) + partials[eighths % 8]
        bar += String(repeating: " ", count: max(0, width - bar.count))
        return bar
    }

    static func sparkline(_ values: [Double]) -> String {
        let ticks = Array("▁▂▃▄▅▆▇█")
        guard let maximum = values.max(), maximum > 0 else { return String(repeating: "▁", count: values.count) }
        return String(values.map { ticks[min(7, Int(($0 / maximum) * 7.999))] })
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }

    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

/// The report as a terminal page: totals, budget bar, breakdowns as bars, cache, savings and a
/// 30-day sparkline.
enum TerminalReport {
    static func render(_ report: JSONValue, style: TerminalStyle) -> String {
        var lines: [String] = []
        let period = report["period"]?.stringValue ?? "day"
        let key = report["periodKey"]?.stringValue ?? report["date"]?.stringValue ?? ""
        lines.append(style.bold("costd spend report") + style.dim("  \(period) \(key)"))
        lines.append("")
        let spent = Format.dollars(report["totalCostUsd"])
                lines.append("  Spent      " + style.bold(Format.usd(report["totalCostUsd"])) + style.dim("  in \(Format.calls(report["requests"]))"))
        let barWidth = max(10, min(40, style.width - 40))
        if let budget = report["budgetUsd"]?.numberValue?.double, budget > 0 {
            let fraction = spent / budget
            let bar = Format.bar(fraction, width: barWidth)
            let painted = fraction >= 1 ? style.red(bar) : fraction >= 0.8 ? style.yellow(bar) : style.green(bar)
            lines.append("  Budget     [\(painted)] \(Format.percent(fraction)) of \(Format.usd(report["budgetUsd"]))")
            lines.append("  Remaining  " + Format.usd(report["remainingUsd"]))
        } else {
            lines.append("  Budget     " + style.dim("none set"))
        }
        let cache = report["cache"]
        let hitRate = cache?["hitRate"]?.numberValue?.double ?? 0
        lines.append("")
        lines.append(style.bold("Cache"))
        lines.append(
            "  Hit rate   [\(style.cyan(Format.bar(hitRate, width: barWidth)))] \(Format.percent(hitRate))"
                + style.dim("  \(Format.count(cache?["hits"])) hits, \(Format.count(cache?["misses"])) misses")
        )
        lines.append(
            "  Layers     L1 \(Format.count(cache?["l1Hits"]))  L2 \(Format.count(cache?["l2Hits"]))  fill \(Format.count(cache?["fillHits"]))"
        )
        if let savings = report["savings"] {
            lines.append("")
            lines.append(style.bold("Savings"))
            lines.append("  Cache      " + style.green(Format.usd(savings["cacheUsd"])) + style.dim("  (\(Format.count(report["cachedRequests"])) calls avoided)"))
            lines.append("  Routing    " + style.green(Format.usd(savings["routingUsd"])) + style.dim("  (against \(savings["baselineModel"]?.stringValue ?? "baseline"))"))
            lines.append("  Total      " + style.bold(style.green(Format.usd(savings["totalUsd"]))))
        }
        for (title, field) in [("By model", "byModel"), ("By user", "byUser"), ("By feature", "byFeature"), ("By service", "byUnit")] {
            guard let members = report[field]?.objectValue?.members, !members.isEmpty else { continue }
            lines.append("")
            lines.append(style.bold(title))
            let maximum = members.map { Format.dollars($0.value["costUsd"]) }.max() ?? 0
            let nameWidth = min(32, max(8, members.map(\.key.count).max() ?? 8))
            for member in members.prefix(10) {
                let cost = Format.dollars(member.value["costUsd"])
                let fraction = maximum > 0 ? cost / maximum : 0
                let share = spent > 0 ? Format.percent(cost / spent) : "-"
                lines.append(
                    "  \(Format.pad(Format.truncated(member.key, nameWidth), nameWidth)) \(style.cyan(Format.bar(fraction, width: barWidth / 2))) "
                        + Format.padLeft(Format.usd(member.value["costUsd"]), 12)
                        + style.dim(Format.padLeft(share, 8) + "  \(Format.calls(member.value["requests"]))")
                )
            }
            if members.count > 10 { lines.append(style.dim("  … and \(members.count - 10) more")) }
        }
        if let daily = report["daily"]?.arrayValue, !daily.isEmpty {
            let values = daily.map { Format.dollars($0["costUsd"]) }
            let first = daily.first?["date"]?.stringValue ?? ""
            let last = daily.last?["date"]?.stringValue ?? ""
            lines.append("")
            lines.append(style.bold("Last \(daily.count) days") + style.dim("  \(first) … \(last)"))
            lines.append("  " + style.cyan(Format.sparkline(values)) + style.dim("  max $\(Format.usd(Money(nanos: Int64((values.max() ?? 0) * 1e9))))/day"))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
