import Logging
import NIOConcurrencyHelpers

/// Every line a logger writes, kept with its level and metadata, for tests that look for what
/// must never appear in a log line (a private key) or for a line that must.
public final class CapturedLog: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: Logger.Metadata
    }

    private let entries = NIOLockedValueBox<[Entry]>([])

    public init() {}

    /// Every line rendered: level, message, then the metadata sorted by key.
    public var text: String {
        self.entries.withLockedValue { entries in
            entries.map { entry in
                "\(entry.level) \(entry.message) \(entry.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
            }.joined(separator: "\n")
        }
    }

    /// Every line as "message key=value …" (metadata sorted by key), in order.
    public var lines: [String] {
        self.entries.withLockedValue { entries in
            entries.map { ([$0.message] + $0.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ") }
        }
    }

    /// Every entry, in order.
    public var all: [Entry] { self.entries.withLockedValue { $0 } }

    /// The messages written at `level`, in order.
    public func messages(_ level: Logger.Level) -> [String] {
        self.entries.withLockedValue { $0.filter { $0.level == level }.map(\.message) }
    }

    /// The values of `key` in the lines written at `level`, in order.
    public func metadata(_ level: Logger.Level, _ key: String) -> [String] {
        self.entries.withLockedValue { $0.filter { $0.level == level }.compactMap { $0.metadata[key].map { "\($0)" } } }
    }

    public func logger(_ label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    struct Handler: LogHandler {
        let sink: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let entry = Entry(level: event.level, message: event.message.description, metadata: self.metadata.merging(event.metadata ?? [:]) { _, new in new })
            self.sink.entries.withLockedValue { $0.append(entry) }
        }
    }
}
