import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `chromium`, headless, opening one page of a `PageServer` and waiting for the page to
/// post its result. The page reports with the module `PageServer.reportingModule` serves.
///
/// Each run gets its own throw-away profile. Foundation's `Process` starts the browser as the
/// leader of a new process group, which its zygote and renderers join, so everything it started
/// is stopped with it by that group's id. Crash reporting is off: its handler would leave the
/// group (it starts a session of its own) and outlive the browser.
public struct HeadlessChromium: Sendable {
    public let executable: String

    /// The browser on `PATH`, or nil when it is not installed.
    public init?() {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser"] {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) {
                    self.executable = candidate
                    return
                }
            }
        }
        return nil
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens `url` (a page of `server`) and returns the first result the page posts, or throws
    /// after `timeout` seconds with what the browser printed.
    public func open(_ url: String, resultFrom server: PageServer, timeout: Double = 20) async throws -> String {
        let already = server.postedResults.count
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        let log = profile.appendingPathExtension("log")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: profile)
            try? FileManager.default.removeItem(at: log)
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.executable)
        process.arguments = [
            "--headless", "--disable-breakpad", "--disable-crash-reporter", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--user-data-dir=\(profile.path)", url,
        ]
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer {
            Self.stopGroup(of: process)
            try? output.close()
        }

        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let results = server.postedResults
            if results.count > already { return results[already] }
            if !process.isRunning { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let printed = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw Failure(description: "the page \(url) posted no result within \(timeout) s; the browser printed:\n\(printed.suffix(4000))")
    }

    /// SIGTERM to the browser's process group, SIGKILL after two seconds if it is still there.
    static func stopGroup(of process: Process) {
        let group = process.processIdentifier
        guard group > 0 else { return }
        kill(-group, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        kill(-group, SIGKILL)  // renderers the browser did not take down with it
        process.waitUntilExit()
    }
}

extension PageServer {
    /// `GET /report.js`: `report(value)` posts `value` as JSON to `/result`; an uncaught error or
    /// rejected promise is reported as `{ "uncaught": "<message>" }`, so a broken page fails
    /// its test at once instead of timing out.
    public static let reportingModule = Page.javascript(
        """
        export async function report(value) {
          await fetch('/result', { method: 'POST', body: JSON.stringify(value) });
        }
        window.addEventListener('error', (event) => { report({ uncaught: String(event.message) }); });
        window.addEventListener('unhandledrejection', (event) => { report({ uncaught: String(event.reason) }); });
        """
    )
}
