import Foundation
import NIOCore
import NIOHPACK

/// A blocking HTTP/2 client (prior knowledge, h2c) that writes every frame itself — a 9-byte
/// frame header and the payload the test chose — so each attack is exact. Header blocks it sends
/// are HPACK literals without indexing (RFC 7541 §6.2.2, no Huffman coding): every byte is
/// plain to read in the test. What the gateway sends back is decoded with NIOHPACK (the gateway
/// indexes and Huffman-codes its answers).
final class RawHTTP2Connection {
    enum FrameType: UInt8 {
        case data = 0, headers = 1, priority = 2, rstStream = 3, settings = 4, pushPromise = 5, ping = 6, goAway = 7, windowUpdate = 8,
            continuation = 9
    }

    enum Flag {
        static let endStream: UInt8 = 0x1
        static let ack: UInt8 = 0x1
        static let endHeaders: UInt8 = 0x4
    }

    /// RFC 9113 §7.
    enum ErrorCode {
        static let noError: UInt32 = 0x0
        static let protocolError: UInt32 = 0x1
        static let cancel: UInt32 = 0x8
        static let refusedStream: UInt32 = 0x7
        static let enhanceYourCalm: UInt32 = 0xb
    }

    /// RFC 9113 §6.5.2.
    enum Setting {
        static let maxConcurrentStreams: UInt16 = 0x3
        static let initialWindowSize: UInt16 = 0x4
        static let maxHeaderListSize: UInt16 = 0x6
    }

    struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
        /// The decoded header block, on the frame that ended it (END_HEADERS). Blocks are
        /// decoded as they arrive: HPACK's table follows the order of the connection, not of a
        /// stream.
        var headers: [(name: String, value: String)]?

        var kind: FrameType? { FrameType(rawValue: self.type) }
        func has(_ flag: UInt8) -> Bool { self.flags & flag != 0 }
        /// The error code of RST_STREAM or GOAWAY.
        var errorCode: UInt32? {
            switch self.kind {
            case .rstStream: Self.uint32(self.payload, at: 0)
            case .goAway: Self.uint32(self.payload, at: 4)
            default: nil
            }
        }

        static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    enum Failure: Error, CustomStringConvertible {
        case reset(stream: UInt32, code: UInt32)
        case goAway(lastStreamID: UInt32, code: UInt32)
        case protocolViolation(String)
        var description: String {
            switch self {
            case .reset(let stream, let code): "stream \(stream) reset with error code \(code)"
            case .goAway(let last, let code): "GOAWAY, last stream \(last), error code \(code)"
            case .protocolViolation(let why): why
            }
        }
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    let socket: RawHTTPConnection
    /// Acknowledge PING and SETTINGS and open the windows again as DATA arrives, like a real
    /// client; attacks turn parts of that off.
    var answersPings = true
    var answersSettings = true
    var opensWindows = true
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    /// A header block still waiting for its CONTINUATION frames.
    private var headerBlock: [UInt8] = []
    private var nextStream: UInt32 = 1
    /// Frames of streams other than the one being read, kept for their own reads.
    private var pending: [UInt32: [Frame]] = [:]
    private(set) var goAway: (lastStreamID: UInt32, code: UInt32)?
    private(set) var serverSettings: [UInt16: UInt32] = [:]
    private(set) var pingAcknowledgements = 0

    init(port: Int, receiveTimeout: Double = 10) throws {
        self.socket = try RawHTTPConnection(port: port, receiveTimeout: receiveTimeout)
    }

    /// Sends the preface and SETTINGS, and reads until the gateway's SETTINGS (acknowledged).
    func handshake(settings: [(UInt16, UInt32)] = []) throws {
        try self.socket.send(Self.preface + Self.settingsFrame(settings))
        while self.serverSettings.isEmpty {
            _ = try self.readFrame()
        }
    }

    /// A stream id for a new request.
    func newStream() -> UInt32 {
        defer { self.nextStream += 2 }
        return self.nextStream
    }

    // MARK: - Frames out

    static func frame(_ type: FrameType, flags: UInt8 = 0, stream: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type.rawValue, flags]
            + Self.bytes(stream & 0x7fff_ffff) + payload
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    static func settingsFrame(_ settings: [(UInt16, UInt32)]) -> [UInt8] {
        Self.frame(.settings, stream: 0, settings.flatMap { [UInt8($0.0 >> 8), UInt8($0.0 & 0xff)] + Self.bytes($0.1) })
    }

    static func rstStream(_ stream: UInt32, code: UInt32 = ErrorCode.cancel) -> [UInt8] {
        Self.frame(.rstStream, stream: stream, Self.bytes(code))
    }

    static func windowUpdate(_ stream: UInt32, increment: UInt32) -> [UInt8] {
        Self.frame(.windowUpdate, stream: stream, Self.bytes(increment))
    }

    static func ping(_ data: UInt64, ack: Bool = false) -> [UInt8] {
        Self.frame(.ping, flags: ack ? Flag.ack : 0, stream: 0, (0..<8).map { UInt8(data >> (56 - 8 * $0) & 0xff) })
    }

    /// RFC 7541 §5.1: an integer with an N-bit prefix.
    static func integer(_ value: Int, prefixBits: Int, firstByte: UInt8 = 0) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else { return [firstByte | UInt8(value)] }
        var bytes = [firstByte | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    /// Each field a literal without indexing with a literal name (RFC 7541 §6.2.2), not Huffman coded.
    static func headerBlock(_ fields: [(String, String)]) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in fields {
            block.append(0x00)
            block += Self.integer(name.utf8.count, prefixBits: 7) + Array(name.utf8)
            block += Self.integer(value.utf8.count, prefixBits: 7) + Array(value.utf8)
        }
        return block
    }

    static func requestFields(_ method: String, _ path: String, authority: String = "gateway.test", headers: [(String, String)] = []) -> [(String, String)] {
        [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)] + headers.map { ($0.0.lowercased(), $0.1) }
    }

    func send(_ bytes: [UInt8]) throws {
        try self.socket.send(bytes)
    }

    /// Opens a stream with a request head (and body); returns the stream id.
    @discardableResult
    func sendRequest(
        _ method: String = "GET", _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, endStream: Bool = true, stream: UInt32? = nil
    ) throws -> UInt32 {
        let id = stream ?? self.newStream()
        let block = Self.headerBlock(Self.requestFields(method, path, headers: headers))
        // SETTINGS_MAX_FRAME_SIZE is 16,384 unless the gateway says otherwise (it does not).
        let pieces = stride(from: 0, to: max(block.count, 1), by: 16_384).map { Array(block[$0..<min($0 + 16_384, block.count)]) }
        let endStreamFlag = body == nil && endStream ? Flag.endStream : 0
        var bytes: [UInt8] = []
        for (index, piece) in pieces.enumerated() {
            let endHeaders = index == pieces.count - 1 ? Flag.endHeaders : 0
            bytes += index == 0 ? Self.frame(.headers, flags: endHeaders | endStreamFlag, stream: id, piece) : Self.frame(.continuation, flags: endHeaders, stream: id, piece)
        }
        if let body { bytes += Self.frame(.data, flags: endStream ? Flag.endStream : 0, stream: id, body) }
        try self.send(bytes)
        return id
    }

    // MARK: - Frames in

    /// The next frame; answers PING and SETTINGS, and gives DATA's bytes back to both windows,
    /// unless told not to.
    func readFrame() throws -> Frame {
        let header = try self.socket.readBytes(9)
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        var frame = Frame(
            type: header[3], flags: header[4], stream: Frame.uint32(header, at: 5) & 0x7fff_ffff, payload: try self.socket.readBytes(length)
        )
        switch frame.kind {
        case .headers, .continuation:
            self.headerBlock += frame.payload
            if frame.has(Flag.endHeaders) {
                var buffer = ByteBuffer(bytes: self.headerBlock)
                self.headerBlock = []
                frame.headers = try self.decoder.decodeHeaders(from: &buffer).map { ($0.name, $0.value) }
            }
        case .settings where !frame.has(Flag.ack):
            for offset in stride(from: 0, to: frame.payload.count, by: 6) {
                self.serverSettings[UInt16(frame.payload[offset]) << 8 | UInt16(frame.payload[offset + 1])] = Frame.uint32(frame.payload, at: offset + 2)
            }
            if self.serverSettings.isEmpty { self.serverSettings[0] = 0 }
            if self.answersSettings { try self.send(Self.frame(.settings, flags: Flag.ack, stream: 0)) }
        case .ping where !frame.has(Flag.ack):
            if self.answersPings { try self.send(Self.frame(.ping, flags: Flag.ack, stream: 0, frame.payload)) }
        case .ping:
            self.pingAcknowledgements += 1
        case .goAway:
            self.goAway = (Frame.uint32(frame.payload, at: 0) & 0x7fff_ffff, Frame.uint32(frame.payload, at: 4))
        case .data where self.opensWindows && !frame.payload.isEmpty:
            let increment = UInt32(frame.payload.count)
            try? self.send(Self.windowUpdate(0, increment: increment) + Self.windowUpdate(frame.stream, increment: increment))
        default:
            break
        }
        return frame
    }

    /// Reads the response of `stream`, keeping other streams' frames for their own reads.
    func readResponse(_ stream: UInt32, onData: (([UInt8]) -> Void)? = nil, keepBody: Bool = true) throws -> RawHTTPConnection.Response {
        var response = RawHTTPConnection.Response(status: 0, headers: [], body: [])
        while true {
            let frame: Frame
            if var kept = self.pending[stream], !kept.isEmpty {
                frame = kept.removeFirst()
                self.pending[stream] = kept
            } else {
                frame = try self.readFrame()
                if frame.stream == 0 {
                    if frame.kind == .goAway, let goAway = self.goAway, goAway.code != ErrorCode.noError || goAway.lastStreamID < stream {
                        throw Failure.goAway(lastStreamID: goAway.lastStreamID, code: goAway.code)
                    }
                    continue
                }
                if frame.stream != stream {
                    self.pending[frame.stream, default: []].append(frame)
                    continue
                }
            }
            switch frame.kind {
            case .headers, .continuation:
                guard let headers = frame.headers else { continue }
                let status = Int(headers.first { $0.name == ":status" }?.value ?? "") ?? 0
                if response.status == 0 || (100..<200).contains(response.status) {
                    response.status = status
                    response.headers = headers.filter { !$0.name.hasPrefix(":") }.map { ($0.name, $0.value) }
                }
                if frame.has(Flag.endStream), !(100..<200).contains(response.status) { return response }
            case .data:
                onData?(frame.payload)
                if keepBody { response.body += frame.payload }
                if frame.has(Flag.endStream) { return response }
            case .rstStream:
                throw Failure.reset(stream: stream, code: frame.errorCode ?? 0)
            default:
                continue
            }
        }
    }

    /// Reads until the gateway closes the connection, at most `seconds`; the frames read, and
    /// whether it closed.
    func readUntilClosed(seconds: Double) -> (frames: [Frame], closed: Bool) {
        self.socket.setReceiveTimeout(seconds)
        let deadline = Date().addingTimeInterval(seconds)
        var frames: [Frame] = []
        while Date() < deadline {
            do {
                frames.append(try self.readFrame())
            } catch RawHTTPConnection.Failure.closedBeforeResponse {
                return (frames, true)
            } catch {
                return (frames, self.socket.peerClosed)
            }
        }
        return (frames, false)
    }
}
