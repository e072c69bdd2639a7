/// One finished span as OTLP carries it, built after the request from its `RequestRecord`
/// (`RequestSpans`) rather than opened and closed live: the record already holds every instant,
/// so the request path pays nothing for tracing but the record itself.
public struct ExportedSpan: Sendable, Equatable {
    /// OTLP `SpanKind` values.
    public enum Kind: Int, Sendable {
        case `internal` = 1
        case server = 2
        case client = 3
    }

    public enum Attribute: Sendable, Equatable {
        case string(String)
        case int(Int)
    }

    /// 32 and 16 lowercase hex digits, as W3C Trace Context and OTLP/JSON spell them.
    public var traceID: String
    public var spanID: String
    public var parentSpanID: String?
    public var name: String
    public var kind: Kind
    /// Wall-clock nanoseconds since the Unix epoch.
    public var startNanoseconds: Int64
    public var endNanoseconds: Int64
    public var attributes: [(key: String, value: Attribute)]
    /// Set when the span ended in error (OTLP status ERROR), with a short fixed message: a
    /// problem slug, never anything a client sent.
    public var errorMessage: String?

    public static func == (lhs: ExportedSpan, rhs: ExportedSpan) -> Bool {
        lhs.traceID == rhs.traceID && lhs.spanID == rhs.spanID && lhs.parentSpanID == rhs.parentSpanID && lhs.name == rhs.name
            && lhs.kind == rhs.kind && lhs.startNanoseconds == rhs.startNanoseconds && lhs.endNanoseconds == rhs.endNanoseconds
            && lhs.errorMessage == rhs.errorMessage && lhs.attributes.elementsEqual(rhs.attributes) { $0.key == $1.key && $0.value == $1.value }
    }

    public func attribute(_ key: String) -> Attribute? {
        self.attributes.first { $0.key == key }?.value
    }
}
