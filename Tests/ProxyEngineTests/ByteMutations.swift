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

    /// `body` as chunks of random sizes (hex in either case, some with an extension), the last
    /// chunk, and sometimes a trailer field.
    static func randomChunks(of body: String, _ random: inout SeededRandom) -> String {
        var text = ""
        var rest = Substring(body)
        while !rest.isEmpty {
            let size = 1 + random.next(below: rest.count)
            let ext = random.next(below: 4) == 0 ? ";name=value" : ""
            text += String(size, radix: 16, uppercase: random.next(below: 2) == 0) + ext + "\r\n" + rest.prefix(size) + "\r\n"
            rest = rest.dropFirst(size)
        }
        return text + "0\r\n" + (random.next(below: 3) == 0 ? "X-Trailer: t\r\n" : "") + "\r\n"
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
