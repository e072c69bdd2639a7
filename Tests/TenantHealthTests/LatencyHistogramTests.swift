import TenantHealth
import XCTest

/// The buckets' layout, merging by addition, and percentiles within the documented resolution.
final class LatencyHistogramTests: XCTestCase {
    func testBucketsAreFourPerDoublingAndABoundOpensItsBucket() {
        XCTAssertEqual(LatencyHistogram.bucket(of: 0), 0)
        XCTAssertEqual(LatencyHistogram.bucket(of: -5), 0, "a clock step backwards counts as nothing, not as a crash")
        XCTAssertEqual(LatencyHistogram.bucket(of: 1), 1)
        XCTAssertEqual(LatencyHistogram.bucket(of: 2), 5)
        XCTAssertEqual(LatencyHistogram.bucket(of: 3), 7, "2^(6/4) = 2.83 ≤ 3 < 2^(7/4) = 3.36")
        XCTAssertEqual(LatencyHistogram.bucket(of: 1024), 41)
        XCTAssertEqual(LatencyHistogram.bucket(of: 1023), 40)
        XCTAssertEqual(LatencyHistogram.bucket(of: 1_000_000), 80, "2^(79/4) = 869k ≤ 1 s < 2^(80/4) = 1.05 M")
        XCTAssertEqual(LatencyHistogram.bucket(of: .max), LatencyHistogram.bucketCount - 1, "everything beyond lands in the last bucket")
        // Monotonic over a wide range: a longer time never lands in an earlier bucket.
        var previous = 0
        var value: Int64 = 1
        while value < 400_000_000 {
            let bucket = LatencyHistogram.bucket(of: value)
            XCTAssertGreaterThanOrEqual(bucket, previous, "\(value)")
            previous = bucket
            value += max(1, value / 97)
        }
    }

    func testMergingAddsCountsSoPartsGiveTheWholesPercentiles() {
        var samples: [Int64] = []
        var state: UInt64 = 42
        for _ in 0..<5_000 {
            // A fixed pseudo-random spread from 1 µs to about 1 s.
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            samples.append(Int64(1 << (state >> 59 % 20)) + Int64(state >> 40 % 997))
        }
        var whole = LatencyHistogram()
        var parts = [LatencyHistogram](repeating: LatencyHistogram(), count: 3)
        for (index, sample) in samples.enumerated() {
            whole.record(microseconds: sample)
            parts[index % 3].record(microseconds: sample)
        }
        var merged = LatencyHistogram()
        for part in parts.reversed() { merged.merge(part) }
        XCTAssertEqual(merged, whole)
        XCTAssertEqual(merged.total, samples.count)
        XCTAssertEqual(merged.percentile(0.5), whole.percentile(0.5))
        XCTAssertEqual(merged.percentile(0.99), whole.percentile(0.99))
    }

    func testAPercentileIsWithinTheResolutionOfTheExactNearestRank() {
        let sorted: [Int64] = (1...1_000).map { Int64($0) * 37 }  // 37 µs … 37 ms
        var histogram = LatencyHistogram()
        for value in sorted.reversed() { histogram.record(microseconds: value) }
        for fraction in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let exact = Double(sorted[Int((fraction * Double(sorted.count)).rounded(.up)) - 1])
            let answered = Double(histogram.percentile(fraction)!)
            XCTAssertLessThanOrEqual(abs(answered - exact) / exact, 0.0906, "p\(fraction): \(answered) for \(exact)")
        }
        XCTAssertNil(LatencyHistogram().percentile(0.5), "no samples, no percentile")
    }

    func testPercentilesOfAKnownSplit() {
        var histogram = LatencyHistogram()
        for _ in 0..<98 { histogram.record(microseconds: 100) }
        for _ in 0..<2 { histogram.record(microseconds: 10_000) }
        // 100 µs is in [2^(26/4), 2^(27/4)) = [90.5, 107.6): answered 98.7; 10 ms in
        // [2^(53/4), 2^(54/4)) = [9742, 11585): answered 10624.
        XCTAssertEqual(histogram.percentile(0.5), 99)
        XCTAssertEqual(histogram.percentile(0.98), 99, "the 98th of 100 is still 100 µs")
        XCTAssertEqual(histogram.percentile(0.99), 10_624)
    }

    func testCountsSaturateInsteadOfWrapping() {
        var histogram = LatencyHistogram()
        histogram.add(.max - 1, to: 3)
        histogram.add(5, to: 3)
        XCTAssertEqual(histogram.counts[3], .max)
        histogram.add(7, to: LatencyHistogram.bucketCount)
        histogram.add(7, to: -1)
        XCTAssertEqual(histogram.total, Int(UInt32.max), "buckets out of range are ignored")
    }
}
