import Certificates
import Hierarchy

/// Which stored certificates a node serves, as a pure function of the records, the node's tenant
/// tree and its key-encryption key.
///
/// A record is served when its domain is, in the tree the node serves, a portal domain of the
/// node it was uploaded for, and its key opens. The tree decides, not the store: when an admin
/// removes a portal domain or moves it to another node, the record stays in the store (its
/// node's admin still sees and may delete it) but no node serves it from the revision on that
/// made the change — the same revision that stops the node's portal from being served there.
/// A record the domain's new owner uploads replaces it.
public enum ServedCertificates {
    /// Whether `record`'s domain is a portal domain of `record`'s node in `tree`.
    public static func isOwned(_ record: StoredCertificate, in tree: TenantSnapshot?) -> Bool {
        guard let holder = tree?.node(forPortalDomain: record.domain) else { return false }
        return holder.id.rawValue == record.node
    }

    /// A record left out, and why (no key material in it).
    public struct Skipped: Sendable, Hashable {
        public enum Reason: Sendable, Hashable, CustomStringConvertible {
            /// The domain is not (any more) a portal domain of the record's node.
            case notOwned
            /// The key does not open with this node's key-encryption key.
            case keyDoesNotOpen(KeyEncryptionKey.OpenFailure)
            /// The node has no key-encryption key (`certificateUploads` is not set).
            case noKeyEncryptionKey

            public var description: String {
                switch self {
                case .notOwned: "the domain is not a portal domain of the node it was uploaded for"
                case .keyDoesNotOpen(let failure): "its key does not open: \(failure)"
                case .noKeyEncryptionKey: "this node has no key-encryption key (certificateUploads)"
                }
            }
        }

        public let domain: String
        public let node: String
        public let version: Int64
        public let reason: Reason
    }

    public struct Selection: Sendable, Hashable {
        /// By domain.
        public var served: [UploadedCertificateRecord]
        public var skipped: [Skipped]
    }

    public static func select(_ records: [StoredCertificate], tree: TenantSnapshot?, keyEncryptionKey: KeyEncryptionKey?) -> Selection {
        var selection = Selection(served: [], skipped: [])
        for record in records.sorted(by: { $0.domain < $1.domain }) {
            func skip(_ reason: Skipped.Reason) {
                selection.skipped.append(Skipped(domain: record.domain, node: record.node, version: record.version, reason: reason))
            }
            guard self.isOwned(record, in: tree) else {
                skip(.notOwned)
                continue
            }
            guard let keyEncryptionKey else {
                skip(.noKeyEncryptionKey)
                continue
            }
            do {
                let key = try record.openKey(with: keyEncryptionKey)
                selection.served.append(UploadedCertificateRecord(
                    domain: record.domain, node: record.node, chainPEM: record.chainPEM, keyPEM: key, summary: record.summary, version: record.version
                ))
            } catch {
                skip(.keyDoesNotOpen(error))
            }
        }
        return selection
    }
}
