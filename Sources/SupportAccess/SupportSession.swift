import Hierarchy
import JSONText

/// One request a support engineer made under a grant, as the customer's audit keeps it:
/// never a body, a header value or a query (they may carry personal data).
public struct SupportSession: Sendable, Hashable {
    /// Unix milliseconds when the request arrived.
    public let time: Int64
    public let customer: NodePath
    public let grant: String
    public let ticket: String
    public let engineer: String
    public let method: String
    /// The normalized path, without the query.
    public let path: String
    /// The status answered; nil when the client left before an answer.
    public let status: UInt?
    /// The gateway's problem slug when it refused.
    public let problem: String?
    public let requestID: String

    public init(
        time: Int64, customer: NodePath, grant: String, ticket: String, engineer: String, method: String, path: String, status: UInt?,
        problem: String?, requestID: String
    ) {
        self.time = time
        self.customer = customer
        self.grant = grant
        self.ticket = ticket
        self.engineer = engineer
        self.method = method
        self.path = path
        self.status = status
        self.problem = problem
        self.requestID = requestID
    }

    /// The audit stream entry's `session` field: one JSON object.
    public var json: String {
        var out = "{\"time\":\(self.time)"
        out += ",\"customer\":" + JSONText.quote(self.customer.description)
        out += ",\"grant\":" + JSONText.quote(self.grant)
        out += ",\"ticket\":" + JSONText.quote(self.ticket)
        out += ",\"engineer\":" + JSONText.quote(self.engineer)
        out += ",\"method\":" + JSONText.quote(self.method)
        out += ",\"path\":" + JSONText.quote(self.path)
        out += ",\"status\":" + (self.status.map { String($0) } ?? "null")
        out += ",\"problem\":" + (self.problem.map { JSONText.quote($0) } ?? "null")
        out += ",\"requestId\":" + JSONText.quote(self.requestID)
        return out + "}"
    }
}
