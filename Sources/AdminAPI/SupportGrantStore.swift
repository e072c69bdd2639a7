import NIOCore
import RedisClient

/// Where support grants live in the shared store, next to the tree (hash tag `{admin}`, so a
/// grant's change and its audit record are one script):
///
/// - `PREFIX:{admin}:support-grants:CUSTOMER` — a hash: grant id → the grant's JSON.
///
/// Every change is a compare-and-set on the grant's JSON as it was read, with its audit record
/// appended in the same step: two admins deciding the same grant at once cannot both win.
/// A grant's token is revoked through the revocation store (its `jti` is the grant's id).
/// Grants ended longer ago than the settings' `supportAccess.keepEnded` are removed when the
/// customer's grants are listed or a new one is requested, so a customer's hash stays bounded.
struct SupportGrantStore: Sendable {
    let admin: AdminStore

    func key(customer: String) -> String { "\(self.admin.keyPrefix):{admin}:support-grants:\(customer)" }

    /// Every grant of the customer, as stored.
    func all(customer: String, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<[String]> {
        client.send(on: loop, ["HVALS", self.key(customer: customer)]).flatMapThrowing { reply in
            guard let values = reply.elements else { throw AdminStore.StoreError(description: reply.errorMessage ?? "unexpected reply to HVALS") }
            return values.compactMap(\.string)
        }
    }

    func get(customer: String, id: String, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<String?> {
        client.send(on: loop, ["HGET", self.key(customer: customer), id]).flatMapThrowing { reply in
            if let error = reply.errorMessage { throw AdminStore.StoreError(description: error) }
            return reply.string
        }
    }

    /// Removes grants by id (those ended longer ago than they are kept).
    func remove(customer: String, ids: [String], client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard !ids.isEmpty else { return loop.makeSucceededVoidFuture() }
        return client.send(on: loop, ["HDEL", self.key(customer: customer)] + ids).flatMapThrowing { reply in
            if let error = reply.errorMessage { throw AdminStore.StoreError(description: error) }
        }
    }

    /// `ARGV[4]` empty: the grant must not exist yet (a new request).
    static let writeScript = """
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if ARGV[4] == '' then
          if current then return 0 end
        elseif current ~= ARGV[4] then
          return 0
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XADD', KEYS[2], '*', 'record', ARGV[3])
        return 1
        """

    /// Stores `next` if the grant is still `expected` (nil: absent), with `audit` appended to
    /// `auditKey`. Returns whether it wrote.
    func write(
        customer: String, id: String, expected: String?, next: String, auditKey: String, audit: String, client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<Bool> {
        let keys = [self.key(customer: customer), auditKey]
        let args = [id, next, audit, expected ?? ""]
        return client.send(on: loop, ["EVAL", Self.writeScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let written = reply.int64 else { throw AdminStore.StoreError(description: reply.errorMessage ?? "unexpected reply to the grant script") }
            return written == 1
        }
    }
}
