import Hierarchy
import NIOCore
import RedisClient
import TenantHealth

/// Where the per-minute tenant figures live in the shared store. One hash per tenant (partner
/// or OEM) and UTC minute, hash-tagged by OEM like the quota keys:
/// `<prefix>:health:{<oem>}:<path>:<minute>` (minute: minutes since the Unix epoch), one field
/// per gateway node, holding that node's figures (`HealthFigures.text`), expiring
/// `retentionMinutes` after its last write.
///
/// A node writes its whole figures for a minute each time it publishes (`HSET` replaces the
/// field), so publishing a minute again — its figures so far, then its final figures — is
/// idempotent, and a reader merges the fields of every node that published.
public struct TenantHealthStore: Sendable {
    public let redis: RedisClient
    public let prefix: String
    public let retentionMinutes: Int

    public init(redis: RedisClient, prefix: String = "erp", retentionMinutes: Int = 60) {
        self.redis = redis
        self.prefix = prefix
        self.retentionMinutes = retentionMinutes
    }

    public static func key(prefix: String, tenant: NodePath, minute: Int64) -> String {
        "\(prefix):health:{\(tenant.oem)}:\(tenant):\(minute)"
    }

    /// Writes `node`'s figures of every tenant in `tables`: two pipelined commands per tenant
    /// and minute, off the request path. Succeeds once every write is answered; a failed write
    /// is reported, the others still land.
    public func publish(_ tables: [MinuteFigures], node: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        var writes: [EventLoopFuture<RESPValue>] = []
        let ttl = String(self.retentionMinutes * 60)
        for table in tables {
            for (tenant, figures) in table.tenants {
                let key = Self.key(prefix: self.prefix, tenant: tenant, minute: table.minute)
                writes.append(self.redis.send(on: loop, ["HSET", key, node, figures.text]))
                writes.append(self.redis.send(on: loop, ["EXPIRE", key, ttl]))
            }
        }
        return EventLoopFuture.whenAllComplete(writes, on: loop).flatMapThrowing { results in
            for result in results {
                if case .failure(let error) = result { throw error }
                if case .success(let reply) = result, let message = reply.errorMessage { throw TenantHealthStoreError(message: message) }
            }
        }
    }

    /// Every node's published figures of `tenant` for each of `minutes`: one pipelined `HVALS`
    /// per minute.
    public func read(_ tenant: NodePath, minutes: [Int64], on loop: any EventLoop) -> EventLoopFuture<[Int64: [String]]> {
        let reads = minutes.map { minute in
            self.redis.send(on: loop, ["HVALS", Self.key(prefix: self.prefix, tenant: tenant, minute: minute)]).flatMapThrowing { reply in
                if let message = reply.errorMessage { throw TenantHealthStoreError(message: message) }
                return (minute, (reply.elements ?? []).compactMap(\.string))
            }
        }
        return EventLoopFuture.whenAllSucceed(reads, on: loop).map { Dictionary($0, uniquingKeysWith: +) }
    }
}

/// A reply of the store that is an error (its message is Redis's own, never a tenant's data).
public struct TenantHealthStoreError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "redis answered: \(self.message)" }
}
