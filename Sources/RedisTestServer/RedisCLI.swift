import Foundation

/// Debian's redis-cli, which the fixtures drive clusters and Sentinels with: independent of the
/// client under test.
enum RedisCLI {
    static let path = "/usr/bin/redis-cli"

    /// Runs redis-cli with `arguments`; its exit status and what it printed (stdout and stderr).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Asks `condition` every `interval` microseconds until it holds, for at most `seconds`; then
/// throws `RedisServer.Failure` with `failure`'s text (read at that moment: it may quote a log).
func waitUntil(
    within seconds: Double, every interval: useconds_t = 20_000, failure: @autoclosure () -> String, _ condition: () throws -> Bool
) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(interval)
    }
    throw RedisServer.Failure(description: failure())
}
