import Dispatch
import JSONText
import Logging
import NIOConcurrencyHelpers
import TokenAuth

#if canImport(Glibc)
import Glibc
#endif

/// The process's log output on standard error: `text` (swift-log's stream format, as before)
/// or `json` (one JSON object a line). Access-log lines are JSON objects in either format:
/// their message is written as the line itself.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    /// The handler for loggers labelled `label`, for `LoggingSystem.bootstrap`; access-log
    /// lines go to `accessLines`.
    public func handler(label: String, level: Logger.Level, accessLines: BufferedLines) -> any LogHandler {
        if label == AccessLogObserver.label {
            // Its own level: `accessLog.enabled` decides, not `--log-level`.
            return PreformattedLineHandler(output: accessLines)
        }
        switch self {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            return JSONLogHandler(label: label, level: level)
        }
    }
}

/// Writes each message as it is, as one line: for messages that are already a complete line
/// (the access log's JSON objects).
struct PreformattedLineHandler: LogHandler {
    let output: BufferedLines
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.output.append(line: event.message.description)
    }
}

/// Lines gathered and written to standard error a few KiB at a time: a `write(2)` per access
/// line was about a third of the access log's cost per request (perf, bench/profile.sh). Into a
/// pipe or a socket a write never exceeds the 4 KiB a pipe keeps whole and always ends at a
/// line's end, so lines of other writers never land inside one; into a regular file, where
/// every write lands whole at the end, up to 64 KiB at a time (the `write` calls were 1.5 % of
/// the full pipeline's samples at 4 KiB). Waiting lines are written every `flushInterval` and
/// by `flush()`, which `serve` calls before it exits.
public final class BufferedLines: @unchecked Sendable {
    /// The most one write carries: whole lines up to this many bytes (a longer line goes alone).
    let writeLimit: Int

    private let pending = NIOLockedValueBox("")
    // Set once in init, cancelled in deinit; the lines themselves are behind `pending`'s lock.
    private let timer: (any DispatchSourceTimer)?
    private let write: @Sendable (String) -> Void

    /// `flushInterval` nil: lines wait until a write fills up or `flush()`.
    public convenience init(flushInterval: DispatchTimeInterval?) {
        self.init(flushInterval: flushInterval, writeLimit: StandardError.isRegularFile ? 64 << 10 : 4 << 10, write: { StandardError.write($0) })
    }

    init(flushInterval: DispatchTimeInterval?, writeLimit: Int = 4 << 10, write: @escaping @Sendable (String) -> Void) {
        self.writeLimit = writeLimit
        self.write = write
        guard let flushInterval else {
            self.timer = nil
            return
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "erp-gateway.access-log"))
        self.timer = timer
        timer.schedule(deadline: .now() + flushInterval, repeating: flushInterval)
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
    }

    deinit {
        self.timer?.cancel()
    }

    func append(line: String) {
        self.pending.withLockedValue { pending in
            // Written under the lock: lines keep their order across event loops.
            if pending.utf8.count + line.utf8.count + 1 > self.writeLimit, !pending.isEmpty {
                self.write(pending)
                pending.removeAll(keepingCapacity: true)
            }
            pending.append(line)
            pending.append("\n")
            if pending.utf8.count >= self.writeLimit {
                self.write(pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes the lines waiting.
    public func flush() {
        self.pending.withLockedValue { pending in
            guard !pending.isEmpty else { return }
            self.write(pending)
            pending.removeAll(keepingCapacity: true)
        }
    }
}

/// Every other log line as one JSON object: `time`, `level`, `label`, `message`, and the
/// line's metadata under `metadata` (strings; nested values as their description), so that no
/// metadata key can overwrite the four fixed ones.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let wallClock: @Sendable () -> Int64

    init(label: String, level: Logger.Level, wallClock: @escaping @Sendable () -> Int64 = UnixTime.nowMicroseconds) {
        self.label = label
        self.logLevel = level
        self.wallClock = wallClock
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = self.render(event)
        line.append("\n")
        StandardError.write(line)
    }

    func render(_ event: LogEvent) -> String {
        var line = "{\"time\":\""
        line.reserveCapacity(256)
        UTCTimestamp.appendRFC3339Milliseconds(self.wallClock(), to: &line)
        line.append("\",\"level\":")
        JSONText.appendQuoted(event.level.rawValue, to: &line)
        line.append(",\"label\":")
        JSONText.appendQuoted(self.label, to: &line)
        line.append(",\"message\":")
        JSONText.appendQuoted(event.message.description, to: &line)
        var merged = self.metadata
        if let added = event.metadata { merged.merge(added) { _, new in new } }
        if !merged.isEmpty {
            line.append(",\"metadata\":{")
            for (index, key) in merged.keys.sorted().enumerated() {
                if index > 0 { line.append(",") }
                JSONText.appendQuoted(key, to: &line)
                line.append(":")
                JSONText.appendQuoted(Self.text(merged[key]!), to: &line)
            }
            line.append("}")
        }
        line.append("}")
        return line
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return convertible.description
        default: return value.description
        }
    }
}

/// Standard error, one whole line per `write(2)`: swift-log's stream handler also writes each
/// line with one call on the unbuffered `stderr`, so lines of both never interleave (a pipe
/// keeps writes of up to 4 KiB whole).
enum StandardError {
    static func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// Standard error is a regular file (not a pipe, socket or terminal).
    static var isRegularFile: Bool {
        var status = stat()
        return fstat(2, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}
