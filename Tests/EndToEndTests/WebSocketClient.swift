import Foundation

/// A WebSocket client over a plain socket (`RawHTTPConnection`): the handshake as text, frames
/// masked as a client's must be. Blocking, one frame at a time: what a test needs to see every
/// byte the gateway relays.
final class WebSocketClient {
    let connection: RawHTTPConnection
    /// The answer to the handshake: `101`, or a problem with its body.
    let response: RawHTTPConnection.Response

    struct Frame: Equatable {
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: self.payload, as: UTF8.self) }
        /// A close frame's status code.
        var closeCode: UInt16? {
            guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
            return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
        }
    }

    /// Sends a handshake for `path` offering `protocols` (a bearer entry among them, if wanted)
    /// with `headers` added, and reads the answer.
    init(port: Int, path: String, protocols: [String] = [], headers: [(String, String)] = [], receiveTimeout: Double = 5) throws {
        self.connection = try RawHTTPConnection(port: port, receiveTimeout: receiveTimeout)
        var fields = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        if !protocols.isEmpty { fields.append(("Sec-WebSocket-Protocol", protocols.joined(separator: ", "))) }
        try self.connection.send(requestText("GET", path, headers: fields + headers))
        var response = try self.connection.readHead()
        if response.status != 101, let length = response.header("content-length").flatMap(Int.init) {
            response.body = try self.connection.readBytes(length)
        }
        self.response = response
    }

    var switched: Bool { self.response.status == 101 }

    func send(text: String) throws {
        try self.send(opcode: 0x1, payload: Array(text.utf8))
    }

    func sendClose(code: UInt16) throws {
        try self.send(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xff)])
    }

    func send(opcode: UInt8, payload: [UInt8]) throws {
        var bytes: [UInt8] = [0x80 | opcode]
        let mask: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        if payload.count < 126 {
            bytes.append(0x80 | UInt8(payload.count))
        } else {
            precondition(payload.count <= 0xffff)
            bytes += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        }
        bytes += mask
        bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try self.connection.send(bytes)
    }

    /// The next frame from the gateway (unmasked, as a server's).
    func readFrame() throws -> Frame {
        let head = try self.connection.readBytes(2)
        var length = Int(head[1] & 0x7f)
        if length == 126 {
            let extended = try self.connection.readBytes(2)
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            length = try self.connection.readBytes(8).reduce(0) { $0 << 8 | Int($1) }
        }
        var mask: [UInt8]?
        if head[1] & 0x80 != 0 { mask = try self.connection.readBytes(4) }
        var payload = try self.connection.readBytes(length)
        if let mask { payload = payload.enumerated().map { $0.element ^ mask[$0.offset % 4] } }
        return Frame(opcode: head[0] & 0x0f, payload: payload)
    }

    /// Sends `text` and returns the next text frame that comes back.
    func echo(_ text: String) throws -> String {
        try self.send(text: text)
        return try self.readFrame().text
    }
}
