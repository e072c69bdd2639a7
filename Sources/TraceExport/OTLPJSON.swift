import JSONText

/// An OTLP/HTTP export request in the JSON encoding (`application/json`, OTLP spec
/// "JSON Protobuf Encoding"): ids as hex strings, enums as numbers, 64-bit integers as decimal
/// strings. Built as UTF-8 bytes, the body as sent, with no string in between, on the
/// exporter's own thread, never on an event loop.
public enum OTLPJSON {
    public static let contentType = "application/json"

    public static func exportRequest(_ spans: [ExportedSpan], serviceName: String, scopeVersion: String = "1") -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + spans.count * 700)
        out.append(contentsOf: #"{"resourceSpans":[{"resource":{"attributes":["#.utf8)
        Self.attribute("service.name", .string(serviceName), to: &out)
        out.append(contentsOf: #"]},"scopeSpans":[{"scope":{"name":"erp-gateway","version":"#.utf8)
        JSONText.appendQuoted(scopeVersion, to: &out)
        out.append(contentsOf: #"},"spans":["#.utf8)
        for (index, span) in spans.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            Self.span(span, to: &out)
        }
        out.append(contentsOf: "]}]}]}".utf8)
        return out
    }

    private static func span(_ span: ExportedSpan, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"traceId":"#.utf8)
        JSONText.appendQuoted(span.traceID, to: &out)
        out.append(contentsOf: #","spanId":"#.utf8)
        JSONText.appendQuoted(span.spanID, to: &out)
        if let parent = span.parentSpanID {
            out.append(contentsOf: #","parentSpanId":"#.utf8)
            JSONText.appendQuoted(parent, to: &out)
        }
        out.append(contentsOf: #","name":"#.utf8)
        JSONText.appendQuoted(span.name, to: &out)
        out.append(contentsOf: #","kind":"#.utf8)
        out.append(contentsOf: String(span.kind.rawValue).utf8)
        out.append(contentsOf: #","startTimeUnixNano":""#.utf8)
        out.append(contentsOf: String(span.startNanoseconds).utf8)
        out.append(contentsOf: #"","endTimeUnixNano":""#.utf8)
        out.append(contentsOf: String(span.endNanoseconds).utf8)
        out.append(contentsOf: #"","attributes":["#.utf8)
        for (index, attribute) in span.attributes.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            Self.attribute(attribute.key, attribute.value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let message = span.errorMessage {
            // STATUS_CODE_ERROR
            out.append(contentsOf: #","status":{"code":2,"message":"#.utf8)
            JSONText.appendQuoted(message, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func attribute(_ key: String, _ value: ExportedSpan.Attribute, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"key":"#.utf8)
        JSONText.appendQuoted(key, to: &out)
        switch value {
        case .string(let text):
            out.append(contentsOf: #","value":{"stringValue":"#.utf8)
            JSONText.appendQuoted(text, to: &out)
            out.append(contentsOf: "}}".utf8)
        case .int(let number):
            out.append(contentsOf: #","value":{"intValue":""#.utf8)
            out.append(contentsOf: String(number).utf8)
            out.append(contentsOf: #""}}"#.utf8)
        }
    }
}
