import Foundation

/// Turns instants into the budget periods they belong to: days (`2026-11-29`) and months
/// (`2026-11`) in one time zone, UTC unless the config names another.
///
/// The current day's bounds are remembered, so the common case (another record today) is two
/// integer comparisons rather than a calendar computation. UTC days are plain arithmetic; only
/// a named time zone brings in Foundation's calendar (and its ICU tables, a few MB of memory).
public struct PeriodCalendar: Sendable {
    /// The zone's calendar; nil for UTC.
    private let calendar: Calendar?
    private var cachedDay: (start: Int64, end: Int64, key: String)?

    public init(timeZoneIdentifier: String?) throws(ConfigError) {
        guard let identifier = timeZoneIdentifier, identifier != "UTC", identifier != "Etc/UTC" else {
            calendar = nil
            return
        }
        guard let timeZone = TimeZone(identifier: identifier) else {
            throw ConfigError("unknown time zone '\(identifier)'")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    public static let utc = try! PeriodCalendar(timeZoneIdentifier: nil)

    /// The day key of an instant given in milliseconds since 1970.
    public mutating func dayKey(unixMillis: Int64) -> String {
        if let cachedDay, unixMillis >= cachedDay.start, unixMillis < cachedDay.end {
            return cachedDay.key
        }
        guard let calendar else {
            let millisPerDay: Int64 = 86_400_000
            let dayNumber = unixMillis >= 0 ? unixMillis / millisPerDay : (unixMillis - millisPerDay + 1) / millisPerDay
            let (year, month, day) = PeriodCalendar.civilDate(daysSince1970: dayNumber)
            let key = PeriodCalendar.dayKey(year: year, month: month, day: day)
            cachedDay = (dayNumber * millisPerDay, (dayNumber + 1) * millisPerDay, key)
            return key
        }
        let date = Date(timeIntervalSince1970: Double(unixMillis) / 1000)
        let components = calendar.dateComponents([.year, .month, .day], from: date)
        let key = PeriodCalendar.dayKey(year: components.year!, month: components.month!, day: components.day!)
        if let interval = calendar.dateInterval(of: .day, for: date) {
            cachedDay = (
                Int64((interval.start.timeIntervalSince1970 * 1000).rounded()),
                Int64((interval.end.timeIntervalSince1970 * 1000).rounded()),
                key
            )
        }
        return key
    }

    /// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`).
    static func civilDate(daysSince1970: Int64) -> (year: Int, month: Int, day: Int) {
        let z = daysSince1970 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    public static func dayKey(year: Int, month: Int, day: Int) -> String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    /// `2026-11-29` → `2026-11`.
    public static func monthKey(ofDay day: String) -> String {
        String(day.prefix(7))
    }

    /// Checks `YYYY-MM-DD` (a real date) and returns it normalised; nil when it is not one.
    public static func parseDay(_ text: String) -> String? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month)
        else { return nil }
        return dayKey(year: year, month: month, day: day)
    }

    /// Checks `YYYY-MM` and returns it; nil when it is not a month.
    public static func parseMonth(_ text: String) -> String? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, Int(parts[0]) != nil,
            let month = Int(parts[1]), (1...12).contains(month)
        else { return nil }
        return text
    }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Every day key of a month (`YYYY-MM`), in order; none when it is not a month.
    public static func daysOf(month: String) -> [String] {
        guard parseMonth(month) != nil else { return [] }
        let parts = month.split(separator: "-").compactMap { Int($0) }
        return (1...daysInMonth(year: parts[0], month: parts[1])).map { dayKey(year: parts[0], month: parts[1], day: $0) }
    }

    /// The `count` day keys ending with `day`, oldest first (for sparklines of recent spend).
    public static func days(endingAt day: String, count: Int) -> [String] {
        guard let normalized = parseDay(day) else { return [] }
        let parts = normalized.split(separator: "-").map { Int($0)! }
        var (year, month, dayOfMonth) = (parts[0], parts[1], parts[2])
        var keys: [String] = []
        for _ in 0..<count {
            keys.append(dayKey(year: year, month: month, day: dayOfMonth))
            dayOfMonth -= 1
            if dayOfMonth == 0 {
                month -= 1
                if month == 0 {
                    month = 12
                    year -= 1
                }
                dayOfMonth = daysInMonth(year: year, month: month)
            }
        }
        return keys.reversed()
    }
}
