import Foundation
import UpstreamFixtures
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client over a plain socket, for tests that must control every byte on the
/// wire (smuggling attempts, pipelining, slow clients) and see exactly what comes back.
final class RawHTTPConnection {
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        func headerValues(_ name: String) -> [String] {
            self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }

        var text: String { String(decoding: self.body, as: UTF8.self) }

        func json() throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(self.body)) as? [String: Any] ?? [:]
        }
    }

    enum Failure: Error, CustomStringConvertible {
        case connect(Int32), closedBeforeResponse, timeout, malformed(String)
        var description: String {
            switch self {
            case .connect(let errno): "connect failed: errno \(errno)"
            case .closedBeforeResponse: "connection closed before a complete response"
            case .timeout: "timed out waiting for the response"
            case .malformed(let why): "malformed response: \(why)"
            }
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var peerClosed = false

    /// Sends FIN: the client will write nothing more but still reads.
    func shutdownWrite() {
        _ = Glibc.shutdown(self.fd, Int32(SHUT_WR))
    }

    init(port: Int, receiveTimeout: Double = 30) throws {
        self.fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            close(self.fd)
            throw Failure.connect(error)
        }
        self.setReceiveTimeout(receiveTimeout)
    }

    deinit { close(self.fd) }

    func setReceiveTimeout(_ seconds: Double) {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws { try self.send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { throw Failure.closedBeforeResponse }
            offset += written
        }
    }

    /// Sends `count` bytes of `BytePattern` without holding them all in memory.
    func sendPattern(count: Int) throws {
        var sent = 0
        while sent < count {
            let size = min(count - sent, BytePattern.maxChunk)
            try BytePattern.withBytes(at: sent, count: size) { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.send(self.fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                    if written <= 0 { throw Failure.closedBeforeResponse }
                    offset += written
                }
            }
            sent += size
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        let received = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        if received == 0 {
            self.peerClosed = true
            throw Failure.closedBeforeResponse
        }
        if received < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure.timeout }
            self.peerClosed = true
            throw Failure.closedBeforeResponse
        }
        self.buffer.append(contentsOf: chunk[0..<received])
    }

    private func readLine() throws -> String {
        while true {
            if let index = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(self.buffer[..<index])
                self.buffer.removeFirst(index + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            try self.fill()
        }
    }

    private func readExactly(_ count: Int, consume: ([UInt8]) -> Void) throws {
        var remaining = count
        while remaining > 0 {
            if self.buffer.isEmpty { try self.fill() }
            let take = min(remaining, self.buffer.count)
            consume(Array(self.buffer[0..<take]))
            self.buffer.removeFirst(take)
            remaining -= take
        }
    }

    /// Reads one response. `keepBody: false` streams the body through `onBody` without keeping it.
    func readResponse(forHEAD: Bool = false, keepBody: Bool = true, onBody: (([UInt8]) -> Void)? = nil) throws -> Response {
        var statusLine = try self.readLine()
        var status = 0
        var headers: [(String, String)] = []
        repeat {
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else { throw Failure.malformed(statusLine) }
            status = code
            headers = []
            while true {
                let line = try self.readLine()
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed(line) }
                headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            if status >= 100 && status < 200 { statusLine = try self.readLine() }
        } while status >= 100 && status < 200
        var response = Response(status: status, headers: headers, body: [])
        let sink: ([UInt8]) -> Void = { bytes in
            onBody?(bytes)
            if keepBody { response.body.append(contentsOf: bytes) }
        }
        if forHEAD || status == 204 || status == 304 { return response }
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try self.readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw Failure.malformed("chunk size \(sizeLine)") }
                if size == 0 {
                    while try !self.readLine().isEmpty {}
                    break
                }
                try self.readExactly(size, consume: sink)
                _ = try self.readLine()
            }
        } else if let length = response.header("content-length").flatMap({ Int($0) }) {
            try self.readExactly(length, consume: sink)
        } else {
            while true {
                do { try self.fill() } catch Failure.closedBeforeResponse { break }
                sink(self.buffer)
                self.buffer.removeAll()
            }
        }
        return response
    }

    /// One response head, a `1xx` included (a `101` is the last HTTP on its connection), without
    /// its body.
    func readHead() throws -> Response {
        let statusLine = try self.readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { throw Failure.malformed(statusLine) }
        var headers: [(String, String)] = []
        while true {
            let line = try self.readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed(line) }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return Response(status: status, headers: headers, body: [])
    }

    /// Exactly `count` raw bytes (another protocol over the same socket: `RawHTTP2Connection`).
    func readBytes(_ count: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        try self.readExactly(count) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// True when the server has closed its side: a read returns end-of-file within `seconds`.
    func waitForClose(seconds: Double) -> Bool {
        self.setReceiveTimeout(seconds)
        while true {
            do { try self.fill() } catch Failure.closedBeforeResponse { return true } catch { return false }
        }
    }
}

/// Convenience for the common case: one request on a fresh connection.
func request(port: Int, _ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil) throws -> RawHTTPConnection.Response {
    let connection = try RawHTTPConnection(port: port)
    try connection.send(requestText(method, target, headers: headers, body: body))
    return try connection.readResponse(forHEAD: method == "HEAD")
}

func requestText(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil) -> String {
    var text = "\(method) \(target) HTTP/1.1\r\n"
    if !headers.contains(where: { $0.0.lowercased() == "host" }) { text += "Host: gateway.test\r\n" }
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
    text += "\r\n"
    if let body { text += body }
    return text
}
