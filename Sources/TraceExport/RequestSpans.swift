import NIOCore
import ProxyEngine

/// The spans of one request, from its record: the gateway's hop (SERVER, its id the `parent-id`
/// the upstream received, its parent the client's span), one INTERNAL span per phase the request
/// reached, and the upstream attempt (CLIENT) under `forward`.
///
/// The record marks when authorization, admission, the upstream head and the upstream's end were
/// reached, not each step between them, so the phases are as fine as those instants allow:
/// `authorize` covers decode, route, authenticate, resolve and authorize; `forward` covers
/// select-cell and every upstream attempt until the response head; `respond` streams the
/// response to the client. The phase a request stopped in ends at the request's end and, when
/// it raised the problem, carries it as its error.
public enum RequestSpans {
    public static let authorize = "authorize"
    public static let admit = "admit"
    public static let forward = "forward"
    public static let upstream = "upstream"
    public static let respond = "respond"

    public static func build(_ record: RequestRecord, ids: inout SpanIDSource) -> [ExportedSpan] {
        guard let traceID = record.traceID, let hopID = record.spanID else { return [] }
        func wall(_ instant: NIODeadline) -> Int64 {
            record.startedWallMicroseconds * 1_000 + (instant - record.started).nanoseconds
        }
        var spans: [ExportedSpan] = []
        spans.reserveCapacity(6)
        spans.append(Self.hop(record, traceID: traceID, spanID: hopID, start: wall(record.started), end: wall(record.ended)))

        // Each phase runs from the previous instant to its own; the first missing instant is
        // where the request stopped.
        let phases: [(name: String, end: NIODeadline?)] = [
            (Self.authorize, record.authorized), (Self.admit, record.admitted), (Self.forward, record.upstreamHead), (Self.respond, nil),
        ]
        var start = record.started
        var forwardID: String?
        for phase in phases {
            let end = phase.end ?? record.ended
            var span = ExportedSpan(
                traceID: traceID, spanID: ids.next(), parentSpanID: hopID, name: phase.name, kind: .internal,
                startNanoseconds: wall(start), endNanoseconds: wall(end), attributes: []
            )
            if let problem = record.problem, Self.phase(raising: problem) == phase.name { span.errorMessage = problem.slug }
            if phase.name == Self.forward { forwardID = span.spanID }
            spans.append(span)
            guard phase.end != nil else { break }
            start = end
        }
        if let upstreamStarted = record.upstreamStarted, let forwardID {
            var attributes: [(key: String, value: ExportedSpan.Attribute)] = [("erp.attempts", .int(record.attempts))]
            if let endpoint = record.endpoint {
                attributes.append(("server.address", .string(endpoint.host)))
                attributes.append(("server.port", .int(endpoint.port)))
            }
            if let cell = record.cell { attributes.append(("erp.cell", .string(cell))) }
            spans.append(ExportedSpan(
                traceID: traceID, spanID: ids.next(), parentSpanID: forwardID, name: Self.upstream, kind: .client,
                startNanoseconds: wall(upstreamStarted), endNanoseconds: wall(record.upstreamEnded ?? record.ended), attributes: attributes,
                errorMessage: record.outcome == .failed && record.upstreamEnded == nil ? (record.problem?.slug ?? "broke-off") : nil
            ))
        }
        return spans
    }

    /// The span of the phase that raised `problem`.
    static func phase(raising problem: GatewayProblem) -> String {
        switch problem.phase {
        case .decode, .route, .authenticate, .resolve, .authorize: return Self.authorize
        case .admit: return Self.admit
        case .selectCell, .forward: return Self.forward
        case .respond: return Self.respond
        }
    }

    private static func hop(_ record: RequestRecord, traceID: String, spanID: String, start: Int64, end: Int64) -> ExportedSpan {
        var attributes: [(key: String, value: ExportedSpan.Attribute)] = [
            ("http.request.method", .string(record.method)),
            ("erp.request_id", .string(record.requestID)),
            ("erp.outcome", .string(record.outcome.rawValue)),
        ]
        if let path = record.path { attributes.append(("url.path", .string(path))) }
        if let route = record.route { attributes.append(("http.route", .string(route))) }
        if let status = record.status { attributes.append(("http.response.status_code", .int(Int(status)))) }
        if let tenant = record.tenant {
            attributes.append(("erp.tenant.oem", .string(tenant.oem.rawValue)))
            if let partner = tenant.partner { attributes.append(("erp.tenant.partner", .string(partner.rawValue))) }
            if let customer = tenant.customer { attributes.append(("erp.tenant.customer", .string(customer.rawValue))) }
        }
        if let problem = record.problem {
            attributes.append(("erp.problem.type", .string(problem.type)))
            attributes.append(("erp.problem.phase", .string(problem.phase.rawValue)))
        }
        if let cell = record.cell { attributes.append(("erp.cell", .string(cell))) }
        if let tier = record.tier { attributes.append(("erp.tier", .string(tier.rawValue))) }
        attributes.append(("http.request.body.size", .int(record.bytesIn)))
        attributes.append(("http.response.body.size", .int(record.bytesOut)))
        // OTel's HTTP conventions: a server span is an error for a 5xx, not for a 4xx refusal.
        let failed = record.outcome == .failed || (record.status ?? 0) >= 500
        return ExportedSpan(
            traceID: traceID, spanID: spanID, parentSpanID: record.clientSpanID,
            name: record.route.map { "\(record.method) \($0)" } ?? record.method, kind: .server, startNanoseconds: start, endNanoseconds: end,
            attributes: attributes, errorMessage: failed ? (record.problem?.slug ?? record.outcome.rawValue) : nil
        )
    }
}

/// Span ids for the spans the gateway adds under its hop: non-zero 64-bit values as 16 lowercase
/// hex digits, from a loop-local `SplitMix64` (uniqueness within a trace is what matters).
public struct SpanIDSource: Sendable {
    private var random: SplitMix64
    private static let digits = Array("0123456789abcdef".utf8)

    public init(seed: UInt64 = .random(in: .min ... .max)) {
        self.random = SplitMix64(seed: seed)
    }

    public mutating func next() -> String {
        var value: UInt64 = 0
        while value == 0 { value = self.random.next() }
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 { buffer[index] = Self.digits[Int((value >> UInt64(60 - index * 4)) & 0xF)] }
            return 16
        }
    }
}
