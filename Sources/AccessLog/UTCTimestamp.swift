import Quotas

/// RFC 3339 timestamps in UTC with milliseconds (`2026-12-03T07:12:00.123Z`), written without
/// Foundation's formatters: the same civil-date arithmetic as the quota calendar, so a line's
/// time and a usage record's day agree on every node whatever its time zone or locale.
enum UTCTimestamp {
    /// `microseconds` since the Unix epoch; an instant before 1970 is written as the epoch.
    static func appendRFC3339Milliseconds(_ microseconds: Int64, to text: inout String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        Self.appendRFC3339Milliseconds(microseconds, to: &bytes)
        text.append(String(decoding: bytes, as: UTF8.self))
    }

    static func appendRFC3339Milliseconds(_ microseconds: Int64, to text: inout [UInt8]) {
        let instant = max(microseconds, 0)
        let date = UTCCalendarPeriod(now: instant)
        let millisecondsIntoDay = Int(instant % 86_400_000_000 / 1_000)
        Self.append(date.year, digits: 4, to: &text)
        text.append(UInt8(ascii: "-"))
        Self.append(date.month, digits: 2, to: &text)
        text.append(UInt8(ascii: "-"))
        Self.append(date.day, digits: 2, to: &text)
        text.append(UInt8(ascii: "T"))
        Self.append(millisecondsIntoDay / 3_600_000, digits: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        Self.append(millisecondsIntoDay / 60_000 % 60, digits: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        Self.append(millisecondsIntoDay / 1_000 % 60, digits: 2, to: &text)
        text.append(UInt8(ascii: "."))
        Self.append(millisecondsIntoDay % 1_000, digits: 3, to: &text)
        text.append(UInt8(ascii: "Z"))
    }

    /// `value` (not negative) in exactly `digits` decimal digits, zero-padded.
    static func append(_ value: Int, digits: Int, to text: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<digits { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            text.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }
}
