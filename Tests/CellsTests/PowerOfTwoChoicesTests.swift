import Cells
import XCTest

final class PowerOfTwoChoicesTests: XCTestCase {
    private typealias Candidate = PowerOfTwoChoices.Candidate

    private func candidates(_ outstanding: [Int], ineligible: Set<Int> = []) -> [Candidate] {
        outstanding.enumerated().map { Candidate(isEligible: !ineligible.contains($0.offset), outstanding: $0.element) }
    }

    func testNoCandidatesOrNoneEligibleGivesNil() {
        var generator = SeededGenerator(seed: 1)
        XCTAssertNil(PowerOfTwoChoices.pick([], using: &generator))
        XCTAssertNil(PowerOfTwoChoices.pick(candidates([0, 0], ineligible: [0, 1]), using: &generator))
    }

    func testSingleEligibleIsChosenWithoutDrawing() {
        var generator = SeededGenerator(seed: 1)
        XCTAssertEqual(PowerOfTwoChoices.pick(candidates([0, 99, 0], ineligible: [0, 2]), using: &generator), 1)
        XCTAssertEqual(generator.draws, 0)
    }

    func testTwoEligibleAlwaysTheLessLoaded() {
        // Always 0 proves the two candidates are distinct: drawing the same one twice would
        // sometimes yield the loaded one.
        var generator = SeededGenerator(seed: 2)
        for _ in 0..<1_000 {
            XCTAssertEqual(PowerOfTwoChoices.pick(candidates([1, 5]), using: &generator), 0)
            XCTAssertEqual(PowerOfTwoChoices.pick(candidates([5, 1]), using: &generator), 1)
        }
    }

    func testIneligibleNeverChosen() {
        var generator = SeededGenerator(seed: 3)
        let cs = candidates([0, 9, 0, 9, 0], ineligible: [0, 2, 4])
        for _ in 0..<1_000 {
            let picked = PowerOfTwoChoices.pick(cs, using: &generator)
            XCTAssertTrue(picked == 1 || picked == 3, "picked \(String(describing: picked))")
        }
    }

    func testMostLoadedNeverChosenAndLeastLoadedFavoured() {
        var generator = SeededGenerator(seed: 4)
        var counts = [0, 0, 0]
        for _ in 0..<3_000 {
            counts[PowerOfTwoChoices.pick(candidates([2, 0, 7]), using: &generator)!] += 1
        }
        XCTAssertEqual(counts[2], 0, "the most loaded loses against either other candidate")
        // Index 1 wins whenever drawn: in 2 of the 3 possible pairs.
        XCTAssertGreaterThan(counts[1], counts[0])
        XCTAssertEqual(counts[0] + counts[1], 3_000)
    }

    func testTiesAreSpreadNotBiasedToLowIndices() {
        var generator = SeededGenerator(seed: 5)
        var counts = [Int](repeating: 0, count: 4)
        for _ in 0..<4_000 {
            counts[PowerOfTwoChoices.pick(candidates([0, 0, 0, 0]), using: &generator)!] += 1
        }
        for count in counts {
            XCTAssertGreaterThan(count, 800, "idle endpoints share the traffic: \(counts)")
        }
    }

    func testTieGoesToTheFirstDrawn() {
        // With two tied eligible candidates, which one wins depends only on the draw order, so
        // both are chosen over many picks (a lower-index rule would always give 0).
        var generator = SeededGenerator(seed: 6)
        var seen = Set<Int>()
        for _ in 0..<200 {
            seen.insert(PowerOfTwoChoices.pick(candidates([3, 3]), using: &generator)!)
        }
        XCTAssertEqual(seen, [0, 1])
    }

    func testSameSeedSameChoices() {
        var a = SeededGenerator(seed: 9)
        var b = SeededGenerator(seed: 9)
        let cs = candidates([4, 1, 3, 1, 0, 2])
        for _ in 0..<100 {
            XCTAssertEqual(PowerOfTwoChoices.pick(cs, using: &a), PowerOfTwoChoices.pick(cs, using: &b))
        }
    }

    /// The choice is made over any collection of candidates, and answers in its indices: a
    /// slice's start at its own index, a stack buffer's from 0 (the router passes one).
    func testAnyCollectionAnswersInItsOwnIndices() {
        var generator = SeededGenerator(seed: 3)
        let all = candidates([9, 0, 7, 5], ineligible: [1])
        let slice = all[2...]
        for _ in 0..<100 {
            XCTAssertEqual(PowerOfTwoChoices.pick(slice, using: &generator), 3)
        }
        XCTAssertEqual(PowerOfTwoChoices.pick(all[1...1], using: &generator), nil)
        XCTAssertEqual(PowerOfTwoChoices.pick(all[0...1], using: &generator), 0)
        let picked = withUnsafeTemporaryAllocation(of: Candidate.self, capacity: 3) { buffer -> Int? in
            _ = buffer.initialize(from: candidates([4, 2, 8], ineligible: [1]))
            buffer[0].isEligible = false
            return PowerOfTwoChoices.pick(buffer, using: &generator)
        }
        XCTAssertEqual(picked, 2)
    }
}
