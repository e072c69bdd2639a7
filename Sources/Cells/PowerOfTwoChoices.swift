/// Endpoint choice inside a cell: power of two choices on least outstanding requests.
///
/// Why not plain least-outstanding: every gateway node (and every event loop) would pile onto the
/// same momentarily idle endpoint. Two random candidates keep most of the benefit of
/// least-loaded choice while spreading concurrent decisions (Mitzenmacher, "The Power of Two
/// Choices in Randomized Load Balancing").
///
/// Ties go to the first *drawn* candidate, not the lower index: on an idle cell every
/// endpoint has 0 outstanding, and a lower-index rule would send the low indices more traffic.
public enum PowerOfTwoChoices {
    public struct Candidate: Sendable, Hashable {
        /// Healthy (`EndpointHealth`) and not ejected (`OutlierDetector.isEligible`).
        public var isEligible: Bool
        /// Requests sent to this endpoint and not yet finished, as seen by the caller.
        public var outstanding: Int

        public init(isEligible: Bool, outstanding: Int) {
            self.isEligible = isEligible
            self.outstanding = outstanding
        }
    }

    /// The index in `candidates` to send to, or nil when none is eligible (the caller answers
    /// 503 or tries a fallback cell). One eligible → that one, without drawing.
    /// Draws two distinct eligible candidates uniformly; allocates nothing. Any collection of
    /// candidates: the data plane passes a buffer on its stack, not an array. Inlinable so that
    /// it is specialized there: called generic across the module, it allocated twice per choice.
    @inlinable
    public static func pick<Candidates: RandomAccessCollection<Candidate>>(
        _ candidates: Candidates,
        using generator: inout some RandomNumberGenerator
    ) -> Candidates.Index? {
        var eligibleCount = 0
        for candidate in candidates where candidate.isEligible { eligibleCount += 1 }
        switch eligibleCount {
        case 0:
            return nil
        case 1:
            return candidates.firstIndex(where: \.isEligible)
        default:
            let first = Int.random(in: 0..<eligibleCount, using: &generator)
            var second = Int.random(in: 0..<(eligibleCount - 1), using: &generator)
            if second >= first { second += 1 }
            let a = indexOfEligible(first, in: candidates)
            let b = indexOfEligible(second, in: candidates)
            return candidates[b].outstanding < candidates[a].outstanding ? b : a
        }
    }

    /// The index of the `rank`-th (0-based) eligible candidate.
    @usableFromInline
    static func indexOfEligible<Candidates: RandomAccessCollection<Candidate>>(_ rank: Int, in candidates: Candidates) -> Candidates.Index {
        var seen = 0
        for index in candidates.indices where candidates[index].isEligible {
            if seen == rank { return index }
            seen += 1
        }
        preconditionFailure("rank \(rank) beyond the eligible candidates")
    }
}
