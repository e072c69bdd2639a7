/// Durations counted in fixed, log-scaled buckets, so that histograms from any number of event
/// loops, nodes and minutes merge by adding counts, and percentiles are computed once, at read
/// time, from the merged counts (percentiles of parts cannot be merged).
///
/// Values are whole microseconds. Bucket 0 holds 0 µs; bucket `i ≥ 1` holds
/// [2^((i-1)/4), 2^(i/4)) µs, four buckets per doubling, each 19 % wider than the one before;
/// the last bucket also holds everything above its lower bound (about 190 s). A percentile is
/// answered with its bucket's geometric midpoint, so it is within 9.1 % (2^(1/8)) of the exact
/// nearest-rank value (below 10 µs, where the buckets are narrower than the microsecond the
/// values are counted in, within 1 µs).
///
/// Counts are `UInt32`, saturating: a bucket would need 4.29 billion samples to saturate. The
/// buckets are allocated with the first sample (`113 × 4 B`), so an unused histogram costs
/// only its empty array.
public struct LatencyHistogram: Sendable, Hashable {
    public static let bucketCount = 113
    /// Buckets per doubling of the value.
    public static let bucketsPerDoubling = 4

    /// 2^(r/4) for r = 0…3: the bounds without a math library.
    private static let quarterPowers: [Double] = [1, 1.189_207_115_002_721, 1.414_213_562_373_095_1, 1.681_792_830_507_429]
    /// 2^(1/8): from a bucket's lower bound to its geometric midpoint.
    private static let halfBucket = 1.090_507_732_665_257_7

    /// The lower bound of each bucket, in µs (bucket 0: 0).
    static let lowerBounds: [Double] = (0..<bucketCount).map { index in
        guard index > 0 else { return 0 }
        let exponent = index - 1
        return Double(sign: .plus, exponent: exponent / bucketsPerDoubling, significand: 1) * quarterPowers[exponent % bucketsPerDoubling]
    }

    /// Empty, or exactly `bucketCount` counts.
    public private(set) var counts: [UInt32] = []

    public init() {}

    /// The samples counted in all buckets.
    public var total: Int { self.counts.reduce(0) { $0 + Int($1) } }

    public var isEmpty: Bool { self.counts.isEmpty }

    /// The bucket `microseconds` is counted in: a binary search over the bounds, so a value on a
    /// bound always lands in the bucket the bound opens, whatever the floating point of a log.
    public static func bucket(of microseconds: Int64) -> Int {
        guard microseconds > 0 else { return 0 }
        let value = Double(microseconds)
        var low = 1
        var high = Self.bucketCount - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if Self.lowerBounds[middle] <= value { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// The value a percentile falling in `bucket` is answered with, in µs.
    public static func representative(of bucket: Int) -> Int64 {
        guard bucket > 0 else { return 0 }
        // The last bucket is open above: its lower bound is all that is known.
        guard bucket < Self.bucketCount - 1 else { return Int64(Self.lowerBounds[bucket].rounded()) }
        return Int64((Self.lowerBounds[bucket] * Self.halfBucket).rounded())
    }

    public mutating func record(microseconds: Int64) {
        self.add(UInt32(1), to: Self.bucket(of: microseconds))
    }

    /// Adds `count` to one bucket (decoding a stored histogram).
    public mutating func add(_ count: UInt32, to bucket: Int) {
        guard (0..<Self.bucketCount).contains(bucket), count > 0 else { return }
        if self.counts.isEmpty { self.counts = Array(repeating: 0, count: Self.bucketCount) }
        let (sum, overflow) = self.counts[bucket].addingReportingOverflow(count)
        self.counts[bucket] = overflow ? .max : sum
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for (bucket, count) in other.counts.enumerated() where count > 0 { self.add(count, to: bucket) }
    }

    /// The nearest-rank percentile (`fraction` in (0, 1]) as its bucket's representative, in µs;
    /// nil without samples.
    public func percentile(_ fraction: Double) -> Int64? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = max(1, Int((fraction * Double(total)).rounded(.up)))
        var seen = 0
        for (bucket, count) in self.counts.enumerated() {
            seen += Int(count)
            if seen >= rank { return Self.representative(of: bucket) }
        }
        return Self.representative(of: Self.bucketCount - 1)
    }
}
