import Foundation
import XCTest
@testable import TokenAuth

final class UnixTimeTests: XCTestCase {
    /// Across a second's boundary, whole seconds never lag microseconds read just before them:
    /// a grant or token whose end has passed on one path has passed on every path. glibc's
    /// coarse `time()` lags for the first milliseconds of every second.
    func testSecondsNeverLagMicrosecondsReadBeforeThemAcrossASecondsBoundary() {
        // Start 20 ms before the next boundary and read until 30 ms after it.
        let start = UnixTime.nowMicroseconds()
        let boundary = (start / 1_000_000 + 1) * 1_000_000
        let wait = boundary - 20_000 - start
        if wait > 0 { usleep(UInt32(wait)) }
        var reads = 0
        var behind = 0
        while true {
            let micro = UnixTime.nowMicroseconds()
            let seconds = UnixTime.nowSeconds()
            reads += 1
            if seconds < micro / 1_000_000 { behind += 1 }
            if micro > boundary + 30_000 || reads >= 50_000_000 { break }
        }
        XCTAssertGreaterThan(reads, 1000)
        XCTAssertEqual(behind, 0, "\(behind) of \(reads) reads gave a second that had already passed")
    }
}
