import Hierarchy
import JSONMasking
import NIOCore
import NIOHTTP1

/// The masking of one response, as a value: the upstream's head, body parts and end in,
/// decisions out. A response to mask is held whole (up to `maxBodyBytes`), its masked values
/// replaced by `JSONMasker`, and sent with its new length; anything that cannot be masked is
/// refused with a problem of the respond phase — never passed on unmasked, except a non-JSON
/// response where every rule that masks the caller says `nonJSON: pass` (never for a support
/// session).
///
/// Only requests whose route masks fields for their caller get one (`RequestPhases.responseMasking`):
/// every other response streams as it always did, without a look at any of this.
struct ResponseMasking {
    let mask: FieldMask
    let maxBodyBytes: Int
    /// The upstream's head, held with the body until the end.
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?

    init(mask: FieldMask, maxBodyBytes: Int) {
        self.mask = mask
        self.maxBodyBytes = maxBodyBytes
    }

    enum HeadDecision: Equatable {
        /// Nothing to mask (no body, or a non-JSON body the rules let pass): relay as usual.
        case relay
        /// The answer to a HEAD whose GET would be masked: relay this head, without what
        /// describes the unmasked body (see `headReceived`).
        case relayHead(HTTPResponseHead)
        /// Hold the head and collect the body.
        case collect
        /// Answer the problem instead; `reason` is for the log.
        case refuse(GatewayProblem, reason: String)
    }

    enum BodyDecision: Equatable {
        case collect
        case refuse(GatewayProblem, reason: String)
    }

    enum EndDecision {
        /// Send this head and body; `maskedValues` for the log.
        case respond(HTTPResponseHead, ByteBuffer, maskedValues: Int)
        case refuse(GatewayProblem, reason: String)
    }

    /// The masked request asks for the representation whole and unencoded: a masked value
    /// must be found in the bytes as they are (no gzip to undo, no range of a document).
    static func prepareUpstreamRequest<Fields: FieldEditing>(_ headers: inout Fields) {
        headers.replaceOrAdd(name: "accept-encoding", value: "identity")
        headers.remove(name: "range")
        headers.remove(name: "if-range")
    }

    mutating func headReceived(_ head: HTTPResponseHead, requestMethod: HTTPMethod, allocator: ByteBufferAllocator) -> HeadDecision {
        let status = head.status.code
        if status < 200 || status == 204 || status == 304 { return .relay }
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
        if declared == 0 { return .relay }
        for coding in head.headers[canonicalForm: "content-encoding"] where coding.lowercased() != "identity" {
            return .refuse(.unmaskableResponse, reason: "content-encoded (\(coding))")
        }
        guard Self.isJSON(head.headers.first(name: "content-type")) else {
            return self.mask.passesNonJSON ? .relay : .refuse(.unmaskableResponse, reason: "not JSON")
        }
        if let declared, declared > self.maxBodyBytes {
            return .refuse(.maskedResponseTooLarge, reason: "declared \(declared) bytes")
        }
        if requestMethod == .HEAD {
            // A HEAD is answered as its GET would be, without the body: refused where the GET
            // would be, and otherwise with the GET's fields but those about the body. The GET's
            // length is the masked body's, known only once a body is masked (RFC 9110 §9.3.2 lets
            // a HEAD leave out such fields); the upstream's is the unmasked body's, and would
            // tell how long the masked values are.
            var head = head
            head.headers.remove(name: "content-length")
            Self.removeUnmaskedBodyFields(&head.headers)
            return .relayHead(head)
        }
        self.head = head
        self.body = allocator.buffer(capacity: min(declared ?? 16 << 10, self.maxBodyBytes))
        return .collect
    }

    mutating func bodyReceived(_ buffer: ByteBuffer) -> BodyDecision {
        guard var body = self.body else { return .refuse(.unmaskableResponse, reason: "body without a head") }
        self.body = nil  // uniquely referenced while it grows
        guard body.readableBytes + buffer.readableBytes <= self.maxBodyBytes else {
            return .refuse(.maskedResponseTooLarge, reason: "more than \(self.maxBodyBytes) bytes")
        }
        var buffer = buffer
        body.writeBuffer(&buffer)
        self.body = body
        return .collect
    }

    mutating func ended(allocator: ByteBufferAllocator) -> EndDecision {
        guard var head = self.head, let body = self.body else { return .refuse(.unmaskableResponse, reason: "end without a head") }
        self.head = nil
        self.body = nil
        let found: [JSONMasker.Replacement]
        if body.readableBytes == 0 {
            found = []  // an empty body: nothing in it to mask
        } else {
            do {
                found = try body.withUnsafeReadableBytes { bytes in try JSONMasker.replacements(in: bytes, mask: self.mask) }
            } catch JSONMasker.Failure.tooDeep {
                return .refuse(.unmaskableResponse, reason: "JSON nested deeper than \(JSONMasker.maxDepth)")
            } catch JSONMasker.Failure.invalid(let offset) {
                return .refuse(.unmaskableResponse, reason: "not valid JSON at byte \(offset)")
            } catch {
                return .refuse(.unmaskableResponse, reason: "\(error)")
            }
        }
        var masked = body
        if !found.isEmpty {
            // Everything between the masked values is copied as it came, in one write each.
            masked = allocator.buffer(capacity: body.readableBytes)
            var copied = 0
            for replacement in found {
                masked.writeImmutableBuffer(body.getSlice(at: body.readerIndex + copied, length: replacement.range.lowerBound - copied)!)
                masked.writeStaticString(replacement.text)
                copied = replacement.range.upperBound
            }
            masked.writeImmutableBuffer(body.getSlice(at: body.readerIndex + copied, length: body.readableBytes - copied)!)
        }
        head.headers.remove(name: "transfer-encoding")
        head.headers.replaceOrAdd(name: "content-length", value: String(masked.readableBytes))
        Self.removeUnmaskedBodyFields(&head.headers)
        return .respond(head, masked, maskedValues: found.count)
    }

    /// The validator and digests of the upstream's bytes, which the client does not get.
    static func removeUnmaskedBodyFields(_ headers: inout HTTPHeaders) {
        for name in ["etag", "content-md5", "digest", "content-digest", "repr-digest"] { headers.remove(name: name) }
    }

    /// `application/json` or any `application/…+json` (RFC 6839), parameters aside.
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        var media = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        while media.first == " " || media.first == "\t" { media = media.dropFirst() }
        while media.last == " " || media.last == "\t" { media = media.dropLast() }
        let mediaType = media.lowercased()
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}

extension RequestPhases {
    // MARK: respond: field masking

    /// Whether the response to this request is masked, decided once when it is admitted: its
    /// route's masks in its tenant's policy, for its caller's kind (`Grant.roleKind`). Nil —
    /// the response streams — without a tenant, on a route without masks, or for a caller the
    /// masks do not name.
    func responseMasking(_ request: AdmittedRequest) -> ResponseMasking? {
        // The table alone first: most policies have none, and the grant is not copied for it.
        guard let masks = request.grant?.policy.masking, !masks.isEmpty, let grant = request.grant,
            let mask = masks.mask(route: grant.route, for: grant.roleKind)
        else { return nil }
        return ResponseMasking(mask: mask, maxBodyBytes: request.request.settings.masking.maxBodyBytes)
    }
}
