// CPU per request of reading a client's request: the gateway's `ClientRequestDecoder` against
// SwiftNIO's `HTTPRequestDecoder` under a `ByteToMessageHandler` (what the gateway used before),
// each alone in an `EmbeddedChannel`, fed the same bytes one request per read (bench/request-decode.sh).
import NIOCore
import NIOEmbedded
import NIOHTTP1
@_spi(Benchmarks) import ProxyEngine

#if canImport(Glibc)
import Glibc
#endif

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
let rounds = 5
// A bearer token the size of bench/compare.sh's RS256 tokens.
let token = String(repeating: "h", count: 36) + "." + String(repeating: "p", count: 300) + "." + String(repeating: "s", count: 342)
let requests: [(name: String, bytes: String)] = [
    ("GET with a bearer token (bench/compare.sh's request)",
     "GET /v1/ledger HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer \(token)\r\n\r\n"),
    ("POST, seven fields, 64-byte body",
     "POST /v1/ledger/entries?batch=7 HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer \(token)\r\n"
        + "Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: erp-client/4.2\r\n"
        + "X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\nContent-Length: 64\r\n\r\n" + String(repeating: "x", count: 64)),
    ("PUT, chunked body of three chunks and a trailer",
     "PUT /v1/documents/77 HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "10\r\n0123456789abcdef\r\n8\r\n01234567\r\n4\r\n0123\r\n0\r\nX-Checksum: 42\r\n\r\n"),
]

/// User and system CPU of this process so far, µs.
func cpuMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

/// ns of CPU per request read through `handler`, with the parts read back off the channel.
func measure(_ handler: any ChannelHandler, _ request: String, _ count: Int) throws -> Double {
    let channel = EmbeddedChannel(handler: handler)
    defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
    let bytes = channel.allocator.buffer(string: request)
    var parts = 0
    let start = cpuMicroseconds()
    for _ in 0..<count {
        try channel.writeInbound(bytes)
        while try channel.readInbound(as: Any.self) != nil { parts += 1 }  // each decoder's own part type
    }
    let elapsed = cpuMicroseconds() - start
    precondition(parts >= 2 * count, "every request read whole")
    return elapsed * 1000 / Double(count)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// What the channel's hand-over costs without decoding: every read answered with a head and an
/// end made once, as a decoder would hand them on. Subtracted from both, it leaves decoding.
final class HandOverOnly: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart
    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/ledger", headers: ["host": "gateway.test"])
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(self.wrapInboundOut(.head(self.head)))
        context.fireChannelRead(self.wrapInboundOut(.end(nil)))
    }
}

print("ns of CPU per request read (median of \(rounds) interleaved rounds of \(iterations) requests each; one request per read):")
for request in requests {
    var ours: [Double] = []
    var theirs: [Double] = []
    var handOver: [Double] = []
    _ = try measure(makeClientRequestDecoder(maxHeadBytes: 80 * 1024), request.bytes, iterations / 10)  // warm-up
    _ = try measure(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), request.bytes, iterations / 10)
    for _ in 0..<rounds {
        ours.append(try measure(makeClientRequestDecoder(maxHeadBytes: 80 * 1024), request.bytes, iterations))
        theirs.append(try measure(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), request.bytes, iterations))
        handOver.append(try measure(HandOverOnly(), request.bytes, iterations))
    }
    let a = median(ours), b = median(theirs), c = median(handOver)
    print("  \(request.name) (\(request.bytes.utf8.count) bytes):")
    print("    ClientRequestDecoder                          \(String(format: "%7.0f", a))  (rounds: \(ours.map { String(format: "%.0f", $0) }.joined(separator: " ")))")
    print("    SwiftNIO HTTPRequestDecoder + ByteToMessage   \(String(format: "%7.0f", b))  (rounds: \(theirs.map { String(format: "%.0f", $0) }.joined(separator: " ")))")
    print("    the channel's hand-over alone                 \(String(format: "%7.0f", c))")
    print("    ratio \(String(format: "%.2f", a / b)); decoding alone (less the hand-over) \(String(format: "%.0f", a - c)) against \(String(format: "%.0f", b - c)): \(String(format: "%.2f", (a - c) / (b - c)))")
}
