/// Parsing of the human units used in settings files: durations (`250ms`, `10s`, `2m`, `1h`) and
/// byte sizes (`512`, `16KiB`, `10MiB`, `1GiB`). Units are explicit so that a bare `30` is never
/// silently read as seconds when the author meant milliseconds.
enum Quantities {
    /// Digits only: no sign, no spaces, no fraction.
    private static func whole(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    static func duration(_ text: String) -> Duration? {
        let units: [(suffix: String, nanoseconds: Int64)] = [
            ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ]
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            // "ms" also ends in "s": only accept a number in front of the suffix.
            guard let value = self.whole(number) else { continue }
            let (total, overflow) = value.multipliedReportingOverflow(by: unit.nanoseconds)
            guard !overflow else { return nil }
            return .nanoseconds(total)
        }
        return nil
    }

    static func byteSize(_ text: String) -> Int? {
        let units: [(suffix: String, multiplier: Int)] = [
            ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1),
        ]
        if let plain = self.whole(Substring(text)) { return Int(plain) }
        for unit in units where text.hasSuffix(unit.suffix) {
            guard let value = self.whole(text.dropLast(unit.suffix.count)).map(Int.init) else { return nil }
            let (total, overflow) = value.multipliedReportingOverflow(by: unit.multiplier)
            return overflow ? nil : total
        }
        return nil
    }
}

extension Duration {
    /// Whole milliseconds, for logs and for timers that take an integer.
    /// Whole nanoseconds, saturating at `UInt64.max`; negative durations count as zero.
    public var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = self.components
        guard seconds >= 0 else { return 0 }
        let (scaled, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (total, overflowSum) = scaled.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflowSum ? .max : total
    }

    public var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
