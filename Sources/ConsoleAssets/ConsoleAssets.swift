/// The brand portal console's front-end files (console/: HTML, CSS, JavaScript modules), compiled
/// into the binary.
///
/// Embedded rather than read from a directory or a resource bundle: the packaged gateway is one
/// file — the Docker image copies only the binary, the systemd unit runs only the binary — so
/// assets that travel inside it cannot go missing or drift from the version that serves them,
/// and no setting is needed to find them. SwiftPM's `embedInCode` rule generates the byte
/// arrays; there is no build step of our own.
public enum ConsoleAssets {
    public struct File: Sendable {
        /// The file's name under `/console/`.
        public let name: String
        public let contentType: String
        public let bytes: [UInt8]
    }

    /// Every file, by name. `index.html` is what `/console/` answers.
    public static let files: [String: File] = {
        let list: [(String, [UInt8])] = [
            ("index.html", PackageResources.index_html),
            ("console.css", PackageResources.console_css),
            ("console.js", PackageResources.console_js),
            ("api.js", PackageResources.api_js),
            ("dom.js", PackageResources.dom_js),
            ("views.js", PackageResources.views_js),
            ("branding.js", PackageResources.branding_js),
            ("charts.js", PackageResources.charts_js),
            ("keys.js", PackageResources.keys_js),
            ("support.js", PackageResources.support_js),
        ]
        var files: [String: File] = [:]
        for (name, bytes) in list {
            files[name] = File(name: name, contentType: Self.contentType(of: name), bytes: bytes)
        }
        return files
    }()

    static func contentType(of name: String) -> String {
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        return "application/octet-stream"
    }
}
