import NIOCore
import NIOHTTP1

@testable import ProxyEngine

extension FieldSection {
    /// `headers` as a parser keeps fields it read: their `name: value` lines as bytes, each
    /// name and value found in them. Unlike a head run through a parser, any fields may be
    /// made so (two lengths, a length that is no number), for the rules that judge them.
    static func received(_ headers: HTTPHeaders) -> FieldSection {
        var bytes = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        var lines: [Line] = []
        for (name, value) in headers {
            let start = Int32(bytes.writerIndex)
            bytes.writeString(name)
            bytes.writeString(": ")
            let valueStart = Int32(bytes.writerIndex)
            bytes.writeString(value)
            lines.append(Line(nameStart: start, nameEnd: start + Int32(name.utf8.count), valueStart: valueStart, valueEnd: Int32(bytes.writerIndex)))
            bytes.writeString("\r\n")
        }
        bytes.writeString("\r\n")
        return FieldSection(received: bytes, lines: lines)
    }
}

extension RelayedRequestHead {
    /// `head` with its fields kept as received (`FieldSection.received`), as an HTTP/1.1
    /// client's head reaches the phases.
    static func received(_ head: HTTPRequestHead) -> RelayedRequestHead {
        RelayedRequestHead(version: head.version, method: head.method, uri: head.uri, fields: .received(head.headers))
    }

    /// The head as SwiftNIO's type, its fields made strings.
    var nioHead: HTTPRequestHead {
        HTTPRequestHead(version: self.version, method: self.method, uri: self.uri, headers: self.fields.headers)
    }

    /// The fields made strings, in order.
    var headers: HTTPHeaders { self.fields.headers }
}
