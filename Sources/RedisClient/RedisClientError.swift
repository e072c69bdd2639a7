/// Why a Redis operation failed — as opposed to Redis answering with an error reply, which is a
/// value (`RESPValue.error`) so that callers can act on `NOSCRIPT`, `WRONGTYPE` and the like.
///
/// A struct around a private enum: callers compare against the public constants; `slug` is
/// stable (a log field and a bounded metrics label) and `description` is fixed per reason.
/// Neither ever quotes a URL, a password, a key or a reply — whoever catches the error logs the
/// context it judges safe.
public struct RedisClientError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable, CaseIterable {
        case invalidURL
        case unsupportedURLScheme
        case connectionFailed
        case authenticationFailed
        case handshakeFailed
        case connectionClosed
        case responseTimeout
        case protocolError
        case emptyCommand
        case unavailable
        case shutDown
        case primaryUnknown
        case notPrimary
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    /// The URL is not `redis://[user[:password]@]host[:port][/db]`: bad port, bad database,
    /// bad percent-encoding, a query or fragment, or a username without a password.
    public static let invalidURL = RedisClientError(.invalidURL)
    /// A scheme other than `redis://`, `rediss://`, `redis-cluster://`, `redis-sentinel://` and
    /// `rediss-sentinel://`.
    public static let unsupportedURLScheme = RedisClientError(.unsupportedURLScheme)
    /// The TCP connection could not be established within the connect timeout.
    public static let connectionFailed = RedisClientError(.connectionFailed)
    /// Redis refused `AUTH`, or demanded it (`NOAUTH`) when the URL carried no password.
    public static let authenticationFailed = RedisClientError(.authenticationFailed)
    /// Redis answered the connection setup (`SELECT`, or the `PING` sent when there is nothing
    /// else to send) with an error reply, e.g. a database index out of range or `LOADING`.
    public static let handshakeFailed = RedisClientError(.handshakeFailed)
    /// The connection closed — lost, or closed by its owner — before the reply arrived, or the
    /// command was sent on a connection already closed. The command may or may not have run.
    public static let connectionClosed = RedisClientError(.connectionClosed)
    /// The oldest pending reply did not arrive within the response timeout; the connection was
    /// closed, failing every command pending on it. They may or may not have run.
    public static let responseTimeout = RedisClientError(.responseTimeout)
    /// hiredis could not parse what the server sent, or a reply arrived that no command asked
    /// for. The connection was closed.
    public static let protocolError = RedisClientError(.protocolError)
    /// A command needs at least one argument (its name). Nothing was sent.
    public static let emptyCommand = RedisClientError(.emptyCommand)
    /// Redis is known to be unreachable from this event loop (its last connection failed and the
    /// next attempt waits for the backoff): failed at once, without waiting on any timeout.
    public static let unavailable = RedisClientError(.unavailable)
    /// The client or subscriber was shut down.
    public static let shutDown = RedisClientError(.shutDown)
    /// `redis-sentinel://`: no Sentinel of the URL answered with an address for the master set
    /// (all unreachable, or none monitors that name).
    public static let primaryUnknown = RedisClientError(.primaryUnknown)
    /// `redis-sentinel://`: the server a Sentinel named does not answer `ROLE` with `master`
    /// (a failover under way, a demoted primary); the connection was closed.
    public static let notPrimary = RedisClientError(.notPrimary)

    /// Every reason, for tests and for registering metrics labels up front.
    public static let allReasons: [RedisClientError] = Reason.allCases.map(RedisClientError.init)

    /// Stable identifier: log field, metrics label.
    public var slug: String {
        switch reason {
        case .invalidURL: "redis-invalid-url"
        case .unsupportedURLScheme: "redis-unsupported-url-scheme"
        case .connectionFailed: "redis-connection-failed"
        case .authenticationFailed: "redis-authentication-failed"
        case .handshakeFailed: "redis-handshake-failed"
        case .connectionClosed: "redis-connection-closed"
        case .responseTimeout: "redis-response-timeout"
        case .protocolError: "redis-protocol-error"
        case .emptyCommand: "redis-empty-command"
        case .unavailable: "redis-unavailable"
        case .shutDown: "redis-shut-down"
        case .primaryUnknown: "redis-primary-unknown"
        case .notPrimary: "redis-not-primary"
        }
    }

    public var description: String {
        switch reason {
        case .invalidURL: "Redis URL is not redis://[user[:password]@]host[:port][/db], redis-cluster://[user[:password]@]host[:port][,host[:port]…] or redis-sentinel://[user[:password]@]host[:port][,host[:port]…]/master[/db]"
        case .unsupportedURLScheme: "Redis URL scheme is not redis://, rediss://, redis-cluster://, redis-sentinel:// or rediss-sentinel://"
        case .connectionFailed: "could not connect to Redis"
        case .authenticationFailed: "Redis refused the credentials"
        case .handshakeFailed: "Redis refused the connection setup"
        case .connectionClosed: "Redis connection closed before the reply arrived"
        case .responseTimeout: "Redis did not reply within the response timeout"
        case .protocolError: "Redis sent a reply that could not be parsed or matched"
        case .emptyCommand: "Redis command has no arguments"
        case .unavailable: "Redis is unavailable"
        case .shutDown: "Redis client is shut down"
        case .primaryUnknown: "no Redis Sentinel named a primary"
        case .notPrimary: "the Redis server a Sentinel named is not a primary"
        }
    }
}
