/// What the differential tests of the gateway's two HTTP/1.1 readers (`UpstreamHTTP1Tests`,
/// `ClientRequestParserTests`) do to valid messages before reading them both ways: one byte
/// changed, inserted or removed, and cuts where the bytes arrive in separate reads.
enum ByteMutations {
    /// `text` with one byte at a random place replaced by, or preceded by, one of `specials`, or
    /// removed.
    static func mutate(_ text: String, specials: [UInt8], _ random: inout SeededRandom) -> String {
        var bytes = Array(text.utf8)
        let index = random.next(below: bytes.count)
        switch random.next(below: 3) {
        case 0: bytes[index] = specials[random.next(below: specials.count)]
        case 1: bytes.insert(specials[random.next(below: specials.count)], at: index)
        default: bytes.remove(at: index)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Up to three places, in order, where `count` bytes are cut into reads.
    static func randomCuts(_ count: Int, _ random: inout SeededRandom) -> [Int] {
        (0..<random.next(below: 4)).map { _ in random.next(below: count + 1) }.sorted()
    }
}

extension SeededRandom {
    mutating func next(below bound: Int) -> Int {
        Int.random(in: 0..<max(bound, 1), using: &self)
    }
}
