import BrowserHarness
import Foundation
import NIOPosix
import XCTest

/// Browser tests: pages served from a loopback origin (`PageServer`) opened in headless Chromium,
/// calling the real gateway with `fetch` the way an OEM web app does. Skipped where Debian's
/// `chromium` is not installed (scripts/install-deps.sh installs it; CI runs these).
class BrowserTestCase: GatewayTestCase {
    var pages: PageServer!
    var browser: HeadlessChromium!

    /// Starts the page server with `pages` (plus `/report.js`), before the gateway, so the tree
    /// can register `self.pages.origin`.
    func startPages(_ pages: [String: PageServer.Page]) async throws {
        guard let browser = HeadlessChromium() else {
            throw XCTSkip("chromium is not installed (scripts/install-deps.sh installs it)")
        }
        self.browser = browser
        var all = pages
        all["/report.js"] = PageServer.reportingModule
        self.pages = try await PageServer(pages: all, group: Self.upstreamGroup)
    }

    override func tearDown() async throws {
        await self.pages?.stop()
        self.pages = nil
        try await super.tearDown()
    }

    /// Opens `path` of the page server under `origin` (default: the registered one) and
    /// decodes the JSON the page reports.
    func open(_ path: String, origin: String? = nil, file: StaticString = #filePath, line: UInt = #line) async throws -> [String: Any] {
        let text = try await self.browser.open("\(origin ?? self.pages.origin)\(path)", resultFrom: self.pages)
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        guard let object = value as? [String: Any] else {
            XCTFail("the page reported \(text), not an object", file: file, line: line)
            return [:]
        }
        if let uncaught = object["uncaught"] { XCTFail("the page failed: \(uncaught)", file: file, line: line) }
        return object
    }

    /// A page that runs `body` (a JavaScript async function body, with `gateway` set to the
    /// gateway's base URL and `report` in scope) and reports what it returns.
    static func page(_ body: String) -> PageServer.Page {
        .html(
            """
            <!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body>
            <script type="module">
            import { report } from '/report.js';
            const gateway = new URLSearchParams(location.search).get('gateway');
            const run = async () => { \(body) };
            report(await run());
            </script></body></html>
            """
        )
    }
}
