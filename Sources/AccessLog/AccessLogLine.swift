import JSONText
import NIOCore
import ProxyEngine

/// One request's access-log line: a JSON object built from its `RequestRecord` as UTF-8 bytes in
/// one buffer reserved up front, turned into a string once (no encoder, no dictionary, no
/// intermediate strings for the usual ids, paths and slugs; appending bytes cost about half of
/// appending to a `String` field by field, measured with perf). Fields a request never reached
/// are left out rather than written as null.
///
/// Holds no header value and no query: the record keeps neither, so no token can reach a line.
public enum AccessLogLine {
    /// Room for a line with a full tenant path and a long path; more only grows it once.
    static let reservedBytes = 640

    public static func render(_ record: RequestRecord) -> String {
        var line: [UInt8] = []
        line.reserveCapacity(Self.reservedBytes)
        line.append(contentsOf: #"{"time":""#.utf8)
        UTCTimestamp.appendRFC3339Milliseconds(record.startedWallMicroseconds, to: &line)
        line.append(UInt8(ascii: "\""))
        Self.field("requestId", record.requestID, to: &line)
        if let traceID = record.traceID { Self.field("traceId", traceID, to: &line) }
        if let spanID = record.spanID { Self.field("spanId", spanID, to: &line) }
        if !record.method.isEmpty { Self.field("method", record.method, to: &line) }
        if let path = record.path { Self.field("path", path, to: &line) }
        if let route = record.route { Self.field("route", route, to: &line) }
        if let tenant = record.tenant {
            Self.field("oem", tenant.oem.rawValue, to: &line)
            if let partner = tenant.partner { Self.field("partner", partner.rawValue, to: &line) }
            if let customer = tenant.customer { Self.field("customer", customer.rawValue, to: &line) }
        }
        Self.field("outcome", record.outcome.rawValue, to: &line)
        if let status = record.status { Self.field("status", Int(status), to: &line) }
        if let problem = record.problem {
            Self.field("phase", problem.phase.rawValue, to: &line)
            Self.field("problem", problem.slug, to: &line)
        }
        if let cell = record.cell { Self.field("cell", cell, to: &line) }
        if let tier = record.tier { Self.field("tier", tier.rawValue, to: &line) }
        if let endpoint = record.endpoint { Self.field("endpoint", endpoint.description, to: &line) }
        if record.attempts > 0 { Self.field("attempts", record.attempts, to: &line) }
        Self.field("bytesIn", record.bytesIn, to: &line)
        Self.field("bytesOut", record.bytesOut, to: &line)
        line.append(contentsOf: #","gatewayMs":"#.utf8)
        Self.appendMilliseconds(record.gatewayTime, to: &line)
        if let upstream = record.upstreamTime {
            line.append(contentsOf: #","upstreamMs":"#.utf8)
            Self.appendMilliseconds(upstream, to: &line)
        }
        line.append(UInt8(ascii: "}"))
        return String(decoding: line, as: UTF8.self)
    }

    private static func field(_ name: String, _ value: String, to line: inout [UInt8]) {
        Self.name(name, to: &line)
        JSONText.appendQuoted(value, to: &line)
    }

    private static func field(_ name: String, _ value: Int, to line: inout [UInt8]) {
        Self.name(name, to: &line)
        Self.appendDecimal(value, to: &line)
    }

    private static func name(_ name: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: ","))
        line.append(UInt8(ascii: "\""))
        line.append(contentsOf: name.utf8)
        line.append(UInt8(ascii: "\""))
        line.append(UInt8(ascii: ":"))
    }

    /// Milliseconds with microsecond precision, as a JSON number: `12.345`, `0.007`.
    static func appendMilliseconds(_ amount: TimeAmount, to line: inout [UInt8]) {
        let microseconds = Int(max(amount.nanoseconds / 1_000, 0))
        Self.appendDecimal(microseconds / 1_000, to: &line)
        line.append(UInt8(ascii: "."))
        UTCTimestamp.append(microseconds % 1_000, digits: 3, to: &line)
    }

    /// A whole number in decimal (its string is a small one, held inline: no allocation).
    static func appendDecimal(_ value: Int, to line: inout [UInt8]) {
        line.append(contentsOf: String(value).utf8)
    }
}
