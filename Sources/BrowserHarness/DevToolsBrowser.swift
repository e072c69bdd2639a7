import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `chromium`, headless, driven over the Chrome DevTools Protocol: one page navigated,
/// evaluated, typed into and photographed by a test, for pages that need more than one result
/// (the console's screens).
///
/// The protocol is JSON messages over a WebSocket; swift-nio's WebSocket client upgrade carries
/// it, so no driver binary (chromedriver) or client library is needed. The browser is started
/// like `HeadlessChromium` — a process group of its own, a throw-away profile — with
/// `--remote-debugging-port=0`; the port it picked is read from the profile's `DevToolsActivePort`.
public final class DevToolsBrowser: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let process: Process
    private let profile: URL
    private let connection: DevToolsConnection
    /// The page's flattened session: commands for the page carry its id.
    private let session: String

    public static let viewport = (width: 1280, height: 800)

    private init(process: Process, profile: URL, connection: DevToolsConnection, session: String) {
        self.process = process
        self.profile = profile
        self.connection = connection
        self.session = session
    }

    /// Starts the browser on `about:blank` with a 1280×800 viewport; nil when chromium is not
    /// installed.
    public static func launch(group: any EventLoopGroup, timeout: Double = 30) async throws -> DevToolsBrowser? {
        guard let chromium = HeadlessChromium() else { return nil }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-cdp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let log = profile.appendingPathComponent("browser.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium.executable)
        process.arguments = [
            "--headless", "--remote-debugging-port=0", "--no-sandbox", "--user-data-dir=\(profile.path)",
            "--disable-breakpad", "--disable-crash-reporter", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--hide-scrollbars", "--window-size=\(Self.viewport.width),\(Self.viewport.height)", "about:blank",
        ]
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? output.close()

        func fail(_ why: String) -> Failure {
            HeadlessChromium.stopGroup(of: process)
            let printed = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: profile)
            return Failure(description: "\(why); the browser printed:\n\(printed.suffix(3000))")
        }

        // The port file appears once the browser listens: its first line is the port, the
        // second the browser target's WebSocket path.
        let portFile = profile.appendingPathComponent("DevToolsActivePort")
        let deadline = Date().addingTimeInterval(timeout)
        var lines: [Substring] = []
        while Date() < deadline, process.isRunning {
            if let text = try? String(contentsOf: portFile, encoding: .utf8) {
                lines = text.split(separator: "\n")
                if lines.count >= 2 { break }
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        guard lines.count >= 2, let port = Int(lines[0]) else { throw fail("no DevToolsActivePort within \(timeout) s") }

        let connection: DevToolsConnection
        do {
            connection = try await DevToolsConnection.connect(port: port, path: String(lines[1]), group: group)
        } catch {
            throw fail("cannot open the DevTools WebSocket: \(error)")
        }
        do {
            let targets = try await connection.send("Target.getTargets", [:])
            let infos = (targets["targetInfos"] as? [[String: Any]]) ?? []
            guard let page = infos.first(where: { $0["type"] as? String == "page" })?["targetId"] as? String else {
                throw Failure(description: "the browser has no page: \(infos)")
            }
            let attached = try await connection.send("Target.attachToTarget", ["targetId": page, "flatten": true])
            guard let session = attached["sessionId"] as? String else { throw Failure(description: "no session for the page") }
            let browser = DevToolsBrowser(process: process, profile: profile, connection: connection, session: session)
            for method in ["Page.enable", "Runtime.enable", "Log.enable"] { _ = try await browser.send(method) }
            _ = try await browser.send("Emulation.setDeviceMetricsOverride", [
                "width": Self.viewport.width, "height": Self.viewport.height, "deviceScaleFactor": 1, "mobile": false,
            ])
            return browser
        } catch {
            await connection.close()
            throw fail("cannot attach to the page: \(error)")
        }
    }

    /// One command to the page; its `result`.
    @discardableResult
    public func send(_ method: String, _ parameters: [String: Any] = [:]) async throws -> [String: Any] {
        try await self.connection.send(method, parameters, session: self.session)
    }

    /// Opens `url` and waits until its document has loaded.
    public func navigate(_ url: String, timeout: Double = 20) async throws {
        _ = try await self.send("Page.navigate", ["url": url])
        try await self.waitFor("document.readyState === 'complete' && location.href.startsWith(\(Self.literal(url)))", timeout: timeout)
    }

    /// The value of a JavaScript expression in the page (a promise is awaited), as JSON values
    /// (`String`, `NSNumber`, `Bool`, arrays, dictionaries; nil for `undefined` or `null`).
    /// An exception thrown by the expression is thrown here with its text.
    public func evaluate(_ expression: String) async throws -> Any? {
        let answer = try await self.send("Runtime.evaluate", ["expression": expression, "awaitPromise": true, "returnByValue": true])
        if let exception = answer["exceptionDetails"] as? [String: Any] {
            let detail = ((exception["exception"] as? [String: Any])?["description"] as? String) ?? (exception["text"] as? String) ?? "\(exception)"
            throw Failure(description: "the page threw: \(detail)\nwhile evaluating: \(expression.prefix(300))")
        }
        return (answer["result"] as? [String: Any])?["value"]
    }

    /// Polls `condition` (a JavaScript expression) until it is true; throws after `timeout`
    /// seconds with the page's text, so a test fails with what the page showed instead.
    public func waitFor(_ condition: String, timeout: Double = 10) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                if try await self.evaluate("Boolean(\(condition))") as? Bool == true { return }
                lastError = nil
            } catch {
                lastError = error
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let text = (try? await self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")) as? String ?? ""
        throw Failure(description: "\(condition) did not become true within \(timeout) s\(lastError.map { " (\($0))" } ?? ""); the page shows:\n\(text)")
    }

    /// Types `text` into the element `selector` finds, replacing what it holds, as a user's
    /// keyboard does (the page gets its input events). False when the element does not take
    /// the focus (a disabled field): nothing is typed then.
    @discardableResult
    public func type(_ selector: String, _ text: String) async throws -> Bool {
        // Emptied first the way a user's select-all and delete would: the value and an input event.
        let focused = try await self.evaluate("""
            (() => { const e = document.querySelector(\(Self.literal(selector))); e.focus();
              if (document.activeElement !== e) return false;
              e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true })); return true; })()
            """) as? Bool ?? false
        if focused, !text.isEmpty { _ = try await self.send("Input.insertText", ["text": text]) }
        return focused
    }

    /// Clicks the element `selector` finds.
    public func click(_ selector: String) async throws {
        _ = try await self.evaluate("document.querySelector(\(Self.literal(selector))).click()")
    }

    /// Chooses `paths` in the `<input type=file>` that `selector` finds, as a user picking files
    /// in the dialog does (the page gets its change event and reads them with a FileReader).
    public func chooseFiles(_ selector: String, _ paths: [String]) async throws {
        let found = try await self.send("Runtime.evaluate", ["expression": "document.querySelector(\(Self.literal(selector)))"])
        guard let objectID = (found["result"] as? [String: Any])?["objectId"] as? String else {
            throw Failure(description: "no element \(selector) to choose files in")
        }
        _ = try await self.send("DOM.setFileInputFiles", ["files": paths, "objectId": objectID])
    }

    /// A PNG of the viewport, written to `path` (its directory is created).
    public func screenshot(to path: String) async throws {
        let answer = try await self.send("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": false])
        guard let base64 = answer["data"] as? String, let data = Data(base64Encoded: base64) else { throw Failure(description: "no screenshot data") }
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// What the page logged as errors and the exceptions it did not catch (Content-Security-
    /// Policy violations are among them), oldest first.
    public var errors: [String] { self.connection.pageErrors }

    /// Stops the browser's process group and removes its profile.
    public func close() async {
        await self.connection.close()
        HeadlessChromium.stopGroup(of: self.process)
        try? FileManager.default.removeItem(at: self.profile)
    }

    /// The same, for a synchronous teardown (a test class's): the WebSocket closes with the
    /// browser.
    public func closeNow() {
        HeadlessChromium.stopGroup(of: self.process)
        try? FileManager.default.removeItem(at: self.profile)
    }

    /// `text` as a JavaScript string literal.
    public static func literal(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}

/// One DevTools WebSocket: commands numbered, each answered by the message with its id; events
/// are looked at only for the page's errors.
final class DevToolsConnection: Sendable {
    private struct State {
        var nextID = 1
        var pending: [Int: CheckedContinuation<Data, any Error>] = [:]
        var errors: [String] = []
        var closed = false
    }

    private let state = NIOLockedValueBox(State())
    private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

    var pageErrors: [String] { self.state.withLockedValue { $0.errors } }

    static func connect(port: Int, path: String, group: any EventLoopGroup) async throws -> DevToolsConnection {
        let connection = DevToolsConnection()
        let upgraded = group.next().makePromise(of: Void.self)
        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 26, automaticErrorHandling: true) { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                // Screenshots are large messages; the browser may send them in fragments.
                try channel.pipeline.syncOperations.addHandler(
                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: 1 << 27)
                )
                try channel.pipeline.syncOperations.addHandler(DevToolsFrameHandler(connection: connection))
                upgraded.succeed()
            }
        }
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers(withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
            }
            .connect(host: "127.0.0.1", port: port).get()
        connection.channel.withLockedValue { $0 = channel }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1:\(port)")
        headers.add(name: "Content-Length", value: "0")
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        channel.closeFuture.whenComplete { _ in
            upgraded.fail(DevToolsBrowser.Failure(description: "the DevTools connection closed before its upgrade"))
        }
        try await upgraded.futureResult.get()
        return connection
    }

    func send(_ method: String, _ parameters: [String: Any], session: String? = nil) async throws -> [String: Any] {
        guard let channel = self.channel.withLockedValue({ $0 }) else { throw DevToolsBrowser.Failure(description: "not connected") }
        let id = self.state.withLockedValue { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if let session { message["sessionId"] = session }
        let bytes = try JSONSerialization.data(withJSONObject: message)
        let reply: Data = try await withCheckedThrowingContinuation { continuation in
            let closed = self.state.withLockedValue { state -> Bool in
                if state.closed { return true }
                state.pending[id] = continuation
                return false
            }
            if closed { return continuation.resume(throwing: DevToolsBrowser.Failure(description: "the DevTools connection is closed")) }
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: channel.allocator.buffer(bytes: bytes))
            channel.writeAndFlush(frame).whenFailure { error in
                self.state.withLockedValue { $0.pending.removeValue(forKey: id) }?.resume(throwing: error)
            }
        }
        let object = (try JSONSerialization.jsonObject(with: reply)) as? [String: Any] ?? [:]
        if let error = object["error"] as? [String: Any] {
            throw DevToolsBrowser.Failure(description: "\(method): \(error["message"] ?? error)")
        }
        return object["result"] as? [String: Any] ?? [:]
    }

    /// One message from the browser: an answer, or an event.
    func received(_ data: Data) {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return }
        if let id = object["id"] as? Int {
            self.state.withLockedValue { $0.pending.removeValue(forKey: id) }?.resume(returning: data)
            return
        }
        let parameters = object["params"] as? [String: Any] ?? [:]
        switch object["method"] as? String {
        case "Runtime.exceptionThrown":
            let details = parameters["exceptionDetails"] as? [String: Any] ?? [:]
            let text = ((details["exception"] as? [String: Any])?["description"] as? String) ?? (details["text"] as? String) ?? "exception"
            self.state.withLockedValue { $0.errors.append(text) }
        case "Page.javascriptDialogOpening":
            // A dialog the page opened (`alert`): a test of text rendering wants none.
            self.state.withLockedValue { $0.errors.append("dialog: \(parameters["message"] ?? "")") }
        case "Log.entryAdded":
            let entry = parameters["entry"] as? [String: Any] ?? [:]
            if entry["level"] as? String == "error" {
                self.state.withLockedValue { $0.errors.append("\(entry["source"] ?? ""): \(entry["text"] ?? "")") }
            }
        default:
            break
        }
    }

    func closed() {
        let pending = self.state.withLockedValue { state -> [CheckedContinuation<Data, any Error>] in
            state.closed = true
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for continuation in pending { continuation.resume(throwing: DevToolsBrowser.Failure(description: "the DevTools connection closed")) }
    }

    func close() async {
        let channel = self.channel.withLockedValue { $0 }
        try? await channel?.close()
        self.closed()
    }
}

private final class DevToolsFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: DevToolsConnection

    init(connection: DevToolsConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var payload = frame.unmaskedData
            self.connection.received(Data(payload.readBytes(length: payload.readableBytes) ?? []))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connection.closed()
        context.fireChannelInactive()
    }
}
