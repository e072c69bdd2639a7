import Foundation

/// The protocol a test's requests travel over. The same cases run over both through curl, a real
/// client (Debian's, built with nghttp2): `--http1.1`, or HTTP/2 with prior knowledge (h2c).
enum WireProtocol: String, CaseIterable {
    case http1 = "HTTP/1.1"
    case http2 = "HTTP/2"

    var curlOption: String {
        switch self {
        case .http1: "--http1.1"
        case .http2: "--http2-prior-knowledge"
        }
    }
}

/// One request with curl on a fresh connection, answered as `RawHTTPConnection.Response`, so the
/// assertions of the HTTP/1.1 tests apply unchanged. The target goes as written (`--path-as-is`);
/// `Host` is `gateway.test` unless given. `upload` names a file sent as the body.
func curlRequest(
    _ wire: WireProtocol, port: Int, _ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil,
    upload: String? = nil, file: StaticString = #filePath, line: UInt = #line
) throws -> RawHTTPConnection.Response {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-curl-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let headerFile = directory.appendingPathComponent("headers").path
    let bodyFile = directory.appendingPathComponent("body").path
    var arguments = ["-sS", "--path-as-is", "--max-time", "60", wire.curlOption, "-X", method, "-D", headerFile, "-o", bodyFile]
    if !headers.contains(where: { $0.0.lowercased() == "host" }) { arguments += ["-H", "Host: gateway.test"] }
    for (name, value) in headers { arguments += ["-H", value.isEmpty ? "\(name);" : "\(name): \(value)"] }
    if let body { arguments += ["--data-binary", body] }
    if let upload { arguments += ["--data-binary", "@\(upload)"] }
    arguments.append("http://127.0.0.1:\(port)\(target)")
    let (status, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/curl"), arguments)
    guard status == 0 else { throw RawHTTPConnection.Failure.malformed("curl \(wire.rawValue) exited with \(status): \(output)") }
    // The last header section is the final answer (after any 1xx).
    let sections = try String(contentsOfFile: headerFile, encoding: .utf8).components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
    guard let last = sections.last else { throw RawHTTPConnection.Failure.malformed("no header section") }
    let lines = last.components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), let code = Int(statusParts[1]) else {
        throw RawHTTPConnection.Failure.malformed(lines[0])
    }
    var response = RawHTTPConnection.Response(status: code, headers: [], body: [])
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        response.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    response.body = Array((try? Data(contentsOf: URL(fileURLWithPath: bodyFile))) ?? Data())
    if wire == .http2, !lines[0].hasPrefix("HTTP/2") { throw RawHTTPConnection.Failure.malformed("not answered over HTTP/2: \(lines[0])") }
    return response
}
