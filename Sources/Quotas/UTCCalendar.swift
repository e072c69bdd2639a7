/// The UTC calendar day and month containing an instant, and how long until each ends.
///
/// Pure arithmetic on the proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`),
/// so that a day key is the same string on every gateway node whatever its time zone or
/// locale, and tests can place `now` on a month end or a leap day without a `Calendar`.
public struct UTCCalendarPeriod: Sendable, Hashable {
    public let year: Int
    /// 1...12
    public let month: Int
    /// 1...31
    public let day: Int
    /// Microseconds from the instant to the next UTC midnight (1...86_400_000_000).
    public let untilDayEnd: Int64
    /// Microseconds from the instant to the first midnight of the next UTC month.
    public let untilMonthEnd: Int64
    /// 28...31
    public let daysInMonth: Int

    /// `yyyymmdd`, zero-padded.
    public var dayStamp: String { Self.pad(year, 4) + Self.pad(month, 2) + Self.pad(day, 2) }
    /// `yyyymm`, zero-padded.
    public var monthStamp: String { Self.pad(year, 4) + Self.pad(month, 2) }

    static let microsecondsPerDay: Int64 = 86_400_000_000

    /// Both instants fall on the same UTC day (and so in the same month): the same day and
    /// month keys.
    public func isSameDay(as other: UTCCalendarPeriod) -> Bool {
        self.day == other.day && self.month == other.month && self.year == other.year
    }

    /// - Parameter now: microseconds since 1970-01-01T00:00:00Z, not negative.
    public init(now: Int64) {
        precondition(now >= 0, "instants before 1970 are not quota time")
        let days = now / Self.microsecondsPerDay
        let intoDay = now % Self.microsecondsPerDay
        let (year, month, day) = Self.civil(fromDays: days)
        self.year = year
        self.month = month
        self.day = day
        self.daysInMonth = Self.daysIn(month: month, year: year)
        self.untilDayEnd = Self.microsecondsPerDay - intoDay
        self.untilMonthEnd = Int64(self.daysInMonth - day) * Self.microsecondsPerDay + self.untilDayEnd
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (not negative) → (year, month, day).
    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
