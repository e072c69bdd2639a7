import JSONText

/// An OTLP/HTTP export request in the JSON encoding (`application/json`, OTLP spec
/// "JSON Protobuf Encoding"): ids as hex strings, enums as numbers, 64-bit integers as decimal
/// strings. Built on the exporter's own thread, never on an event loop.
public enum OTLPJSON {
    public static let contentType = "application/json"

    public static func exportRequest(_ spans: [ExportedSpan], serviceName: String, scopeVersion: String = "1") -> String {
        var out = ""
        out.reserveCapacity(256 + spans.count * 700)
        out.append("{\"resourceSpans\":[{\"resource\":{\"attributes\":[")
        Self.attribute("service.name", .string(serviceName), to: &out)
        out.append("]},\"scopeSpans\":[{\"scope\":{\"name\":\"erp-gateway\",\"version\":")
        JSONText.appendQuoted(scopeVersion, to: &out)
        out.append("},\"spans\":[")
        for (index, span) in spans.enumerated() {
            if index > 0 { out.append(",") }
            Self.span(span, to: &out)
        }
        out.append("]}]}]}")
        return out
    }

    private static func span(_ span: ExportedSpan, to out: inout String) {
        out.append("{\"traceId\":")
        JSONText.appendQuoted(span.traceID, to: &out)
        out.append(",\"spanId\":")
        JSONText.appendQuoted(span.spanID, to: &out)
        if let parent = span.parentSpanID {
            out.append(",\"parentSpanId\":")
            JSONText.appendQuoted(parent, to: &out)
        }
        out.append(",\"name\":")
        JSONText.appendQuoted(span.name, to: &out)
        out.append(",\"kind\":")
        out.append(String(span.kind.rawValue))
        out.append(",\"startTimeUnixNano\":\"")
        out.append(String(span.startNanoseconds))
        out.append("\",\"endTimeUnixNano\":\"")
        out.append(String(span.endNanoseconds))
        out.append("\",\"attributes\":[")
        for (index, attribute) in span.attributes.enumerated() {
            if index > 0 { out.append(",") }
            Self.attribute(attribute.key, attribute.value, to: &out)
        }
        out.append("]")
        if let message = span.errorMessage {
            // STATUS_CODE_ERROR
            out.append(",\"status\":{\"code\":2,\"message\":")
            JSONText.appendQuoted(message, to: &out)
            out.append("}")
        }
        out.append("}")
    }

    private static func attribute(_ key: String, _ value: ExportedSpan.Attribute, to out: inout String) {
        out.append("{\"key\":")
        JSONText.appendQuoted(key, to: &out)
        switch value {
        case .string(let text):
            out.append(",\"value\":{\"stringValue\":")
            JSONText.appendQuoted(text, to: &out)
            out.append("}}")
        case .int(let number):
            out.append(",\"value\":{\"intValue\":\"")
            out.append(String(number))
            out.append("\"}}")
        }
    }
}
