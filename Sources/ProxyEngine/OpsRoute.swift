import NIOHTTP1

/// What the ops listener serves: `GET /metrics`, `GET /healthz`, `GET /readyz`. Another method
/// on one of them is 405, any other path 404. The query is ignored (scrapers may add one).
enum OpsRoute: Equatable {
    case metrics
    case health
    case readiness
    case notFound
    case methodNotAllowed

    init(method: HTTPMethod, uri: String) {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let known: OpsRoute
        switch path {
        case "/metrics": known = .metrics
        case "/healthz": known = .health
        case "/readyz": known = .readiness
        default:
            self = .notFound
            return
        }
        self = method == .GET ? known : .methodNotAllowed
    }
}
