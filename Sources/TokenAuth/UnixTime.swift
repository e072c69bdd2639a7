#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The wall clock that token lifetimes, support grants and revocations are judged against. The
/// data plane, the admin API and the revocation feed read it the same way, so a token refused
/// as expired on one path is never listed as active on another.
///
/// This is not glibc's `time()`. On Linux, `time()` reads the kernel's coarse clock, which
/// moves once per tick. For the first milliseconds of every second it still gives the second
/// before, while `clock_gettime(CLOCK_REALTIME)` already gives the new one: 0.3 % of all reads
/// on glibc 2.36 here (a C loop comparing the two for 3 s: 307,266 of 95,997,869 reads behind).
/// A grant whose end had passed for the data plane was still "approved" for the admin API.
public enum UnixTime {
    /// Microseconds since the Unix epoch.
    public static func nowMicroseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }

    /// Whole seconds since the Unix epoch, on the same clock as `nowMicroseconds`.
    public static func nowSeconds() -> Int64 {
        self.nowMicroseconds() / 1_000_000
    }
}
