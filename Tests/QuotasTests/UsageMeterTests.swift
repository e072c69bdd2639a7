import NIOCore
import Quotas
import XCTest

/// Counts written outside the admission script: refusals and 5xx answers, added up per loop and
/// flushed as one write per customer and day, each into its own field.
final class UsageMeterTests: RedisQuotaTestCase {
    func testPendingRefusalsAndErrorsLandInTheirOwnFields() throws {
        let meter = UsageMeter(redis: self.redis, retentionDays: 2)
        let (acme, contoso, start, loop) = (self.acme, self.contoso, self.start, self.loop)
        let flushed = try loop.submit {
            var refusals = PendingUsage(counting: .refused)
            var errors = PendingUsage(counting: .errors)
            for _ in 0..<3 { errors.add(oem: acme, customer: contoso, now: start) }
            refusals.add(oem: acme, customer: contoso, now: start)
            // The next UTC day is a record of its own.
            errors.add(oem: acme, customer: contoso, now: start + 9 * 3_600_000_000)
            errors.flush(to: meter, on: loop)
            refusals.flush(to: meter, on: loop)
            return errors.isEmpty && refusals.isEmpty
        }.wait()
        XCTAssertTrue(flushed)
        // The writes are fire and forget (and load their script first): read until they landed.
        var days: [UsageMeter.Day] = []
        for _ in 0..<100 {
            days = try meter.read(oem: acme, customer: contoso, days: ["20251124", "20251125"], on: loop).wait()
            if days.map(\.errors) == [3, 1] { break }
            usleep(20_000)
        }
        XCTAssertEqual(days, [
            UsageMeter.Day(day: "20251124", requests: 0, cost: 0, refused: 1, errors: 3),
            UsageMeter.Day(day: "20251125", requests: 0, cost: 0, refused: 0, errors: 1),
        ])
        let ttl = try self.redis.send(on: loop, ["TTL", UsageMeter.key(prefix: "erp", oem: self.acme, customer: self.contoso, day: "20251124")]).wait()
        // Two days after the record's day ends (`start` is 16:00 UTC).
        XCTAssertEqual(ttl.int64, 2 * 86_400 + 8 * 3_600)
    }
}
