import NIOCore
import TokenAuth

/// Wall-clock time as the data plane reads it — token lifetimes, quota windows, the context time
/// stamped upstream — injected through the loop's `ProxyEnvironment`, so that a test drives it
/// together with its event loop's virtual clock. Elapsed time (timeouts, durations, outlier
/// backoff) comes from the event loop's own `now`, virtual on an `EmbeddedEventLoop`.
struct WallClock: Sendable {
    private let read: @Sendable () -> Int64

    /// `microseconds` returns microseconds since the Unix epoch.
    init(microseconds: @escaping @Sendable () -> Int64) {
        self.read = microseconds
    }

    /// The clock the admin API and the revocation feed read too (`UnixTime`).
    static let system = WallClock(microseconds: UnixTime.nowMicroseconds)

    /// A clock that reads `epoch` (µs since the Unix epoch) now and then advances with `loop`'s
    /// own time: the virtual time of an `EmbeddedEventLoop` in tests.
    static func following(_ loop: any EventLoop, from epoch: Int64) -> WallClock {
        let start = loop.now
        return WallClock { epoch + (loop.now - start).nanoseconds / 1000 }
    }

    /// Microseconds since the Unix epoch.
    var nowMicroseconds: Int64 { self.read() }

    /// Whole seconds since the Unix epoch.
    var nowSeconds: Int64 { self.read() / 1_000_000 }
}
