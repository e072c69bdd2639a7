import GatewayConfig
import NIOHTTP1

/// Checks a decoded request head before anything is forwarded. The HTTP decoder already rejects
/// most malformed input; these rules close the gaps where two hops could disagree about where a
/// message ends (request smuggling) and enforce the configured limits.
enum RequestHeadValidation {
    /// How the request body is framed, once the head is known to be unambiguous.
    enum BodyFraming: Equatable {
        case none
        case contentLength(Int)
        case chunked

        /// No body bytes will follow the head.
        var isEmpty: Bool { self == .none || self == .contentLength(0) }
    }

    /// Methods forwarded whatever the route catalog says; any other method must be named by a
    /// route (`TRACE`, WebDAV's `PROPFIND`, …). A route without a method serves these only.
    static let standardMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// - Parameter catalogMethods: the methods the route catalog names (`RouteTable.namedMethods`).
    static func validate(
        _ head: RelayedRequestHead, limits: GatewaySettings.RequestLimits, catalogMethods: Set<String> = []
    ) -> Result<BodyFraming, GatewayProblem> {
        if head.uri.utf8.count > limits.maxURIBytes {
            return .failure(.uriTooLong)
        }
        // One pass over the fields for their size and the three that frame and address the
        // request (looked up by name, each lookup was a pass building an array of values).
        let fields = Fields(head.fields)
        if fields.bytes > limits.maxHeaderBytes {
            return .failure(.headerFieldsTooLarge)
        }
        // CONNECT asks for a tunnel, not a resource: the decoder stops parsing after its head (what
        // follows is the tunnel's), so it is refused here, never forwarded, whatever routes say.
        if head.method == .CONNECT || !(Self.isStandard(head.method) || catalogMethods.contains(head.method.rawValue)) {
            return .failure(.methodNotImplemented)
        }
        // Exactly one Host field, whatever the version (RFC 9112 §3.2): the raw values, since the
        // canonical-form view drops empty elements and would let `Host:` beside a real one pass.
        // An HTTP/1.0 request without one would go upstream as HTTP/1.1 without one.
        guard fields.hosts == 1, !fields.hostHasComma else {
            return .failure(.malformedRequest)
        }

        // Raw field values: the canonical-form view splits lists and drops empty elements, which
        // would let "5," or " 5" pass as a clean length.
        if fields.codings > 0 {
            // RFC 9112 §6.1: both present is a smuggling attempt; HTTP/1.0 has no chunked coding;
            // and chunked must be the only (so the final) coding for a request. An HTTP/2 head
            // carries it only as NIOHTTP2's (or the stream handler's) mark of a body framed by
            // DATA frames without a length: a client's own is a connection-specific field, which
            // NIOHTTP2 refuses before the head is made.
            guard fields.lengths == 0, head.version == .http1_1 || head.version.major == 2, fields.codings == 1,
                let coding = fields.coding, ForwardedHeaders.matches(coding, "chunked")
            else {
                return .failure(.ambiguousFraming)
            }
            return .success(.chunked)
        }
        guard let first = fields.length else {
            return .success(.none)
        }
        guard fields.lengthsAgree, let length = self.contentLength(first) else {
            return .failure(.ambiguousFraming)
        }
        if length > limits.maxRequestBodyBytes {
            return .failure(.bodyTooLarge)
        }
        return .success(.contentLength(length))
    }

    /// What `validate` reads of the fields, in one pass, in place: only a length or a coding,
    /// which few requests carry, is made a string.
    struct Fields {
        /// Bytes of the header section as sent.
        var bytes = 0
        var hosts = 0
        /// The (last) `Host` value holds a comma.
        var hostHasComma = false
        var lengths = 0
        /// The first `Content-Length` value, and whether every other one is the same text.
        var length: String?
        var lengthsAgree = true
        var codings = 0
        var coding: String?

        init(_ fields: some FieldEditing) {
            fields.forEachField { name, value in
                self.bytes += name.count + value.count + 4
                switch name.count {
                case 4 where ForwardedHeaders.matches(bytes: name, "host"):
                    self.hosts += 1
                    self.hostHasComma = value.contains(UInt8(ascii: ","))
                case 14 where ForwardedHeaders.matches(bytes: name, "content-length"):
                    self.lengths += 1
                    if let length = self.length {
                        self.lengthsAgree = self.lengthsAgree && length.utf8.elementsEqual(value)
                    } else {
                        self.length = String(decoding: value, as: UTF8.self)
                    }
                case 17 where ForwardedHeaders.matches(bytes: name, "transfer-encoding"):
                    self.codings += 1
                    if self.coding == nil { self.coding = String(decoding: value, as: UTF8.self) }
                default:
                    break
                }
            }
        }
    }

    private static func isStandard(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS: true
        default: self.standardMethods.contains(method.rawValue)
        }
    }

    /// Bytes of the header section as sent: name, ": ", value and CRLF per field.
    static func headerBytes(_ fields: some FieldEditing) -> Int {
        Fields(fields).bytes
    }

    /// Digits only: no sign, no whitespace, no list. Anything else is ambiguous framing.
    private static func contentLength(_ text: String) -> Int? {
        ForwardedHeaders.withBytes(of: text) { HTTP1Reading.decimal(UnsafeRawBufferPointer($0)) }
    }

    /// The decoder's own limit on the head, in bytes. It counts the request target and all
    /// header fields together, so it is set generously above the configured limits: the precise
    /// 414/431 decisions are made on the decoded head, and this only bounds memory for heads far
    /// beyond either limit (answered 431).
    static func decoderLimit(for limits: GatewaySettings.RequestLimits) -> Int {
        max(64 << 10, 2 * (limits.maxHeaderBytes + limits.maxURIBytes) + 1024)
    }
}

extension HTTPMethod {
    /// RFC 9110 §9.2.2: a request with one of these methods can be sent again without a different
    /// effect, so a stale pooled connection may be retried once.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE: true
        default: false
        }
    }
}
