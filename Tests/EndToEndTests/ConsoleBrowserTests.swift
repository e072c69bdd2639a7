import BrowserHarness
import Foundation
import TestCertificateAuthority
import XCTest

/// The brand portal console in headless Chromium, driven over the DevTools protocol, against the
/// real gateway, a real redis-server and its admin API: what a partner's administrator does,
/// what it must never see, and a screenshot of each screen (1280×800) in
/// `.build/console-screenshots/` (docs/console.md shows them).
final class ConsoleBrowserTests: AdminTestCase {
    /// One browser for the class: launched by the first test, stopped after the last.
    nonisolated(unsafe) static var shared: DevToolsBrowser?
    var browser: DevToolsBrowser!

    static var screenshots: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/console-screenshots").path
    }

    /// The test tree with `customers` more customers under p1 (ids after c1's, so c1 and c1b
    /// lead the lists): the subtree test gives p1 5,000, to show a large partner's list pages
    /// and searches; the others keep the tree small, whose writes are then quicker.
    static func consoleTree(customers: Int) -> String {
        AdminTestCase.tree + (0..<customers).map { String(format: "  - { id: zz-bulk-%04d, kind: customer, parent: p1, package: basic }\n", $0 + 1) }.joined()
    }

    override func setUp() async throws {
        try await super.setUp()
        if Self.shared == nil {
            guard let browser = try await DevToolsBrowser.launch(group: Self.upstreamGroup) else {
                throw XCTSkip("chromium is not installed (scripts/install-deps.sh installs it)")
            }
            Self.shared = browser
        }
        self.browser = Self.shared
        // Health figures written every 200 ms, so the traffic charts have some to draw.
        var extra = "tenantHealth: { publishInterval: 200ms }\n"
        var files: [String: String] = [:]
        // Uploads need a key-encryption key; the other tests' gateway has none (their uploads are 409s).
        if self.name.contains("UploadsACertificate") {
            extra += "certificateUploads:\n  keyEncryptionKeyFile: certificate-kek\n"
            files["certificate-kek"] = Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString() + "\n"
        }
        // Support grants need a signing key for the engineers' tokens; the other tests' gateway has none.
        if self.name.contains("SupportGrant") {
            extra += "supportAccess:\n  signingKey: \(TestIdentity.support.privateKey)\n  algorithm: ES256\n  maxDuration: 1h\n"
        }
        let settings = self.adminSettings(adminPort: self.adminPort, extra: extra)
        let customers = self.name.contains("SeesOnlyItsSubtree") ? 5_000 : 0
        files["tenants.yaml"] = Self.consoleTree(customers: customers)
        self.gateway = try GatewayProcess(settings: settings, files: files)
        try waitUntilAccepting(port: self.adminPort, process: self.gateway.process)
    }

    override class func tearDown() {
        Self.shared?.closeNow()
        Self.shared = nil
        super.tearDown()
    }

    var console: String { "http://127.0.0.1:\(self.adminPort)/console/" }

    func screenshot(_ name: String) async throws {
        try await self.browser.screenshot(to: "\(Self.screenshots)/\(name).png")
    }

    func text(_ selector: String) async throws -> String {
        try await self.browser.evaluate("(document.querySelector(\(DevToolsBrowser.literal(selector))) || {}).textContent || ''") as? String ?? ""
    }

    func bodyText() async throws -> String {
        try await self.browser.evaluate("document.body.innerText") as? String ?? ""
    }

    /// Opens the console (a fresh page: signed out) and signs in with `token`.
    func signIn(_ token: String) async throws {
        try await self.browser.navigate(self.console)
        try await self.browser.waitFor("document.body.dataset.screen === 'sign-in'")
        try await self.browser.type("#token", token)
        try await self.browser.click("#sign-in-button")
        try await self.browser.waitFor("document.querySelector('#who-role') && document.querySelector('#node-title')")
    }

    /// Shows `fragment` (as a user typing it in the address bar would) and waits for its screen.
    func show(_ fragment: String) async throws {
        // Not ready until the new route has rendered (the hashchange event comes after this).
        _ = try await self.browser.evaluate("document.body.dataset.ready = ''; location.hash = \(DevToolsBrowser.literal(fragment))")
        try await self.browser.waitFor("document.body.dataset.ready && document.body.dataset.ready !== ''")
    }

    func branding(host: String = "portal.p1.test") throws -> [String: Any] {
        try request(port: self.port, "GET", "/v1/branding", headers: [("Host", host)]).json()
    }

    func testAPartnerEditsItsBrandingWithALivePreviewAndTheDataPlaneServesIt() async throws {
        // The console's files come with the strict policy, from the real listener.
        let page = try request(port: self.adminPort, "GET", "/console/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.header("content-security-policy")?.contains("frame-ancestors 'none'") == true)
        XCTAssertEqual(page.header("x-frame-options"), "DENY")
        XCTAssertEqual(page.header("location"), nil)
        XCTAssertEqual(try request(port: self.adminPort, "GET", "/console").header("location"), "/console/")

        try await self.browser.navigate(self.console)
        try await self.browser.waitFor("document.body.dataset.screen === 'sign-in'")
        try await self.screenshot("01-sign-in")
        // A token that does not verify is refused where it was pasted.
        try await self.browser.type("#token", "not-a-token")
        try await self.browser.click("#sign-in-button")
        try await self.browser.waitFor("document.querySelector('#sign-in-result .problem')")

        try await self.browser.type("#token", try self.token("partner-admin", "p1"))
        try await self.browser.click("#sign-in-button")
        try await self.browser.waitFor("document.querySelector('#who-role') && document.querySelector('#node-title')")
        let role = try await self.text("#who-role")
        let subject = try await self.text("#who-subject")
        let node = try await self.text("#who-node")
        XCTAssertEqual(role, "partner-admin")
        XCTAssertEqual(subject, "partner-admin-user")
        XCTAssertEqual(node, "acme/p1")
        // The token is nowhere but in the page's memory.
        let stored = try await self.browser.evaluate("localStorage.length + sessionStorage.length + document.cookie.length") as? Int
        XCTAssertEqual(stored, 0)
        // Explain is one click away.
        try await self.browser.click(".explain-button[data-attribute='features']")
        try await self.browser.waitFor("document.querySelector('.explain')")
        try await self.screenshot("02-overview")

        try await self.show("#/node/p1/branding")
        try await self.browser.waitFor("document.querySelector('#branding-form')")
        // termsUrl is locked by the OEM: shown as locked, by whom, and not editable.
        let lock = try await self.text("#locked-termsUrl")
        XCTAssertTrue(lock.contains("acme"), lock)
        let termsDisabled = try await self.browser.evaluate("document.querySelector('#branding-termsUrl').disabled") as? Bool
        XCTAssertEqual(termsDisabled, true)
        let typed = try await self.browser.type("#branding-termsUrl", "https://p1.test/terms")
        XCTAssertFalse(typed, "a locked field takes no input")
        // The preview shows the inherited values, then follows the typing.
        try await self.browser.waitFor("document.querySelector('#preview-name').textContent === 'Acme ERP'")
        try await self.browser.type("#branding-displayName", "Northwind Cloud ERP")
        try await self.browser.type("#branding-primaryColor", "#117a65")
        // The logo is named by its host, not fetched from it (nothing loads from another origin).
        try await self.browser.type("#branding-logoUrl", "https://cdn.northwind.test/logo.svg")
        try await self.browser.waitFor("document.querySelector('#preview-logo').textContent === 'logo · cdn.northwind.test'")
        try await self.browser.waitFor("document.querySelector('#preview-name').textContent === 'Northwind Cloud ERP'")
        try await self.browser.waitFor("getComputedStyle(document.querySelector('#preview-bar')).backgroundColor === 'rgb(17, 122, 101)'")
        let heading = try await self.text("#preview-heading")
        XCTAssertEqual(heading, "Sign in to Northwind Cloud ERP")
        try await self.screenshot("03-branding")

        try await self.browser.click("#save-branding")
        try await self.browser.waitFor("document.querySelector('#branding-form .notice.ok')")
        XCTAssertTrue(try self.eventually(5) { try self.branding()["displayName"] as? String == "Northwind Cloud ERP" })
        XCTAssertEqual(try self.branding()["primaryColor"] as? String, "#117a65")

        // Someone else changes the node: the console's save is refused with the conflict and a reload.
        let etag = try self.etag("p1")
        let other = try self.admin("PATCH", "/admin/v1/nodes/p1", token: try self.token("platform-admin", nil), ifMatch: etag, body: ##"{"branding":{"accentColor":"#aa0000"}}"##)
        XCTAssertEqual(other.status, 200, other.text)
        try await self.browser.type("#branding-displayName", "Stale Name")
        try await self.browser.click("#save-branding")
        try await self.browser.waitFor("document.querySelector('#conflict')")
        try await self.screenshot("04-conflict")
        try await self.browser.click("#reload")
        try await self.browser.waitFor("document.querySelector('#branding-accentColor') && document.querySelector('#branding-accentColor').value === '#aa0000'")
        let kept = try await self.browser.evaluate("document.querySelector('#branding-displayName').value") as? String
        XCTAssertEqual(kept, "Northwind Cloud ERP")
        XCTAssertEqual(try self.branding()["displayName"] as? String, "Northwind Cloud ERP", "the stale save changed nothing")

        // A value the tree refuses: the error next to its field, nothing saved.
        try await self.browser.type("#branding-primaryColor", "blue")
        try await self.browser.click("#save-branding")
        try await self.browser.waitFor("document.querySelector('#error-branding-primaryColor').textContent !== ''")
        try await self.screenshot("05-validation")
        XCTAssertEqual(try self.branding()["primaryColor"] as? String, "#117a65")
        XCTAssertEqual(self.browser.errors.filter { $0.contains("Content Security Policy") || $0.hasPrefix("dialog") }, [])
    }

    func testAPartnerSeesOnlyItsSubtreeNamesAreTextAndASuspendedCustomerIsRefused() async throws {
        // Markup where the console shows values: a token's subject (any string the issuer
        // signs), and a brand name typed into the editor. Both must show as the text they are.
        let xss = "<img src=x onerror=alert(1)>"
        let (status, minted) = try runCommand(GatewayProcess.binary, [
            "token", "mint", "--issuer", "https://admin.platform.test", "--key", TestIdentity.admin.privateKey, "--alg", "ES256", "--kid", "admin-1",
            "--tenant-claim", "role", "--tenant", "partner-admin", "--audience", "erp-admin", "--ttl", "600", "--subject", xss, "--claim", "node=p1",
        ])
        XCTAssertEqual(status, 0, minted)
        try await self.signIn(minted.trimmingCharacters(in: .whitespacesAndNewlines))
        let subject = try await self.text("#who-subject")
        XCTAssertEqual(subject, xss)
        try await self.show("#/node/p1/branding")
        try await self.browser.waitFor("document.querySelector('#preview-name')")
        try await self.browser.type("#branding-displayName", xss)
        try await self.browser.waitFor("document.querySelector('#preview-name').textContent === \(DevToolsBrowser.literal(xss))")
        let heading = try await self.text("#preview-heading")
        XCTAssertEqual(heading, "Sign in to \(xss)")
        let images = try await self.browser.evaluate("document.querySelectorAll('img[src=\"x\"]').length") as? Int
        XCTAssertEqual(images, 0)
        // The tree refuses angle brackets in a brand name: the error shows under the field.
        try await self.browser.click("#save-branding")
        try await self.browser.waitFor("document.querySelector('#error-branding-displayName').textContent.includes('angle brackets')")
        try await self.screenshot("10-markup-as-text")

        // The customers: searchable and paged.
        try await self.show("#/node/p1/children")
        try await self.browser.waitFor("document.querySelector('#page-info')")
        let firstPage = try await self.text("#page-info")
        XCTAssertEqual(firstPage, "1–50 of 5002")
        try await self.screenshot("06-customers")
        try await self.browser.click("#next-page")
        let secondPage = try await self.text("#page-info")
        XCTAssertEqual(secondPage, "51–100 of 5002")
        try await self.browser.type("#search", "zz-bulk-4999")
        let deep = try await self.browser.evaluate("[...document.querySelectorAll('#children tr[data-id]')].map(r => r.dataset.id).join(',')") as? String
        XCTAssertEqual(deep, "zz-bulk-4999")
        try await self.browser.type("#search", "c1b")
        let found = try await self.browser.evaluate("[...document.querySelectorAll('#children tr[data-id]')].map(r => r.dataset.id).join(',')") as? String
        XCTAssertEqual(found, "c1b")
        try await self.browser.type("#search", "c1")

        // Suspend c1 from the list: its next data-plane request is refused.
        let customer = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "c1")
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]).status, 200)
        try await self.browser.click("#children tr[data-id='c1'] button.suspend")
        try await self.browser.waitFor("document.querySelector(\"#children tr[data-id='c1'] [data-status]\") && document.querySelector(\"#children tr[data-id='c1'] [data-status]\").dataset.status === 'suspended'")
        XCTAssertTrue(try self.eventually(5) {
            try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]).status == 403
        })
        try self.assertProblem(try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]), status: 403, slug: "tenant-suspended")

        // The search is kept while the list is shown again after a change.
        let kept = try await self.browser.evaluate("document.querySelector('#search').value") as? String
        XCTAssertEqual(kept, "c1")

        // Create a customer, then soft-delete it (two clicks).
        try await self.browser.type("#search", "")
        try await self.browser.type("#new-id", "fabrikam")
        try await self.browser.type("#new-package", "basic")
        try await self.browser.click("#create button[type=submit]")
        try await self.browser.waitFor("document.querySelector('#page-info') && document.querySelector('#page-info').textContent.endsWith('of 5003')")
        try await self.browser.type("#search", "fabrikam")
        try await self.browser.waitFor("document.querySelector(\"#children tr[data-id='fabrikam']\")")
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/fabrikam", token: try self.token("platform-admin", nil)).status, 200)
        try await self.browser.click("#children tr[data-id='fabrikam'] button.delete")
        try await self.browser.click("#children tr[data-id='fabrikam'] button.delete")
        try await self.browser.waitFor("document.querySelector('#page-info') && document.querySelector('#page-info').textContent === '0–0 of 0'")
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/fabrikam", token: try self.token("platform-admin", nil)).status, 404)

        // A customer's page: effective features, explain, its package.
        try await self.show("#/node/c1b")
        try await self.browser.waitFor("document.querySelector('#entitlements')")
        let packageValue = try await self.browser.evaluate("document.querySelector('#package').value") as? String
        XCTAssertEqual(packageValue, "basic")
        // A package that does not exist: refused under its field; then one that does.
        try await self.browser.type("#package", "nope")
        try await self.browser.click("#entitlements button[type=submit]")
        try await self.browser.waitFor("document.querySelector('#error-package').textContent.includes('nope')")
        try await self.browser.type("#package", "full")
        // Saved means the page was read again: wait for a new form, not for the typed value.
        _ = try await self.browser.evaluate("document.querySelector('#entitlements').dataset.beforeSave = 'yes'")
        try await self.browser.click("#entitlements button[type=submit]")
        try await self.browser.waitFor(
            "document.querySelector('#entitlements') && !document.querySelector('#entitlements').dataset.beforeSave && document.querySelector('#package').value === 'full'"
        )
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/c1b", token: try self.token("platform-admin", nil)).json()["package"] as? String, "full")

        // The sibling partner p2 and its customer c2: never shown, on any screen, whatever is typed.
        try await self.show("#/node/p1/children")
        try await self.browser.waitFor("document.querySelector('#page-info')")
        for fragment in ["#/node/acme", "#/node/c2", "#/node/c2/audit", "#/node/p2/branding", "#/node/p2/children", "#/node/p2"] {
            try await self.show(fragment)
            try await self.browser.waitFor("document.querySelector('#refused')")
            let shown = try await self.bodyText()
            XCTAssertFalse(shown.contains("c2") && !fragment.contains("c2"), "\(fragment) shows \(shown)")
            XCTAssertFalse(shown.contains("p2") && !fragment.contains("p2"), "\(fragment) shows \(shown)")
            XCTAssertFalse(shown.contains("full"), "\(fragment) shows a sibling's package: \(shown)")
        }
        try await self.screenshot("07-not-yours")
        for fragment in ["#/node/p1", "#/node/p1/children", "#/node/p1/audit", "#/node/p1/traffic"] {
            try await self.show(fragment)
            let shown = try await self.bodyText()
            XCTAssertFalse(shown.contains("p2") || shown.contains("c2") || shown.contains("globex"), "\(fragment) shows another subtree: \(shown)")
        }
        try await self.show("#/node/p1/audit")
        try await self.browser.waitFor("document.querySelector('#audit table')")
        try await self.screenshot("08-audit")
        // Filtered: the customer created and deleted here, then its deletion alone.
        try await self.browser.type("#audit-filter", "fabrikam")
        let actions = "[...document.querySelectorAll('#audit tr')].slice(1).map(r => r.children[4].textContent).join(',')"
        let filtered = try await self.browser.evaluate(actions) as? String
        XCTAssertEqual(filtered, "delete,create")
        _ = try await self.browser.evaluate("(() => { const s = document.querySelector('#audit-action'); s.value = 'delete'; s.dispatchEvent(new Event('change')); })()")
        let deletes = try await self.browser.evaluate(actions) as? String
        XCTAssertEqual(deletes, "delete")
        // Traffic: c1b's requests and c1's refusals, drawn once a node has published them.
        let other = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "c1b")
        for _ in 0..<12 { XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/2", headers: [("Authorization", "Bearer \(other)")]).status, 200) }
        try await self.show("#/node/p1/traffic")
        for _ in 0..<40 {
            let total = try await self.text("#traffic-total")
            if !total.hasPrefix("0 requests") { break }
            try await Task.sleep(nanoseconds: 250_000_000)
            try await self.show("#/node/p1/traffic/")
            try await self.show("#/node/p1/traffic")
        }
        try await self.browser.waitFor("document.querySelector('#minutes-chart rect.requests[height]') && !document.querySelector('#traffic-total').textContent.startsWith('0 requests')")
        try await self.browser.waitFor("document.querySelector('#customers-chart')")
        try await self.screenshot("09-traffic")
        XCTAssertEqual(self.browser.errors.filter { $0.contains("Content Security Policy") || $0.hasPrefix("dialog") }, [])
    }

    func testAPartnerManagesItsIssuersOnlyWhenItsOEMLetsIt() async throws {
        try await self.signIn(try self.token("partner-admin", "p1"))
        try await self.show("#/node/p1/issuers")
        try await self.browser.waitFor("document.querySelector('#node-page .notice')")
        let refusal = try await self.text("#node-page .notice")
        XCTAssertTrue(refusal.contains("self-service is off"), refusal)
        let form = try await self.browser.evaluate("Boolean(document.querySelector('#issuers-form'))") as? Bool
        XCTAssertEqual(form, false)

        let etag = try self.etag("acme")
        let on = try self.admin("PATCH", "/admin/v1/nodes/acme", token: try self.token("platform-admin", nil), ifMatch: etag, body: #"{"partnerIssuerSelfService":true}"#)
        XCTAssertEqual(on.status, 200, on.text)
        try await self.show("#/node/p1/overview")
        try await self.show("#/node/p1/issuers")
        try await self.browser.waitFor("document.querySelector('#issuers-form')")
        let pem = try String(contentsOfFile: TestIdentity.partnerOne.publicKey, encoding: .utf8)
        let list: [String: Any] = ["issuers": [["iss": "https://id.p1.test", "audience": "erp-gateway", "keys": [["kid": "p1-1", "alg": "RS256", "pem": pem]]]]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted]), as: UTF8.self)
        try await self.browser.type("#issuers-json", json)
        try await self.browser.click("#save-issuers")
        try await self.browser.waitFor("document.querySelector('#issuers') && document.querySelector('#issuers').textContent.includes('https://id.p1.test')")
        try await self.screenshot("11-issuers")
        // This gateway has no key-encryption key: an upload is refused, and the console says why.
        try await self.show("#/node/p1/certificates")
        try await self.browser.waitFor("document.querySelector('#certificate-form')")
        let issued = try Self.authority.issueServer(domains: ["portal.p1.test"])
        try await self.browser.type("#certificate-chain", issued.chainPEM)
        try await self.browser.type("#certificate-key", issued.keyPEM)
        try await self.browser.click("#upload-certificate")
        try await self.browser.waitFor("document.querySelector('#uploads-disabled')")
        let disabled = try await self.text("#uploads-disabled")
        XCTAssertTrue(disabled.contains("turned off"), disabled)
        // The data plane takes the partner's tokens for its customer.
        let token = try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOne.privateKey, kid: "p1-1", tenant: "c1")
        XCTAssertTrue(try self.eventually(5) {
            try request(port: self.port, "GET", "/v1/ledger/3", headers: [("Authorization", "Bearer \(token)")]).status == 200
        })
        XCTAssertEqual(self.browser.errors.filter { $0.contains("Content Security Policy") || $0.hasPrefix("dialog") }, [])
    }

    static let authority = try! TestCertificateAuthority()

    func testAPartnerChecksBeforeSavingUploadsACertificateAndRevokesACustomersTokens() async throws {
        // Minted now, so that it is issued before the revocation below.
        let customer = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "c1")
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]).status, 200)
        try await self.signIn(try self.token("partner-admin", "p1"))

        // A branding check stores nothing and shows what would change; the save then does.
        try await self.show("#/node/p1/branding")
        try await self.browser.waitFor("document.querySelector('#branding-form')")
        try await self.browser.type("#branding-displayName", "Checked Cloud ERP")
        try await self.browser.click("#check-branding")
        try await self.browser.waitFor("document.querySelector('#dry-run li[data-field=\"branding.displayName\"]')")
        let change = try await self.text("#dry-run li[data-field=\"branding.displayName\"]")
        XCTAssertTrue(change.contains("Checked Cloud ERP"), change)
        try await self.screenshot("12-dry-run")
        XCTAssertEqual(try self.branding()["displayName"] as? String, "Acme ERP", "the check stored nothing")
        // A check the tree refuses: the error under its field, as a save's would be.
        try await self.browser.type("#branding-primaryColor", "blue")
        try await self.browser.click("#check-branding")
        try await self.browser.waitFor("document.querySelector('#error-branding-primaryColor').textContent !== ''")
        try await self.browser.type("#branding-primaryColor", "")
        try await self.browser.click("#save-branding")
        try await self.browser.waitFor("document.querySelector('#branding-form .notice.ok')")
        XCTAssertTrue(try self.eventually(5) { try self.branding()["displayName"] as? String == "Checked Cloud ERP" })

        // A customer's creation checked: nothing is created.
        try await self.show("#/node/p1/children")
        try await self.browser.waitFor("document.querySelector('#create')")
        try await self.browser.type("#new-id", "contoso")
        try await self.browser.type("#new-package", "basic")
        try await self.browser.click("#check-create")
        try await self.browser.waitFor("document.querySelector('#dry-run')")
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/contoso", token: try self.token("platform-admin", nil)).status, 404)

        // Certificates: the chain and key chosen as files, read in the page.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("console-certificates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let soon = try Self.authority.issueServer(domains: ["portal.p1.test"], validUntil: Date(timeIntervalSinceNow: 10 * 86400))
        let chainFile = directory.appendingPathComponent("fullchain.pem").path
        let keyFile = directory.appendingPathComponent("privkey.pem").path
        let wrongKeyFile = directory.appendingPathComponent("other.pem").path
        try soon.chainPEM.write(toFile: chainFile, atomically: true, encoding: .utf8)
        try soon.keyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        try Self.authority.unrelatedKey().pem.write(toFile: wrongKeyFile, atomically: true, encoding: .utf8)
        try await self.show("#/node/p1/certificates")
        try await self.browser.waitFor("document.querySelector('#certificate-form')")
        try await self.browser.chooseFiles("#certificate-chain-file", [chainFile])
        try await self.browser.chooseFiles("#certificate-key-file", [wrongKeyFile])
        try await self.browser.waitFor("document.querySelector('#certificate-chain').value.includes('BEGIN CERTIFICATE') && document.querySelector('#certificate-key').value.includes('PRIVATE KEY')")
        // A key of another certificate: refused under the key field, nothing stored.
        try await self.browser.click("#upload-certificate")
        try await self.browser.waitFor("document.querySelector('#error-key').textContent.includes('does not belong')")
        let certificateError = try await self.text("#error-certificate")
        XCTAssertEqual(certificateError, "")
        _ = try await self.browser.evaluate("document.querySelector('#certificate-key').scrollIntoView({ block: 'center' })")
        try await self.screenshot("13-certificate-key-refused")
        let path = "/admin/v1/nodes/p1/certificates/portal.p1.test"
        XCTAssertEqual(try self.admin("GET", path, token: try self.token("platform-admin", nil)).status, 404)
        // The right key: checked first (nothing stored), then uploaded and listed with its expiry, highlighted.
        try await self.browser.chooseFiles("#certificate-key-file", [keyFile])
        try await self.browser.waitFor("document.querySelector('#certificate-key').value === \(DevToolsBrowser.literal(soon.keyPEM))")
        try await self.browser.click("#check-certificate")
        try await self.browser.waitFor("document.querySelector('#certificate-check')")
        XCTAssertEqual(try self.admin("GET", path, token: try self.token("platform-admin", nil)).status, 404)
        try await self.browser.click("#upload-certificate")
        try await self.browser.waitFor("document.querySelector(\"#certificates tr[data-domain='portal.p1.test'] td.expiry\")")
        let uploaded = try self.admin("GET", path, token: try self.token("platform-admin", nil))
        XCTAssertEqual(uploaded.status, 200, uploaded.text)
        let notAfter = try XCTUnwrap(try uploaded.json()["notAfter"] as? String)
        let expiry = try await self.text("#certificates td.expiry")
        XCTAssertTrue(expiry.contains(notAfter), expiry)
        let highlighted = try await self.browser.evaluate("document.querySelector('#certificates td.expiry').classList.contains('expiring')") as? Bool
        XCTAssertEqual(highlighted, true, "10 days left is within the 14 days highlighted")
        try await self.screenshot("14-certificates")
        // Replaced (with the listed version's If-Match) by one valid for 60 days: no longer highlighted.
        let later = try Self.authority.issueServer(domains: ["portal.p1.test"], validUntil: Date(timeIntervalSinceNow: 60 * 86400))
        try await self.browser.type("#certificate-chain", later.chainPEM)
        try await self.browser.type("#certificate-key", later.keyPEM)
        try await self.browser.click("#upload-certificate")
        try await self.browser.waitFor("document.querySelector('#certificates td.expiry') && !document.querySelector('#certificates td.expiry').classList.contains('expiring')")
        XCTAssertEqual(try self.admin("GET", path, token: try self.token("platform-admin", nil)).json()["version"] as? Int, 2)
        // Deleted, after a confirm step.
        try await self.browser.click(".delete-certificate")
        XCTAssertEqual(try self.admin("GET", path, token: try self.token("platform-admin", nil)).status, 200, "the first click only asks")
        try await self.browser.click(".delete-certificate")
        try await self.browser.waitFor("document.querySelector('#certificate-form') && !document.querySelector('#certificates')")
        XCTAssertEqual(try self.admin("GET", path, token: try self.token("platform-admin", nil)).status, 404)

        // Every token of c1 revoked, after a confirm step: its existing token is refused.
        try await self.show("#/node/c1")
        try await self.browser.waitFor("document.querySelector('#revoke-all')")
        let oneTokenForm = try await self.browser.evaluate("Boolean(document.querySelector('#revoke-one'))") as? Bool
        XCTAssertEqual(oneTokenForm, false, "revoking by jti is for platform admins")
        try await self.browser.click("#revoke-all")
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]).status, 200, "the first click only asks")
        try await self.browser.click("#revoke-all")
        try await self.browser.waitFor("document.querySelector('#revocation-result .notice.ok')")
        try await self.screenshot("15-revocation")
        XCTAssertTrue(try self.eventually(5) {
            try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(customer)")]).status == 401
        })

        // A platform admin revokes one token by its jti: that token is refused, c1b's others are not.
        let (status, minted) = try runCommand(GatewayProcess.binary, [
            "token", "mint", "--issuer", "https://id.platform.test", "--key", TestIdentity.platform.privateKey, "--kid", "platform-1",
            "--tenant", "c1b", "--audience", "erp-gateway", "--ttl", "600", "--jti", "console-leaked-1",
        ])
        XCTAssertEqual(status, 0, minted)
        let leaked = minted.trimmingCharacters(in: .whitespacesAndNewlines)
        let kept = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "c1b")
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/2", headers: [("Authorization", "Bearer \(leaked)")]).status, 200)
        try await self.signIn(try self.token("platform-admin", nil))
        try await self.show("#/node/c1b")
        try await self.browser.waitFor("document.querySelector('#revoke-one')")
        try await self.browser.type("#revoke-jti", "console-leaked-1")
        try await self.browser.type("#revoke-expires", String(Int(Date().timeIntervalSince1970) + 600))
        try await self.browser.click("#revoke-one-button")
        try await self.browser.waitFor("document.querySelector('#revocation-result .notice.ok')")
        XCTAssertTrue(try self.eventually(5) {
            try request(port: self.port, "GET", "/v1/ledger/2", headers: [("Authorization", "Bearer \(leaked)")]).status == 401
        })
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger/2", headers: [("Authorization", "Bearer \(kept)")]).status, 200)
        XCTAssertEqual(self.browser.errors.filter { $0.contains("Content Security Policy") || $0.hasPrefix("dialog") }, [])
    }

    func testACustomerAdminApprovesASupportGrantReadsItsSessionsAndRevokesIt() async throws {
        let engineer = try self.token("support", "acme")
        let customerAdmin = try self.token("customer-admin", "c1")
        let grants = "/admin/v1/nodes/c1/support-grants"
        let ask = { (ticket: String) throws -> String in
            let asked = try self.admin("POST", grants, token: engineer,
                body: #"{"reason":"customer reports wrong ledger totals","ticket":"\#(ticket)","duration":"30m","scope":"read-only","breakGlass":false}"#)
            XCTAssertEqual(asked.status, 201, asked.text)
            return try XCTUnwrap(try asked.json()["id"] as? String)
        }
        let status = { (grant: String) throws -> String? in
            let listed = try self.admin("GET", grants, token: customerAdmin)
            return ((try listed.json()["grants"] as? [[String: Any]]) ?? []).first { $0["id"] as? String == grant }?["status"] as? String
        }
        let grant = try ask("SUP-7731")
        let row = { (grant: String) in "#support-grants tr[data-grant=\"\(grant)\"]" }
        let rowStatus = { (grant: String, status: String) in
            "document.querySelector(\(DevToolsBrowser.literal(row(grant)))) && document.querySelector(\(DevToolsBrowser.literal(row(grant)))).dataset.status === '\(status)'"
        }

        // The customer's admin sees the request on its Support access tab, and approves it.
        try await self.signIn(customerAdmin)
        try await self.show("#/node/c1/support")
        try await self.browser.waitFor(rowStatus(grant, "requested"))
        let asked = try await self.text(row(grant))
        for part in ["support-user", "SUP-7731", "customer reports wrong ledger totals", "read-only", "30 min", "requested"] {
            XCTAssertTrue(asked.contains(part), "\(part) in \(asked)")
        }
        try await self.browser.click(".grant-approve[data-grant=\"\(grant)\"]")
        try await self.browser.waitFor(rowStatus(grant, "approved"))
        XCTAssertEqual(try status(grant), "approved")
        let approved = try await self.text(row(grant))
        XCTAssertTrue(approved.contains("approved by customer-admin-user"), approved)

        // The engineer fetches the token and reads the customer's data once.
        let issued = try self.admin("POST", "\(grants)/\(grant)/token", token: engineer)
        XCTAssertEqual(issued.status, 200, issued.text)
        let supportToken = try XCTUnwrap(try issued.json()["token"] as? String)
        let read = try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(supportToken)")])
        XCTAssertEqual(read.status, 200, read.text)

        // The request is recorded (written shortly after it ends): shown with its ticket.
        for _ in 0..<40 {
            let shown = try await self.browser.evaluate("document.querySelectorAll('#support-sessions tr[data-request]').length") as? Int
            if (shown ?? 0) > 0 { break }
            try await Task.sleep(nanoseconds: 250_000_000)
            try await self.show("#/node/c1/overview")
            try await self.show("#/node/c1/support")
        }
        try await self.browser.waitFor("document.querySelector('#support-sessions tr[data-request]')")
        let session = try await self.text("#support-sessions tr[data-request]")
        for part in ["support-user", "SUP-7731", grant, "GET /v1/ledger/1", "200"] {
            XCTAssertTrue(session.contains(part), "\(part) in \(session)")
        }

        // A grant that ended meanwhile (the engineer withdrew it): approving it is refused, and said so.
        let withdrawn = try ask("SUP-7732")
        try await self.show("#/node/c1/overview")
        try await self.show("#/node/c1/support")
        try await self.browser.waitFor(rowStatus(withdrawn, "requested"))
        XCTAssertEqual(try self.admin("POST", "\(grants)/\(withdrawn)/revoke", token: engineer).status, 200)
        try await self.browser.click(".grant-approve[data-grant=\"\(withdrawn)\"]")
        try await self.browser.waitFor("document.querySelector('#support-result .problem')")
        let refused = try await self.text("#support-result .problem")
        XCTAssertTrue(refused.contains("409") && refused.contains("revoked"), refused)
        XCTAssertEqual(try status(withdrawn), "revoked")
        try await self.screenshot("16-support-access")
        try await self.browser.click("#reload")
        try await self.browser.waitFor(rowStatus(withdrawn, "revoked"))

        // Revoked in the browser, after a confirm step: the API shows the grant revoked.
        try await self.browser.click(".grant-revoke[data-grant=\"\(grant)\"]")
        XCTAssertEqual(try status(grant), "approved", "the first click only asks")
        try await self.browser.click(".grant-revoke[data-grant=\"\(grant)\"]")
        try await self.browser.waitFor(rowStatus(grant, "revoked"))
        XCTAssertEqual(try status(grant), "revoked")
        XCTAssertTrue(try self.eventually(5) {
            try request(port: self.port, "GET", "/v1/ledger/1", headers: [("Authorization", "Bearer \(supportToken)")]).status == 403
        })
        XCTAssertEqual(self.browser.errors.filter { $0.contains("Content Security Policy") || $0.hasPrefix("dialog") }, [])
    }
}
