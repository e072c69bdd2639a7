import NIOCore
import NIOHTTP1

/// Reads an upstream's HTTP/1.1 responses off the bytes of its connection: one value, fed the
/// bytes as they are read, handing out the response's parts in order.
///
/// The upstream connection speaks HTTP/1.1 itself rather than through SwiftNIO's client codec
/// (`HTTPResponseDecoder` under a `ByteToMessageHandler`, `HTTPRequestEncoder`, the outbound
/// header validator): with those three handlers every part of every response crossed three
/// more pipeline hops and llhttp's callbacks into Swift, and every request two more — 4.85 of
/// the 81.7 µs per request a proxy-only profile sampled (`bench/profile.sh proxy`, dwarf call
/// graphs), for parsing a peer the operator runs. The client side reads its requests the same
/// way (`ClientRequestParser`); both share the byte rules of `HTTP1Reading`.
///
/// What it accepts is what RFC 9112 calls a response, strictly, and never more than llhttp
/// accepts (`UpstreamHTTP1Tests` holds it to that with mutated responses): CRLF line ends, no
/// folded header lines, header names that are tokens, values without control characters, one
/// `Content-Length` of digits and never beside `Transfer-Encoding`, chunk extensions as tokens
/// or quoted strings. Anything else fails the connection (the exchange answers
/// `upstream-failed` and the connection is not reused): a pooled connection whose framing two
/// readers could disagree on must not carry the next tenant's response. Like SwiftNIO's decoder
/// it drops informational responses (`1xx` but `101`), reads no body after `HEAD`, `204` or
/// `304`, stops at a `101` (the bytes behind it stay in the buffer: `isUpgraded`), and names the
/// status by its code.
struct UpstreamResponseParser {
    enum Failure: Error, Equatable {
        /// Bytes came while no request was waiting for an answer.
        case unsolicitedResponse
        case malformedStatusLine
        case malformedHeader
        /// The head (or a trailer section, or a chunk-size line) outgrew the limit.
        case headTooLarge
        /// `Content-Length` beside `Transfer-Encoding`, repeated, or not a number.
        case ambiguousFraming
        case malformedChunk
        /// The connection ended inside a response whose length was known.
        case endedEarly
    }

    /// The most bytes a head (status line and fields), a trailer section or a chunk-size line may
    /// take: SwiftNIO's decoder default, which the client codec used.
    static let maxHeadBytes = 80 * 1024

    private enum State {
        /// Between responses (or inside a head not read whole yet).
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        /// The body runs until the connection ends.
        case untilClose
        /// The response's `.end` is owed (its body was empty or ended with a read); then the
        /// next head, or after a `101` nothing more that is HTTP.
        case ending(upgrade: Bool)
        case upgraded
        case failed
    }

    private var state = State.head
    /// The request methods sent whose responses have not begun, oldest first (one at a time in
    /// practice: an upstream connection carries one exchange at once).
    private var awaiting: [HTTPMethod] = []
    /// How far the search for the end of the head has looked, so a head arriving in many reads
    /// is not scanned from its start each time.
    private var scanned = 0

    init() {
        self.awaiting.reserveCapacity(1)
    }

    /// A request was written: its response is the next one read.
    mutating func requestSent(_ method: HTTPMethod) {
        self.awaiting.append(method)
    }

    /// After a `101`: the bytes read behind it stay in the buffer and are the new protocol's.
    var isUpgraded: Bool {
        switch self.state {
        case .upgraded, .ending(upgrade: true): true
        default: false
        }
    }

    /// The next part that `buffer` completes, consuming its bytes; nil when more bytes are needed
    /// (what is left of `buffer` must be handed in again, followed by the next bytes read).
    mutating func next(_ buffer: inout ByteBuffer) throws(Failure) -> UpstreamResponsePart? {
        while true {
            switch self.state {
            case .failed, .upgraded:
                return nil
            case .ending(let upgrade):
                self.state = upgrade ? .upgraded : .head
                return .end(nil)
            case .head:
                guard buffer.readableBytes > 0 else { return nil }
                switch try self.readHead(&buffer) {
                case .incomplete: return nil
                case .informational: continue
                case .final(let head): return .head(head)
                }
            case .fixedBody(let remaining):
                guard let (piece, left) = HTTP1Reading.bodyPiece(&buffer, remaining: remaining) else { return nil }
                self.state = left == 0 ? .ending(upgrade: false) : .fixedBody(remaining: left)
                return .body(piece)
            case .chunkSize:
                guard let size = try self.readChunkSize(&buffer) else { return nil }
                self.state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let (piece, left) = HTTP1Reading.bodyPiece(&buffer, remaining: remaining) else { return nil }
                self.state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .body(piece)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == Self.crlf else { return try self.fail(.malformedChunk) }
                self.state = .chunkSize
            case .trailers:
                guard let trailers = try self.readTrailers(&buffer) else { return nil }
                self.state = .head
                return .end(trailers.fields)
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .body(buffer.readSlice(length: buffer.readableBytes)!)
            }
        }
    }

    /// The connection ended, `unread` bytes left over: the end of a body that runs until then,
    /// nothing between responses, and a failure anywhere else.
    mutating func endOfInput(unread: Int) throws(Failure) -> UpstreamResponsePart? {
        switch self.state {
        case .untilClose:
            self.state = .head
            return .end(nil)
        case .ending(let upgrade):
            self.state = upgrade ? .upgraded : .head
            return .end(nil)
        case .head where unread == 0:
            return nil
        case .upgraded, .failed:
            return nil
        default:
            return try self.fail(.endedEarly)
        }
    }

    // MARK: - Heads

    private enum HeadResult {
        case incomplete
        /// A `1xx` other than `101`, skipped: the final response follows.
        case informational
        case final(RelayedResponseHead)
    }

    private mutating func readHead(_ buffer: inout ByteBuffer) throws(Failure) -> HeadResult {
        guard let headLength = try self.sectionLength(in: buffer) else { return .incomplete }
        guard let method = self.awaiting.first else { return try self.fail(.unsolicitedResponse) }
        let parsed: ParsedHead
        do {
            parsed = try buffer.withUnsafeReadableBytes { bytes throws(Failure) in
                try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[..<headLength]))
            }
        } catch {
            return try self.fail(error)
        }
        self.scanned = 0
        let code = parsed.status
        if code / 100 == 1 && code != 101 {
            buffer.moveReaderIndex(forwardBy: headLength)
            return .informational
        }
        // The head's bytes stay where they were read: its fields are relayed from them.
        var fields = FieldSection(received: buffer.readSlice(length: headLength)!, lines: parsed.lines)
        self.awaiting.removeFirst()
        let framing: Framing =
            if code == 101 || method == .HEAD || method == .CONNECT || code == 204 || code == 304 { .none } else { parsed.framing }
        switch framing {
        case .none, .length(0):
            self.state = .ending(upgrade: code == 101)
        case .length(let length):
            self.state = .fixedBody(remaining: length)
        case .chunked:
            self.state = .chunkSize
        case .untilClose:
            self.state = .untilClose
        }
        // A response whose fields name no length ends its connection: its body runs until then,
        // or, after a `HEAD`, a body the endpoint might send anyway must not be read as the next
        // response (llhttp's keep-alive verdict, which SwiftNIO's decoder passed on, said the
        // same; `204` and `304` are exempt). The head says so for whoever asks it: `Connection`
        // is hop-by-hop, never passed on to the client.
        if parsed.framing == .untilClose, code != 101, code != 204, code != 304, parsed.keepsAliveByHeader {
            fields.add(name: "connection", value: "close")
        }
        let version = HTTPVersion(major: 1, minor: parsed.minorVersion)
        return .final(RelayedResponseHead(version: version, status: HTTPResponseStatus(statusCode: code), fields: fields))
    }

    /// The length of a head or trailer section (through its empty line) once the buffer holds
    /// all of it, within `maxHeadBytes` (a section past it fails before it ends).
    private mutating func sectionLength(in buffer: ByteBuffer) throws(Failure) -> Int? {
        guard let length = try self.findEndOfSection(in: buffer) else {
            if buffer.readableBytes > Self.maxHeadBytes { return try self.fail(.headTooLarge) }
            return nil
        }
        guard length <= Self.maxHeadBytes else { return try self.fail(.headTooLarge) }
        return length
    }

    /// The length of the section (through its empty line), once the buffer holds all of it.
    /// Every line must end in CRLF: a bare LF fails at once rather than when the head times out.
    private mutating func findEndOfSection(in buffer: ByteBuffer) throws(Failure) -> Int? {
        let found: Int?? = buffer.withUnsafeReadableBytes { bytes in
            var index = self.scanned
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "\n") {
                    guard index > 0, bytes[index - 1] == UInt8(ascii: "\r") else { return .some(nil) }
                    if index >= 3, bytes[index - 2] == UInt8(ascii: "\n"), bytes[index - 3] == UInt8(ascii: "\r") {
                        return index + 1
                    }
                }
                index += 1
            }
            self.scanned = bytes.count
            return nil
        }
        switch found {
        case .none: return nil
        case .some(.none): return try self.fail(.malformedHeader)
        case .some(.some(let length)): return length
        }
    }

    private enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }

    private struct ParsedHead {
        var minorVersion: Int
        var status: Int
        /// Where each field lies in the head's bytes.
        var lines: [FieldSection.Line]
        var framing: Framing
        /// No `Connection: close` and HTTP/1.1 (or `keep-alive` on 1.0).
        var keepsAliveByHeader: Bool
    }

    /// Status line and fields of one head, `bytes` ending with its empty line.
    private static func parseHead(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> ParsedHead {
        // "HTTP/1.x NNN[ reason]\r\n"
        guard bytes.count >= 14,
              bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"), bytes[3] == UInt8(ascii: "P"),
              bytes[4] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "1"), bytes[6] == UInt8(ascii: "."),
              bytes[7] == UInt8(ascii: "0") || bytes[7] == UInt8(ascii: "1"), bytes[8] == UInt8(ascii: " ")
        else { throw .malformedStatusLine }
        var status = 0
        for index in 9..<12 {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { throw .malformedStatusLine }
            status = status * 10 + Int(digit)
        }
        guard status >= 100 else { throw .malformedStatusLine }
        var index = 12
        if bytes[index] == UInt8(ascii: " ") {
            index += 1
            while bytes[index] != UInt8(ascii: "\r") {
                guard HTTP1Reading.isFieldValueByte(bytes[index]) else { throw .malformedStatusLine }
                index += 1
            }
        }
        guard bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") else { throw .malformedStatusLine }
        index += 2

        // Where each field lies, not strings: the fields are relayed from these bytes
        // (`FieldSection`). Room for every line, so the list is made once.
        var lines: [FieldSection.Line] = []
        var count = 0
        for byte in UnsafeRawBufferPointer(rebasing: bytes[index...]) where byte == UInt8(ascii: "\n") { count += 1 }
        lines.reserveCapacity(count)
        var contentLength: Int?
        var sawTransferEncoding = false
        var chunkedIsFinal = false
        var connectionClose = false
        var connectionKeepAlive = false
        var fields = FieldLines(bytes, from: index)
        while let (nameRange, valueRange) = try fields.nextRanges() {
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            if ForwardedHeaders.matches(bytes: name, "content-length") {
                guard contentLength == nil, let length = HTTP1Reading.decimal(HTTP1Reading.trimmingTrailingSpaces(value)) else { throw .ambiguousFraming }
                contentLength = length
            } else if ForwardedHeaders.matches(bytes: name, "transfer-encoding") {
                // Chunked only when it is the final coding (RFC 9112 §6.3), of the last field.
                sawTransferEncoding = true
                var final: UnsafeRawBufferPointer?
                var codings = FieldListItems(value)
                while let coding = codings.next() { final = coding }
                // An empty coding ("chunked,") is read by llhttp as a final coding other than
                // chunked: which coding is last is not agreed on, so the response is refused.
                // So is a tab after the last coding ("chunked\t", which llhttp does not read as
                // chunked).
                guard !codings.skippedEmpty, HTTP1Reading.trimmingTrailingSpaces(value).last != UInt8(ascii: "\t") else { throw .ambiguousFraming }
                chunkedIsFinal = final.map { ForwardedHeaders.matches(bytes: $0, "chunked") } ?? false
            } else if ForwardedHeaders.matches(bytes: name, "connection") {
                var options = FieldListItems(value)
                while let option = options.next() {
                    if ForwardedHeaders.matches(bytes: option, "close") { connectionClose = true }
                    if ForwardedHeaders.matches(bytes: option, "keep-alive") { connectionKeepAlive = true }
                }
            }
            lines.append(
                FieldSection.Line(
                    nameStart: Int32(nameRange.lowerBound), nameEnd: Int32(nameRange.upperBound),
                    valueStart: Int32(valueRange.lowerBound), valueEnd: Int32(valueRange.upperBound)
                )
            )
        }
        if sawTransferEncoding, contentLength != nil { throw .ambiguousFraming }
        let framing: Framing =
            if sawTransferEncoding { chunkedIsFinal ? .chunked : .untilClose } else if let contentLength { .length(contentLength) } else { .untilClose }
        let minor = bytes[7] == UInt8(ascii: "1") ? 1 : 0
        let keepsAlive = !connectionClose && (minor == 1 || connectionKeepAlive)
        return ParsedHead(minorVersion: minor, status: status, lines: lines, framing: framing, keepsAliveByHeader: keepsAlive)
    }

    /// The `name: value` lines of a field section, from `start` up to the empty line that ends it
    /// (which the bytes must end with). Each value without the blanks before it, and with those
    /// after it, as llhttp kept them.
    private struct FieldLines {
        let bytes: UnsafeRawBufferPointer
        var index: Int

        init(_ bytes: UnsafeRawBufferPointer, from start: Int) {
            self.bytes = bytes
            self.index = start
        }

        mutating func next() throws(Failure) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
            guard let (name, value) = try self.nextRanges() else { return nil }
            return (UnsafeRawBufferPointer(rebasing: self.bytes[name]), UnsafeRawBufferPointer(rebasing: self.bytes[value]))
        }

        /// `next`, as where the name and the value lie in the bytes.
        mutating func nextRanges() throws(Failure) -> (name: Range<Int>, value: Range<Int>)? {
            let bytes = self.bytes
            var index = self.index
            if bytes[index] == UInt8(ascii: "\r") {
                guard bytes[index + 1] == UInt8(ascii: "\n") else { throw .malformedHeader }
                return nil
            }
            let nameStart = index
            while HTTP1Reading.isTokenByte(bytes[index]) { index += 1 }
            // No blank before the colon, no empty name, no folded continuation line.
            guard index > nameStart, bytes[index] == UInt8(ascii: ":") else { throw .malformedHeader }
            let nameEnd = index
            index += 1
            while bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
            let valueStart = index
            while bytes[index] != UInt8(ascii: "\r") {
                guard HTTP1Reading.isFieldValueByte(bytes[index]) else { throw .malformedHeader }
                index += 1
            }
            let valueEnd = index
            guard bytes[index + 1] == UInt8(ascii: "\n") else { throw .malformedHeader }
            self.index = index + 2
            return (nameStart..<nameEnd, valueStart..<valueEnd)
        }
    }

    // MARK: - Chunks

    /// The size of the next chunk once its line (`HEX[;extensions]CRLF`) is whole.
    private mutating func readChunkSize(_ buffer: inout ByteBuffer) throws(Failure) -> Int? {
        switch buffer.withUnsafeReadableBytes({ HTTP1Reading.chunkSizeLine($0) }) {
        case .incomplete:
            if buffer.readableBytes > Self.maxHeadBytes { return try self.fail(.headTooLarge) }
            return nil
        case .size(let size, let lineLength):
            buffer.moveReaderIndex(forwardBy: lineLength)
            return size
        case .invalidSize, .invalidLine:
            return try self.fail(.malformedChunk)
        }
    }

    /// A trailer section, read whole.
    private struct Trailers {
        /// Nil when the section is empty.
        var fields: HTTPHeaders?
    }

    /// The trailer section after the last chunk, once whole.
    private mutating func readTrailers(_ buffer: inout ByteBuffer) throws(Failure) -> Trailers? {
        let startsEmpty = buffer.withUnsafeReadableBytes { $0.count >= 2 && $0[0] == UInt8(ascii: "\r") && $0[1] == UInt8(ascii: "\n") }
        if startsEmpty {
            buffer.moveReaderIndex(forwardBy: 2)
            self.scanned = 0
            return Trailers(fields: nil)
        }
        guard let length = try self.sectionLength(in: buffer) else { return nil }
        let trailers: HTTPHeaders
        do {
            trailers = try buffer.withUnsafeReadableBytes { bytes throws(Failure) in
                var trailers = HTTPHeaders()
                var fields = FieldLines(UnsafeRawBufferPointer(rebasing: bytes[..<length]), from: 0)
                while let (name, value) = try fields.next() {
                    trailers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
                }
                return trailers
            }
        } catch {
            return try self.fail(error)
        }
        buffer.moveReaderIndex(forwardBy: length)
        self.scanned = 0
        return Trailers(fields: trailers)
    }

    // MARK: - Bytes

    private static let crlf = UInt16(UInt8(ascii: "\r")) << 8 | UInt16(UInt8(ascii: "\n"))

    private mutating func fail<Value>(_ failure: Failure) throws(Failure) -> Value {
        self.state = .failed
        throw failure
    }
}
