import Hierarchy

/// One support engineer's request to act for one customer, and what became of it:
///
///     requested ──approve──▶ approved ──(expiresAt passes)──▶ expired
///         │                     │
///         └──refuse──▶ refused  └──revoke──▶ revoked      (requested ──revoke──▶ revoked too)
///
///     requested ──(answerBy passes unanswered)──▶ expired
///
/// A value: every transition is a `mutating` method that checks who may make it and when, and
/// either changes the grant or says why not. Time is given, never read, so tests drive a clock.
/// The store keeps each grant as a JSON document and changes it only by compare-and-set, so two
/// admins deciding at once cannot both win.
public struct SupportGrant: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case requested, approved, refused, revoked
    }

    /// What a grant is at a moment: its state, with `approved` past its end, and `requested` past
    /// `answerBy`, read as `expired`.
    public enum Status: String, Sendable, Hashable {
        case requested, approved, refused, revoked, expired
    }

    /// Who asked: a support engineer of the platform (`oem` nil) or of one OEM.
    public struct Requester: Sendable, Hashable {
        public let actor: String
        public let oem: String?

        public init(actor: String, oem: String?) {
            self.actor = actor
            self.oem = oem
        }
    }

    /// Who approved, refused or revoked, and in which role (`customer-admin`, `platform-admin`,
    /// `support`, …).
    public struct Decision: Sendable, Hashable {
        public let actor: String
        public let role: String
        public let time: Int64

        public init(actor: String, role: String, time: Int64) {
            self.actor = actor
            self.role = role
            self.time = time
        }
    }

    public let id: String
    public let customer: NodePath
    public let requester: Requester
    public let reason: String
    public let ticket: String
    /// Seconds the grant lasts once approved.
    public let duration: Int64
    public let scope: SupportScope
    /// Asked without the customer's side: approved only by a second platform admin.
    public let breakGlass: Bool
    public let requestedAt: Int64
    /// When a request nobody approved or refused expires: `requestedAt` plus the settings'
    /// `supportAccess.answerWithin` when it was made.
    public let answerBy: Int64
    public private(set) var state: State
    /// The approval or refusal.
    public private(set) var decision: Decision?
    /// Set on approval: the decision's time plus `duration`.
    public private(set) var expiresAt: Int64?
    public private(set) var revocation: Decision?

    /// How long a request waits for an answer unless the settings say otherwise (and for grants
    /// stored before requests expired).
    public static let defaultAnswerWithin: Int64 = 24 * 3600

    public init(
        id: String, customer: NodePath, requester: Requester, reason: String, ticket: String, duration: Int64, scope: SupportScope,
        breakGlass: Bool, requestedAt: Int64, answerWithin: Int64 = Self.defaultAnswerWithin
    ) {
        precondition(customer.kind == .customer, "support is granted on one customer")
        precondition(duration > 0, "a grant lasts a positive time")
        precondition(answerWithin > 0, "a request waits a positive time")
        self.id = id
        self.customer = customer
        self.requester = requester
        self.reason = reason
        self.ticket = ticket
        self.duration = duration
        self.scope = scope
        self.breakGlass = breakGlass
        self.requestedAt = requestedAt
        self.answerBy = requestedAt + answerWithin
        self.state = .requested
    }

    /// A stored grant read back, whatever state it is in (`SupportGrant+JSON` in the admin API).
    public init(
        id: String, customer: NodePath, requester: Requester, reason: String, ticket: String, duration: Int64, scope: SupportScope,
        breakGlass: Bool, requestedAt: Int64, state: State, decision: Decision?, expiresAt: Int64?, revocation: Decision?, answerBy: Int64? = nil
    ) {
        self.init(
            id: id, customer: customer, requester: requester, reason: reason, ticket: ticket, duration: duration, scope: scope, breakGlass: breakGlass,
            requestedAt: requestedAt, answerWithin: max(1, (answerBy ?? requestedAt + Self.defaultAnswerWithin) - requestedAt)
        )
        self.state = state
        self.decision = decision
        self.expiresAt = expiresAt
        self.revocation = revocation
    }

    public func status(at now: Int64) -> Status {
        switch self.state {
        case .requested: now < self.answerBy ? .requested : .expired
        case .refused: .refused
        case .revoked: .revoked
        case .approved: (self.expiresAt ?? 0) > now ? .approved : .expired
        }
    }

    /// Whether the grant lets its engineer act at `now`: approved and not yet expired.
    public func isActive(at now: Int64) -> Bool { self.status(at: now) == .approved }

    /// When the grant ended, if it has by `now`: refused or revoked at that decision, expired at
    /// its end or, never answered, at `answerBy`. Nil while it is pending or active.
    public func endedAt(at now: Int64) -> Int64? {
        switch self.status(at: now) {
        case .requested, .approved: nil
        case .refused: self.decision?.time ?? self.requestedAt
        case .revoked: self.revocation?.time ?? self.requestedAt
        case .expired: self.state == .approved ? (self.expiresAt ?? self.requestedAt) : self.answerBy
        }
    }

    /// Why a transition was not made.
    public enum Refusal: Error, Sendable, Hashable {
        /// Approve or refuse on a grant that is no longer `requested` (or was not answered in time).
        case notPending
        /// The requester deciding its own grant.
        case ownGrant
        /// A break-glass grant is decided by a platform admin only (another than the requester).
        case breakGlassNeedsPlatformAdmin
        /// Revoke on a grant already refused, revoked or expired: nothing left to end.
        case alreadyEnded
    }

    /// Each transition answers nil when made, or why it was not (the grant then is unchanged).

    /// Approves a pending grant: usable from `now` for `duration`. The approver is never the
    /// requester; a break-glass grant's approver is a platform admin.
    public mutating func approve(by approver: Decision, isPlatformAdmin: Bool) -> Refusal? {
        if let refusal = self.decidable(by: approver, isPlatformAdmin: isPlatformAdmin) { return refusal }
        self.state = .approved
        self.decision = approver
        self.expiresAt = approver.time + self.duration
        return nil
    }

    /// Refuses a pending grant, under the same rules as approving it.
    public mutating func refuse(by decider: Decision, isPlatformAdmin: Bool) -> Refusal? {
        if let refusal = self.decidable(by: decider, isPlatformAdmin: isPlatformAdmin) { return refusal }
        self.state = .refused
        self.decision = decider
        return nil
    }

    /// Ends a pending or active grant at once: by the customer's side or by the requester.
    public mutating func revoke(by revoker: Decision) -> Refusal? {
        switch self.status(at: revoker.time) {
        case .requested, .approved:
            self.state = .revoked
            self.revocation = revoker
            return nil
        case .refused, .revoked, .expired:
            return .alreadyEnded
        }
    }

    private func decidable(by decider: Decision, isPlatformAdmin: Bool) -> Refusal? {
        guard self.status(at: decider.time) == .requested else { return .notPending }
        guard decider.actor != self.requester.actor else { return .ownGrant }
        if self.breakGlass, !isPlatformAdmin { return .breakGlassNeedsPlatformAdmin }
        return nil
    }
}
