import NIOCore
import NIOHTTP1

/// What the header rules need of a field section, so that one rule serves both forms the
/// gateway holds fields in: SwiftNIO's `HTTPHeaders` of strings, and a `FieldSection` kept as
/// the bytes a client or an upstream sent.
protocol FieldEditing {
    /// Calls `body` with the bytes of every field's name and value, in order.
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void)
    /// The value of the first field of that name, whatever the case of its letters.
    func first(name: String) -> String?
    /// Whether a field of that name is present, whatever the case of its letters.
    func contains(name: String) -> Bool
    mutating func add(name: String, value: String)
    /// Removes every field of that name, whatever the case of its letters.
    mutating func remove(name: String)
    mutating func replaceOrAdd(name: String, value: String)
}

extension FieldEditing {
    /// Removes every field whose name passes `test`. Names are read in place: a string is made
    /// only of those removed, which nearly every head has none of.
    mutating func removeAll(whereName test: (_ name: UnsafeRawBufferPointer) -> Bool) {
        var doomed: [String] = []
        self.forEachField { name, _ in
            if test(name) { doomed.append(String(decoding: name, as: UTF8.self)) }
        }
        for name in doomed { self.remove(name: name) }
    }
}

extension HTTPHeaders: FieldEditing {
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        forEachFieldsBytes(self, body)
    }
}

/// `FieldEditing.forEachField` for fields held as strings (`HTTPHeaders`, a section's added ones).
private func forEachFieldsBytes(
    _ fields: some Sequence<(name: String, value: String)>, _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void
) {
    for (name, value) in fields {
        ForwardedHeaders.withBytes(of: name) { name in
            ForwardedHeaders.withBytes(of: value) { value in body(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value)) }
        }
    }
}

/// The fields of a head as a client or an upstream sent them — the bytes of its `name: value`
/// lines and where each name and value lies — with the lines the gateway removed and the fields
/// it added after them.
///
/// A head relayed over HTTP/1.1 is written from these bytes: no string is made of a field the
/// gateway passes on, and none is checked a second time. With an upstream response's fields
/// made `HTTPHeaders` first (a string per name and value, copied, then each byte checked again
/// as it was written) a proxied request cost 31.6 µs of CPU against 29.8 this way, user time
/// 15.0 against 13.8 (`MODE=proxy bench/ab.sh BEFORE AFTER 6 8`, medians of 6 rounds each), and
/// two allocations more; the client's request fields are kept the same way (`RelayedRequestHead`).
/// Only `UpstreamResponseParser` and `ClientRequestParser` make received lines, and only of
/// what HTTP/1.1 allows a field (a token, a colon, a value without control characters but
/// HTAB), so they are written as they came; fields added here are checked as they are written,
/// as every field of a head the gateway makes is.
struct FieldSection: FieldEditing, Equatable, Sendable {
    /// Where one received field lies in `received`, and whether it was removed.
    struct Line: Equatable, Sendable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
        var isRemoved = false
    }

    /// The head's bytes, as read (its lines lie in them).
    private var received: ByteBuffer?
    private var lines: [Line]
    /// Fields the gateway added, written after the received ones. A list of its own, not
    /// `HTTPHeaders`: that type checked every name as it was added and was walked through a
    /// subscript the optimizer could not see into, 1.5 % of a proxy-only profile's samples
    /// together (`bench/profile.sh proxy`), for fields checked anyway as they are written. As a
    /// list a proxy-only request cost 24.1 µs against 24.8 (`MODE=proxy bench/ab.sh`, 12 rounds).
    private var added: [(name: String, value: String)]

    /// Fields the gateway made, none received.
    init(_ headers: HTTPHeaders = HTTPHeaders()) {
        self.received = nil
        self.lines = []
        self.added = Array(headers)
    }

    /// The lines a parser (`UpstreamResponseParser`, `ClientRequestParser`) read in `received`,
    /// each a valid field.
    init(received: ByteBuffer, lines: [Line]) {
        self.received = received
        self.lines = lines
        self.added = []
    }

    private func withReceivedBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        guard let received = self.received else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return received.withUnsafeReadableBytes(body)
    }

    private static func name(of line: Line, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(line.nameStart)..<Int(line.nameEnd)])
    }

    private static func value(of line: Line, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(line.valueStart)..<Int(line.valueEnd)])
    }

    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        if !self.lines.isEmpty {
            self.withReceivedBytes { bytes in
                for line in self.lines where !line.isRemoved {
                    body(Self.name(of: line, in: bytes), Self.value(of: line, in: bytes))
                }
            }
        }
        forEachFieldsBytes(self.added, body)
    }

    func first(name: String) -> String? {
        if !self.lines.isEmpty {
            let found: String? = self.withReceivedBytes { bytes in
                guard let index = self.firstLine(named: name, in: bytes) else { return nil }
                return String(decoding: Self.value(of: self.lines[index], in: bytes), as: UTF8.self)
            }
            if let found { return found }
        }
        return self.added.first { Self.sameName($0.name, name) }?.value
    }

    func contains(name: String) -> Bool {
        if !self.lines.isEmpty, self.withReceivedBytes({ self.firstLine(named: name, in: $0) }) != nil { return true }
        return self.added.contains { Self.sameName($0.name, name) }
    }

    /// Whether two names are the same, ignoring ASCII case.
    private static func sameName(_ first: String, _ second: String) -> Bool {
        first.utf8.count == second.utf8.count
            && ForwardedHeaders.withBytes(of: first) { first in
                ForwardedHeaders.withBytes(of: second) { ForwardedHeaders.equalIgnoringCase(UnsafeRawBufferPointer(first), UnsafeRawBufferPointer($0)) }
            }
    }

    /// The index of the first received line of that name not removed.
    private func firstLine(named name: String, in bytes: UnsafeRawBufferPointer) -> Int? {
        ForwardedHeaders.withBytes(of: name) { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            for index in self.lines.indices where !self.lines[index].isRemoved {
                if ForwardedHeaders.equalIgnoringCase(Self.name(of: self.lines[index], in: bytes), wanted) { return index }
            }
            return nil
        }
    }

    /// Room for `count` more added fields in one allocation.
    mutating func reserveAddedCapacity(_ count: Int) {
        self.added.reserveCapacity(self.added.count + count)
    }

    mutating func add(name: String, value: String) {
        // Room for what a relayed head usually gains (its id, `Connection`, RateLimit fields) in
        // one allocation: growing one by one reallocated at the second.
        if self.added.isEmpty { self.added.reserveCapacity(4) }
        self.added.append((name, value))
    }

    mutating func remove(name: String) {
        if !self.lines.isEmpty, let received = self.received {
            ForwardedHeaders.withBytes(of: name) { wanted in
                received.withUnsafeReadableBytes { bytes in
                    for index in self.lines.indices where !self.lines[index].isRemoved {
                        if ForwardedHeaders.equalIgnoringCase(Self.name(of: self.lines[index], in: bytes), UnsafeRawBufferPointer(wanted)) {
                            self.lines[index].isRemoved = true
                        }
                    }
                }
            }
        }
        // Most relayed heads have added nothing yet when a field is removed.
        if !self.added.isEmpty { self.added.removeAll { Self.sameName($0.name, name) } }
    }

    mutating func replaceOrAdd(name: String, value: String) {
        self.remove(name: name)
        self.add(name: name, value: value)
    }

    /// The fields as `HTTPHeaders`, for whoever needs them as strings (an HTTP/2 stream, a
    /// masked body's head, a `101`).
    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(self.lines.count + self.added.count)
        self.withReceivedBytes { bytes in
            for line in self.lines where !line.isRemoved {
                headers.add(
                    name: String(decoding: Self.name(of: line, in: bytes), as: UTF8.self),
                    value: String(decoding: Self.value(of: line, in: bytes), as: UTF8.self)
                )
            }
        }
        for (name, value) in self.added { headers.add(name: name, value: value) }
        return headers
    }

    /// The same fields in the same order, however each side keeps them (a relayed head is a
    /// part of `HTTPPart`, whose heads are `Equatable`).
    static func == (lhs: FieldSection, rhs: FieldSection) -> Bool {
        lhs.headers == rhs.headers
    }

    // MARK: - Writing

    /// `HTTP1Writing.measure` for these fields: the received ones are counted, the added ones
    /// checked and counted.
    func measure() throws(HTTP1Writing.InvalidField) -> HTTP1Writing.Fields {
        var fields = HTTP1Writing.Fields()
        if !self.lines.isEmpty {
            self.withReceivedBytes { bytes in
                for line in self.lines where !line.isRemoved {
                    let name = Self.name(of: line, in: bytes)
                    fields.bytes += name.count + Int(line.valueEnd - line.valueStart) + 4
                    if name.count == 14, ForwardedHeaders.matches(bytes: name, "content-length") {
                        fields.hasContentLength = true
                    } else if name.count == 17, ForwardedHeaders.matches(bytes: name, "transfer-encoding") {
                        if !fields.hasTransferEncoding { fields.transferEncoding = String(decoding: Self.value(of: line, in: bytes), as: UTF8.self) }
                        fields.hasTransferEncoding = true
                    }
                }
            }
        }
        let added = try HTTP1Writing.measure(self.added)
        fields.bytes += added.bytes
        fields.hasContentLength = fields.hasContentLength || added.hasContentLength
        if !fields.hasTransferEncoding { fields.transferEncoding = added.transferEncoding }
        fields.hasTransferEncoding = fields.hasTransferEncoding || added.hasTransferEncoding
        return fields
    }

    /// The fields as `measure` sized them, then the empty line that ends them, each received
    /// field written as `name: value`.
    func write(measured fields: HTTP1Writing.Fields, into buffer: inout ByteBuffer) {
        guard !self.lines.isEmpty else { return HTTP1Writing.write(self.added, measured: fields, into: &buffer) }
        var receivedBytes = 0
        _ = self.withReceivedBytes { bytes in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: fields.bytes) { out in
                var at = 0
                func put(_ piece: UnsafeRawBufferPointer) {
                    guard let source = piece.baseAddress, piece.count > 0 else { return }
                    (out.baseAddress! + at).copyMemory(from: source, byteCount: piece.count)
                    at += piece.count
                }
                for line in self.lines where !line.isRemoved {
                    put(Self.name(of: line, in: bytes))
                    out[at] = UInt8(ascii: ":")
                    out[at + 1] = UInt8(ascii: " ")
                    at += 2
                    put(Self.value(of: line, in: bytes))
                    out[at] = UInt8(ascii: "\r")
                    out[at + 1] = UInt8(ascii: "\n")
                    at += 2
                }
                receivedBytes = at
                return at
            }
        }
        var rest = fields
        rest.bytes -= receivedBytes
        HTTP1Writing.write(self.added, measured: rest, into: &buffer)
    }
}

/// A response head passing through the gateway: read from an upstream (`UpstreamResponseParser`),
/// then made the client's (`RequestPhases.respond`), its fields kept as they were received.
struct RelayedResponseHead: Equatable, Sendable {
    var version: HTTPVersion
    var status: HTTPResponseStatus
    var fields: FieldSection

    /// The head as SwiftNIO's type, its fields made strings.
    var nioHead: HTTPResponseHead {
        HTTPResponseHead(version: self.version, status: self.status, headers: self.fields.headers)
    }

    var headers: HTTPHeaders { self.fields.headers }

    /// `HTTPResponseHead.isKeepAlive`'s verdict (`ForwardedHeaders.keepsAlive`).
    var isKeepAlive: Bool { ForwardedHeaders.keepsAlive(self.fields, version: self.version) }
}

/// A part of an upstream's response as `UpstreamResponseParser` reads it.
typealias UpstreamResponsePart = HTTPPart<RelayedResponseHead, ByteBuffer>

/// A request head passing through the gateway: read from a client (`ClientRequestParser` on
/// HTTP/1.1; NIOHTTP2's codec's head, its fields made a `FieldSection` of added fields, on an
/// HTTP/2 stream), then made the upstream's (`RequestPhases.upstreamRequest`), its fields kept as
/// they were received.
///
/// The phases read the client's fields in place (`FieldSection.first(name:)` and the like); a
/// field is made a string only where a phase needs one. With the fields made `HTTPHeaders` as
/// they were read, and the upstream's head built from a copy of them, a proxy-only request cost
/// more CPU and allocations (docs/benchmarks.md, "The client's request fields kept as received").
struct RelayedRequestHead: Equatable, Sendable {
    var version: HTTPVersion
    var method: HTTPMethod
    var uri: String
    var fields: FieldSection

    init(version: HTTPVersion, method: HTTPMethod, uri: String, fields: FieldSection) {
        self.version = version
        self.method = method
        self.uri = uri
        self.fields = fields
    }

    /// SwiftNIO's head (an HTTP/2 stream's, or one a test makes): its fields, all added.
    init(_ head: HTTPRequestHead) {
        self.init(version: head.version, method: head.method, uri: head.uri, fields: FieldSection(head.headers))
    }

    /// `HTTPRequestHead.isKeepAlive`'s verdict (`ForwardedHeaders.keepsAlive`).
    var isKeepAlive: Bool { ForwardedHeaders.keepsAlive(self.fields, version: self.version) }
}

/// A part of a client's request as the connection handler takes it.
typealias ClientRequestPart = HTTPPart<RelayedRequestHead, ByteBuffer>

/// A part of a request as an upstream connection writes it.
typealias UpstreamRequestPart = HTTPPart<RelayedRequestHead, IOData>
