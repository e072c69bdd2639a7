#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1

/// Reads a client's HTTP/1.1 requests off the bytes of its connection: one value, fed the bytes
/// as they are read, handing out each request's parts in order.
///
/// It replaces SwiftNIO's `HTTPRequestDecoder` (llhttp under a `ByteToMessageHandler`), which
/// delivered every head through llhttp's callbacks into Swift, one string per span, and two
/// more pipeline hops per read: 5.9 % of a proxy-only profile's samples (`bench/profile.sh
/// proxy`, dwarf call graphs), the last of SwiftNIO's HTTP/1 codecs on the gateway's path.
/// Decoding the benchmark's `GET` with a bearer token takes this parser 0.64 µs against
/// SwiftNIO's 1.58 (`bench/request-decode.sh`, the channel's hand-over apart).
///
/// These are the untrusted bytes, so it reads what llhttp 9 (as SwiftNIO builds it, no lenient
/// flag) reads and never more, and refuses what llhttp refuses with an error of the same kind —
/// the kind decides the client's answer (`ClientConnectionStateMachine.problem(for:)`): a head
/// past the limit is `headerOverflow` (431), a `Content-Length` or chunk size llhttp calls
/// invalid is `invalidContentLength`, `unexpectedContentLength` or `invalidChunkSize`
/// (`ambiguous-framing`), anything else malformed (`malformed-request`). `ClientRequestParserTests`
/// holds it to that against llhttp with random requests and their mutations. In particular:
/// - the request line is `method SP target SP HTTP/1.0|1.1 CRLF`, the method one llhttp knows
///   for HTTP, the target of visible ASCII in llhttp's grammar (origin, absolute, authority or
///   asterisk form: the phases refuse all but the first with `ambiguous-path`); empty lines
///   before it are skipped;
/// - every line ends in CRLF; field names are tokens and end at the colon; values hold no
///   control character but HTAB, and keep the blanks after them;
/// - `Content-Length` is digits (trailing spaces allowed), once, and never after
///   `Transfer-Encoding`; `Transfer-Encoding` never after `Content-Length` (llhttp's error then
///   is not a length error: `malformed-request`), and its last coding must be `chunked`;
/// - after a request that does not keep the connection alive only empty lines may follow;
///   after a `CONNECT` or an upgrade (`Upgrade` with `Connection: upgrade`) nothing more is
///   read as HTTP (`isUpgraded`).
/// Where it is stricter than llhttp, the client is refused rather than read two ways: a head,
/// a trailer section or a chunk-size line longer than the limit in bytes as sent (llhttp
/// counts the target and the fields' names and values), two spaces where the request line has
/// one, an empty chunk extension name, an empty coding before `chunked`; and a length of more
/// than 18 digits (`ambiguous-framing`, as `RequestHeadValidation` answered it before). A
/// head whose `Connection` tokens repeat or conflict (`keep-alive, keep-alive`) closes its
/// connection after its answer, as SwiftNIO's verdict on the fields says, where llhttp kept it.
struct ClientRequestParser {
    /// The most bytes a head (request line and fields), a trailer section or a chunk-size line
    /// may take.
    let maxHeadBytes: Int

    private enum State {
        /// Between requests, or inside a head not read whole yet.
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        /// The request's `.end` is owed; then what follows it.
        case ending(then: After)
        /// The request said the connection ends with it: only empty lines may follow.
        case closed
        /// After a `CONNECT` or an upgrade: nothing more is HTTP.
        case upgraded
        /// The head was handed on, and llhttp's verdict on it follows: an error.
        case failing(HTTPParserError)
        case failed
    }

    enum After {
        case nextRequest
        case closed
        case upgraded
    }

    private var state = State.head
    /// The section (head or trailers) being read, not whole yet.
    private var section = Section()
    /// The request line, once read; and what follows the request being read.
    private var requestLine: RequestLine?
    private var after = After.nextRequest

    /// The largest read buffer a head is kept in, rather than copied out of.
    static let heldReadCapacity = 4_096

    init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// After a `CONNECT` or an upgrade: the bytes behind its end stay in the buffer, unread.
    var isUpgraded: Bool {
        if case .upgraded = self.state { return true }
        return false
    }

    /// The next part that `buffer` completes, consuming its bytes; nil when more bytes are needed
    /// (what is left of `buffer` must be handed in again, followed by the next bytes read).
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTPParserError) -> ClientRequestPart? {
        while true {
            switch self.state {
            case .failed, .upgraded:
                return nil
            case .failing(let error):
                return try self.fail(error)
            case .ending(let then):
                self.state = Self.state(after: then)
                return .end(nil)
            case .head:
                if self.section.isFresh, self.requestLine == nil {
                    // Empty lines before a request are skipped (RFC 9112 §2.2; llhttp skips CR
                    // and LF there one by one).
                    buffer.moveReaderIndex(forwardBy: buffer.withUnsafeReadableBytes(Self.leadingLineEnds))
                }
                guard buffer.readableBytes > 0 else { return nil }
                guard let head = try self.readHead(&buffer) else { return nil }
                return .head(head)
            case .fixedBody(let remaining):
                guard let (piece, left) = HTTP1Reading.bodyPiece(&buffer, remaining: remaining) else { return nil }
                self.state = left == 0 ? .ending(then: self.after) : .fixedBody(remaining: left)
                return .body(piece)
            case .chunkSize:
                guard buffer.readableBytes > 0 else { return nil }
                switch buffer.withUnsafeReadableBytes({ HTTP1Reading.chunkSizeLine($0) }) {
                case .incomplete:
                    if buffer.readableBytes > self.maxHeadBytes { return try self.fail(.invalidChunkSize) }
                    return nil
                case .size(let size, let lineLength):
                    buffer.moveReaderIndex(forwardBy: lineLength)
                    if size == 0 {
                        // Trailer fields are read as the head's were, a length among them after
                        // the coding included.
                        self.section = Section()
                        self.section.sawTransferEncoding = true
                        self.section.chunkedIsFinal = true
                        self.state = .trailers
                    } else {
                        self.state = .chunkData(remaining: size)
                    }
                case .invalidSize:
                    return try self.fail(.invalidChunkSize)
                case .invalidLine:
                    return try self.fail(.strictModeAssertion)
                }
            case .chunkData(let remaining):
                guard let (piece, left) = HTTP1Reading.bodyPiece(&buffer, remaining: remaining) else { return nil }
                self.state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .body(piece)
            case .chunkDataEnd:
                let (first, second) = buffer.withUnsafeReadableBytes { bytes in (bytes.first, bytes.count > 1 ? bytes[1] : nil) }
                guard let first else { return nil }
                guard first == UInt8(ascii: "\r") else { return try self.fail(.unknown) }  // llhttp: "missing expected CR after chunk data"
                guard let second else { return nil }
                guard second == UInt8(ascii: "\n") else { return try self.fail(.strictModeAssertion) }
                buffer.moveReaderIndex(forwardBy: 2)
                self.state = .chunkSize
            case .trailers:
                guard buffer.readableBytes > 0 else { return nil }
                guard let trailers = try self.readTrailers(&buffer) else { return nil }
                self.state = Self.state(after: self.after)
                return .end(trailers)
            case .closed:
                buffer.moveReaderIndex(forwardBy: buffer.withUnsafeReadableBytes(Self.leadingLineEnds))
                guard buffer.readableBytes == 0 else { return try self.fail(.closedConnection) }
                return nil
            }
        }
    }

    /// The connection's input ended (half-close or close) with `unread` bytes left: a failure
    /// inside a request, nothing between requests.
    mutating func endOfInput(unread: Int) throws(HTTPParserError) {
        switch self.state {
        case .head where unread == 0 && self.section.isFresh && self.requestLine == nil:
            return
        case .closed, .upgraded, .failed, .failing, .ending:
            return
        default:
            let _: Void = try self.fail(.invalidEOFState)
        }
    }

    /// How many CR and LF bytes `bytes` starts with. (Loops by index here and below: the
    /// generic collection methods cost allocations in a debug build, which the allocation
    /// budget tests count.)
    private static func leadingLineEnds(_ bytes: UnsafeRawBufferPointer) -> Int {
        var count = 0
        while count < bytes.count, bytes[count] == UInt8(ascii: "\r") || bytes[count] == UInt8(ascii: "\n") { count += 1 }
        return count
    }

    // MARK: - Heads

    private struct RequestLine {
        var method: HTTPMethod
        var uri: String
        var minorVersion: Int
    }

    /// A field section being read line by line, so an error in a line is found when the line
    /// is whole (as llhttp finds it), not when the whole head is.
    private struct Section {
        /// Where the next line starts, from the buffer's reader index.
        var lineStart = 0
        /// How far the search for the line's end has looked.
        var scanned = 0
        /// The fields read so far, where they lie from the section's start.
        var lines: [FieldSection.Line] = []
        var contentLength: Int?
        var sawTransferEncoding = false
        var chunkedIsFinal = false
        var sawUpgrade = false
        var connectionUpgrade = false
        var connectionClose = false
        var connectionKeepAlive = false

        var isFresh: Bool { self.lineStart == 0 && self.scanned == 0 }
    }

    private enum Lines {
        case incomplete
        /// The section's length through its empty line.
        case complete(Int)
    }

    private mutating func readHead(_ buffer: inout ByteBuffer) throws(HTTPParserError) -> RelayedRequestHead? {
        let lines: Lines
        do {
            lines = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParserError) in try self.readLines(bytes, startingWithRequestLine: true) }
        } catch {
            return try self.fail(error)
        }
        guard case .complete(let length) = lines, let line = self.requestLine else { return nil }
        // The head's bytes stay with it for the whole exchange: its fields are read in place and
        // forwarded as they came (`FieldSection`). A slice of the read, not a copy — unless the
        // read's buffer is large (SwiftNIO's grow to 64 KiB on a connection that sends much):
        // such a buffer is not held for a head's sake while its exchange lasts.
        var received = buffer.readSlice(length: length)!
        if buffer.capacity > Self.heldReadCapacity {
            var copy = ByteBufferAllocator().buffer(capacity: length)
            copy.writeBuffer(&received)
            received = copy
        }
        let section = self.section
        self.section = Section()
        self.requestLine = nil
        var head = RelayedRequestHead(
            version: HTTPVersion(major: 1, minor: line.minorVersion), method: line.method, uri: line.uri,
            fields: FieldSection(received: received, lines: section.lines)
        )
        // llhttp's keep-alive verdict decides what may follow; the connection handler reads
        // SwiftNIO's (`isKeepAlive`, from the fields), which closes where llhttp would not for
        // a repeated or conflicting token. Where llhttp closes and SwiftNIO would not (a
        // `Proxy-Connection: close`), the head says so: `Connection` is never forwarded.
        let keepsAlive = line.minorVersion == 1 ? !section.connectionClose : section.connectionKeepAlive
        if !keepsAlive, head.isKeepAlive { head.fields.add(name: "connection", value: "close") }
        let upgrade = line.method == .CONNECT || (section.sawUpgrade && section.connectionUpgrade)
        self.after = upgrade ? .upgraded : keepsAlive ? .nextRequest : .closed
        if section.sawTransferEncoding, !section.chunkedIsFinal {
            // llhttp's verdict once the head is out: a request's last coding must be chunked.
            // The head goes on first, as it did (validation answers it `ambiguous-framing`).
            self.state = .failing(.unknown)
        } else if line.method == .CONNECT {
            self.state = .ending(then: self.after)  // llhttp reads no body after a CONNECT head
        } else if section.sawTransferEncoding {
            self.state = .chunkSize
        } else if let length = section.contentLength, length > 0 {
            self.state = .fixedBody(remaining: length)
        } else {
            self.state = .ending(then: self.after)
        }
        return head
    }

    /// The trailer section once whole: nil while not, `.some(nil)` when it is empty.
    private mutating func readTrailers(_ buffer: inout ByteBuffer) throws(HTTPParserError) -> HTTPHeaders?? {
        let lines: Lines
        do {
            lines = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParserError) in try self.readLines(bytes, startingWithRequestLine: false) }
        } catch {
            return try self.fail(error)
        }
        guard case .complete(let length) = lines else { return nil }
        let received = buffer.readSlice(length: length)!
        let fields = self.section.lines
        self.section = Section()
        // Trailers are rare, and forwarded as `HTTPHeaders`.
        return .some(fields.isEmpty ? nil : FieldSection(received: received, lines: fields).headers)
    }

    /// Reads the section's lines that are whole, from where the last call stopped.
    private mutating func readLines(_ bytes: UnsafeRawBufferPointer, startingWithRequestLine: Bool) throws(HTTPParserError) -> Lines {
        var index = self.section.scanned
        while true {
            // The line's end: CRLF, or a CR or LF alone (an error once the line before it reads).
            var contentEnd = -1
            var lineEnd = -1
            var wellEnded = true
            let cr = HTTP1Reading.offset(of: UInt8(ascii: "\r"), in: bytes, from: index, to: bytes.count)
            if let lf = HTTP1Reading.offset(of: UInt8(ascii: "\n"), in: bytes, from: index, to: cr ?? bytes.count) {
                contentEnd = lf
                lineEnd = lf + 1
                wellEnded = false
                index = lf
            } else if let cr {
                index = cr
                if cr + 1 < bytes.count {
                    contentEnd = cr
                    lineEnd = cr + 2
                    wellEnded = bytes[cr + 1] == UInt8(ascii: "\n")
                }
            } else {
                index = bytes.count
            }
            guard lineEnd >= 0 else {
                self.section.scanned = index
                if bytes.count > self.maxHeadBytes { throw .headerOverflow }
                return .incomplete
            }
            if lineEnd > self.maxHeadBytes { throw .headerOverflow }
            let content = UnsafeRawBufferPointer(rebasing: bytes[self.section.lineStart..<contentEnd])
            if startingWithRequestLine, self.requestLine == nil {
                self.requestLine = try Self.readRequestLine(content)
                guard wellEnded else { throw .invalidVersion }  // llhttp: "expected CRLF after version"
            } else if content.isEmpty {
                guard wellEnded else { throw .strictModeAssertion }  // llhttp: "expected LF after headers"
                self.section.scanned = 0
                self.section.lineStart = 0
                return .complete(lineEnd)
            } else {
                try self.readField(content, at: self.section.lineStart, wellEnded: wellEnded)
            }
            self.section.lineStart = lineEnd
            index = lineEnd
            self.section.scanned = lineEnd
        }
    }

    /// One `name: value` line of a head or trailer section. llhttp's errors come in its order:
    /// what the name alone rules out, then each byte of the value as it is read, then a line
    /// end other than CRLF, then what the whole value rules out (an empty length).
    /// `start`: where the line starts in the section.
    private mutating func readField(_ line: UnsafeRawBufferPointer, at start: Int, wellEnded: Bool) throws(HTTPParserError) {
        var index = 0
        while index < line.count, HTTP1Reading.isTokenByte(line[index]) { index += 1 }
        // No blank before the colon, no empty name, no folded continuation line.
        guard index > 0, index < line.count, line[index] == UInt8(ascii: ":") else { throw .invalidHeaderToken }
        let name = UnsafeRawBufferPointer(rebasing: line[..<index])
        index += 1
        while index < line.count, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") { index += 1 }
        let valueStart = index
        let value = UnsafeRawBufferPointer(rebasing: line[index...])
        switch name.count {
        case 14 where ForwardedHeaders.matches(bytes: name, "content-length"):
            // llhttp's order: a length after a coding, then a second length, then its digits.
            if self.section.sawTransferEncoding { throw .invalidContentLength }
            if self.section.contentLength != nil { throw .unexpectedContentLength }
            let digits = HTTP1Reading.trimmingTrailingSpaces(value)
            guard digits.isEmpty || HTTP1Reading.decimal(digits) != nil else { throw .invalidContentLength }
            guard wellEnded else { throw .unknown }  // llhttp: "missing expected CR after header value"
            guard let length = HTTP1Reading.decimal(digits) else { throw .invalidContentLength }  // empty
            self.section.contentLength = length
        case 17 where ForwardedHeaders.matches(bytes: name, "transfer-encoding"):
            if self.section.contentLength != nil { throw .unknown }  // llhttp's "invalid Transfer-Encoding"
            try Self.checkValue(value)
            // Chunked must be the final coding (RFC 9112 §6.3): a coding after it, in this field
            // or a later one, is refused as it is read; a last coding other than chunked once
            // the head is out (`readHead`). An empty coding ("chunked,") is read by llhttp as a
            // final coding other than chunked, and so is a tab after the last one.
            self.section.sawTransferEncoding = true
            var chunked = self.section.chunkedIsFinal
            var codings = FieldListItems(value)
            var rest = value.count
            while let coding = codings.next() {
                if chunked { throw .unknown }  // llhttp: "invalid `Transfer-Encoding` header value"
                chunked = ForwardedHeaders.matches(bytes: coding, "chunked")
                rest = value.count - (coding.baseAddress! + coding.count - value.baseAddress!)
            }
            // So is an empty coding after it ("chunked,").
            if chunked, UnsafeRawBufferPointer(rebasing: value[(value.count - rest)...]).contains(UInt8(ascii: ",")) { throw .unknown }
            self.section.chunkedIsFinal = chunked && !codings.skippedEmpty && HTTP1Reading.trimmingTrailingSpaces(value).last != UInt8(ascii: "\t")
        case 10 where ForwardedHeaders.matches(bytes: name, "connection"), 16 where ForwardedHeaders.matches(bytes: name, "proxy-connection"):
            // llhttp reads both alike.
            try Self.checkValue(value)
            var options = FieldListItems(value)
            while let option = options.next() {
                if ForwardedHeaders.matches(bytes: option, "upgrade") { self.section.connectionUpgrade = true }
                if ForwardedHeaders.matches(bytes: option, "close") { self.section.connectionClose = true }
                if ForwardedHeaders.matches(bytes: option, "keep-alive") { self.section.connectionKeepAlive = true }
            }
        case 7 where ForwardedHeaders.matches(bytes: name, "upgrade"):
            try Self.checkValue(value)
            // An empty `Upgrade` asks for nothing (llhttp reads on).
            if !value.isEmpty { self.section.sawUpgrade = true }
        default:
            try Self.checkValue(value)
        }
        guard wellEnded else { throw .unknown }  // llhttp: "missing expected CR after header value"
        if self.section.lines.isEmpty { self.section.lines.reserveCapacity(16) }
        self.section.lines.append(
            FieldSection.Line(
                nameStart: Int32(start), nameEnd: Int32(start + name.count), valueStart: Int32(start + valueStart), valueEnd: Int32(start + line.count)
            )
        )
    }

    private static func checkValue(_ value: UnsafeRawBufferPointer) throws(HTTPParserError) {
        guard HTTP1Reading.isFieldValue(value.assumingMemoryBound(to: UInt8.self)) else { throw .invalidHeaderToken }
    }

    // MARK: - The request line

    /// `method SP target SP HTTP/1.x`, the line's CRLF cut off.
    private static func readRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPParserError) -> RequestLine {
        var methodEnd = 0
        while methodEnd < line.count, line[methodEnd] != UInt8(ascii: " ") { methodEnd += 1 }
        guard methodEnd < line.count, let method = Self.method(UnsafeRawBufferPointer(rebasing: line[..<methodEnd])) else { throw .invalidMethod }
        let targetStart = methodEnd + 1
        var targetEnd = targetStart
        while targetEnd < line.count, line[targetEnd] != UInt8(ascii: " ") { targetEnd += 1 }
        let target = UnsafeRawBufferPointer(rebasing: line[targetStart..<targetEnd])
        guard Self.isTarget(target, connect: method == .CONNECT) else { throw .invalidURL }
        // " HTTP/1.0" or " HTTP/1.1", and the line ends.
        let version = UnsafeRawBufferPointer(rebasing: line[targetEnd...])
        guard version.count == 9, version[0] == UInt8(ascii: " "), version[1] == UInt8(ascii: "H"), version[2] == UInt8(ascii: "T"),
              version[3] == UInt8(ascii: "T"), version[4] == UInt8(ascii: "P"), version[5] == UInt8(ascii: "/"),
              version[6] == UInt8(ascii: "1"), version[7] == UInt8(ascii: "."),
              version[8] == UInt8(ascii: "0") || version[8] == UInt8(ascii: "1")
        else { throw .invalidVersion }
        return RequestLine(method: method, uri: String(decoding: target, as: UTF8.self), minorVersion: version[8] == UInt8(ascii: "1") ? 1 : 0)
    }

    /// The methods llhttp reads in an HTTP/1.x request, as SwiftNIO names them.
    private static func method(_ name: UnsafeRawBufferPointer) -> HTTPMethod? {
        switch name.count {
        case 3 where Self.spells(name, "GET"): return .GET
        case 4 where Self.spells(name, "POST"): return .POST
        case 3 where Self.spells(name, "PUT"): return .PUT
        case 6 where Self.spells(name, "DELETE"): return .DELETE
        case 5 where Self.spells(name, "PATCH"): return .PATCH
        case 4 where Self.spells(name, "HEAD"): return .HEAD
        case 7 where Self.spells(name, "OPTIONS"): return .OPTIONS
        default:
            guard let known = Self.otherMethods[String(decoding: name, as: UTF8.self)] else { return nil }
            return known
        }
    }

    /// Case-sensitive, as llhttp matches a method.
    private static func spells(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0
    }

    private static let otherMethods: [String: HTTPMethod] = [
        "CONNECT": .CONNECT, "TRACE": .TRACE, "COPY": .COPY, "LOCK": .LOCK, "MKCOL": .MKCOL, "MOVE": .MOVE,
        "PROPFIND": .PROPFIND, "PROPPATCH": .PROPPATCH, "SEARCH": .SEARCH, "UNLOCK": .UNLOCK, "BIND": .BIND,
        "REBIND": .REBIND, "UNBIND": .UNBIND, "ACL": .ACL, "REPORT": .REPORT, "MKACTIVITY": .MKACTIVITY,
        "CHECKOUT": .CHECKOUT, "MERGE": .MERGE, "M-SEARCH": .MSEARCH, "NOTIFY": .NOTIFY, "SUBSCRIBE": .SUBSCRIBE,
        "UNSUBSCRIBE": .UNSUBSCRIBE, "PURGE": .PURGE, "MKCALENDAR": .MKCALENDAR, "LINK": .LINK, "UNLINK": .UNLINK,
        "SOURCE": .RAW(value: "SOURCE"), "QUERY": .RAW(value: "QUERY"),
    ]

    /// Whether llhttp reads `target` as a request target: `/…` or `*…` (path, then `?` query,
    /// then `#` fragment), or `scheme://authority` followed by those, or (after `CONNECT`) an
    /// authority followed by those. Visible ASCII only.
    static func isTarget(_ target: UnsafeRawBufferPointer, connect: Bool) -> Bool {
        enum Part { case path, query, fragment, scheme, server }
        guard target.count > 0 else { return false }
        let first = target[0]
        var part: Part
        var index = 0
        var sawAt = false
        if connect {
            part = .server
        } else if first == UInt8(ascii: "/") || first == UInt8(ascii: "*") {
            part = .path
            index = 1
        } else if Self.isAlpha(first) {
            part = .scheme
        } else {
            return false
        }
        while index < target.count {
            let byte = target[index]
            guard byte > 0x20, byte < 0x7F else { return false }
            switch part {
            case .path:
                if byte == UInt8(ascii: "?") { part = .query } else if byte == UInt8(ascii: "#") { part = .fragment }
            case .query:
                if byte == UInt8(ascii: "#") { part = .fragment }
            case .fragment:
                break
            case .scheme:
                if byte == UInt8(ascii: ":") {
                    guard index + 2 < target.count, target[index + 1] == UInt8(ascii: "/"), target[index + 2] == UInt8(ascii: "/") else {
                        return false
                    }
                    index += 2
                    part = .server
                } else if !Self.isAlpha(byte) {
                    return false
                }
            case .server:
                switch byte {
                case UInt8(ascii: "/"): part = .path
                case UInt8(ascii: "?"): part = .query
                case UInt8(ascii: "@"):
                    guard !sawAt else { return false }
                    sawAt = true
                default:
                    guard Self.isServerByte(byte) else { return false }
                }
            }
            index += 1
        }
        return part != .scheme
    }

    private static func isAlpha(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    /// What llhttp reads in an authority: unreserved, sub-delims, `:`, `%`, `[` and `]`.
    private static func isServerByte(_ byte: UInt8) -> Bool {
        if Self.isAlpha(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) { return true }
        switch byte {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
             UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "_"),
             UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func state(after: After) -> State {
        switch after {
        case .nextRequest: .head
        case .closed: .closed
        case .upgraded: .upgraded
        }
    }

    private mutating func fail<Value>(_ error: HTTPParserError) throws(HTTPParserError) -> Value {
        self.state = .failed
        throw error
    }
}
