import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Heap allocations of one gateway process, counted by the allocator shim
/// `Tests/AllocationCounter/allocation-counter.c` preloaded into it (`environment`), read from
/// the counters file the shim shares with this process. The shim is built once per test run with
/// the system C compiler (`cc`), so the suite needs nothing beyond what it builds with.
final class AllocationCounter {
    struct Counts {
        var allocations: UInt64
        var reallocations: UInt64
        var frees: UInt64
        var bytes: UInt64
    }

    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("AllocationCounter/allocation-counter.c")

    /// The shim, compiled into the tests' key directory (one per test process).
    static let library: Result<URL, Error> = Result {
        let library = TestIdentity.directory.appendingPathComponent("liballocation-counter.so")
        let (status, output) = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"), ["cc", "-shared", "-fPIC", "-O2", "-o", library.path, AllocationCounter.source.path]
        )
        guard status == 0 else { throw RawHTTPConnection.Failure.malformed("cc could not build the allocation counter: \(output)") }
        return library
    }

    let file: URL

    init() throws {
        let library = try Self.library.get()
        self.file = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-allocations-\(UUID().uuidString)")
        self.environment = ["LD_PRELOAD": library.path, "ALLOCATION_COUNTERS": self.file.path]
    }

    /// What the counted process must run with.
    let environment: [String: String]

    func read() throws -> Counts {
        let data = try Data(contentsOf: self.file)
        guard data.count >= 32 else { throw RawHTTPConnection.Failure.malformed("the allocation counters file holds \(data.count) bytes") }
        let words = data.withUnsafeBytes { bytes in (0..<4).map { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) } }
        return Counts(allocations: words[0], reallocations: words[1], frees: words[2], bytes: words[3])
    }

    /// The counts and when they were read.
    func reading() throws -> (counts: Counts, at: Date) {
        let at = Date()
        return (try self.read(), at)
    }

    /// Allocations per second while the process serves nothing: what its timers allocate. The
    /// median over `windows` windows of `seconds`, so that a rare burst in one does not count.
    func idleRate(windows: Int, of seconds: TimeInterval) throws -> Double {
        var rates: [Double] = []
        var start = try self.reading()
        for _ in 0..<windows {
            usleep(useconds_t(seconds * 1_000_000))
            let end = try self.reading()
            rates.append(Double(end.counts.allocations - start.counts.allocations) / end.at.timeIntervalSince(start.at))
            start = end
        }
        return rates.sorted()[rates.count / 2]
    }

    deinit {
        try? FileManager.default.removeItem(at: self.file)
    }
}
