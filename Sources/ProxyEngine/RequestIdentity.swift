/// Request ids and W3C trace context: what ties one request's log lines, upstream call and error
/// body together.
///
/// A small, fast generator is kept per connection: request ids need uniqueness, not secrecy, and
/// asking the kernel for randomness on every request costs a system call.
struct IdentifierGenerator {
    private var random: SplitMix64

    init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.random = SplitMix64(seed: seed)
    }

    mutating func next() -> UInt64 {
        self.random.next()
    }

    /// 128 random bits as 32 lowercase hex digits.
    mutating func requestID() -> String {
        Hex.encode(self.next(), self.next())
    }

    /// A non-zero 64-bit span id.
    mutating func spanBits() -> UInt64 {
        let value = self.next()
        return value == 0 ? 1 : value
    }

    /// A 128-bit trace id, high bits first; never all zero.
    mutating func traceBits() -> (high: UInt64, low: UInt64) {
        let high = self.next()
        return (high == 0 ? 1 : high, self.next())
    }
}

enum Hex {
    static func encode(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            self.write(value, into: buffer, at: 0)
            return 16
        }
    }

    /// `high` then `low` as 32 digits, in one string (one allocation, not three).
    static func encode(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            self.write(high, into: buffer, at: 0)
            self.write(low, into: buffer, at: 16)
            return 32
        }
    }

    static func write(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        // Digits computed, not looked up: the table was a global's lazy accessor and a bounds
        // check per digit, 48 per request (a request id and a trace id).
        for index in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - index * 4)) & 0xF
            buffer[offset + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
        }
    }

    /// A byte as two lowercase hex digits.
    static func digits(_ byte: UInt8) -> (UInt8, UInt8) {
        func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble }
        return (digit(byte >> 4), digit(byte & 0xF))
    }

    /// The value of 1 to 16 lowercase hex digits; nil for anything else.
    static func value(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard (1...16).contains(digits.count) else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            let nibble: UInt8
            if digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") {
                nibble = digit - UInt8(ascii: "0")
            } else if digit >= UInt8(ascii: "a"), digit <= UInt8(ascii: "f") {
                nibble = digit - UInt8(ascii: "a") + 10
            } else {
                return nil
            }
            value = value << 4 | UInt64(nibble)
        }
        return value
    }

    static func isLowercaseHex(_ bytes: Substring.UTF8View) -> Bool {
        bytes.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }
}

enum RequestID {
    static let maxLength = 128

    /// A client-supplied id is propagated only when it is short and made of characters that are
    /// safe in logs and headers; anything else is replaced, never echoed.
    static func isAcceptable(_ candidate: String) -> Bool {
        let bytes = candidate.utf8
        guard (1...self.maxLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        }
    }
}

/// A parsed W3C `traceparent` (Trace Context level 1).
///
/// The ids are kept as their bits, and made text when asked: a forwarded request needs only the
/// header, and a trace id, a parent id and the header as three strings were three allocations
/// of a proxied request's 16 (`SITES=1 BUILDS=release bench/allocations.sh`; 32 and 16 hex
/// digits do not fit in a string kept inline).
struct TraceParent: Equatable {
    var version: String
    var traceIDHigh: UInt64
    var traceIDLow: UInt64
    var parentIDBits: UInt64
    var flagBits: UInt8

    /// 32 lowercase hex digits.
    var traceID: String { Hex.encode(self.traceIDHigh, self.traceIDLow) }
    /// 16 lowercase hex digits.
    var parentID: String { Hex.encode(self.parentIDBits) }
    /// 2 lowercase hex digits.
    var flags: String {
        let (high, low) = Hex.digits(self.flagBits)
        return String(decoding: [high, low], as: UTF8.self)
    }

    /// Parses per the spec: version 00 must be exactly 55 characters; a later version may carry
    /// more after a '-', which is ignored. Version ff and all-zero ids are invalid.
    init?(_ header: String) {
        let bytes = Array(header.utf8)
        guard bytes.count >= 55 else { return nil }
        guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        guard let version = Hex.value(bytes[0..<2]), let high = Hex.value(bytes[3..<19]), let low = Hex.value(bytes[19..<35]),
            let parent = Hex.value(bytes[36..<52]), let flags = Hex.value(bytes[53..<55])
        else { return nil }
        guard version != 0xFF else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
            return nil
        }
        guard high != 0 || low != 0, parent != 0 else { return nil }
        self.version = String(decoding: bytes[0..<2], as: UTF8.self)
        self.traceIDHigh = high
        self.traceIDLow = low
        self.parentIDBits = parent
        self.flagBits = UInt8(flags)
    }

    init(traceIDHigh: UInt64, traceIDLow: UInt64, parentID: UInt64, flags: UInt8) {
        self.version = "00"
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.parentIDBits = parentID
        self.flagBits = flags
    }

    /// From ids as text (lowercase hex, 32, 16 and 2 digits).
    init(traceID: String, parentID: String, flags: String) {
        let trace = Array(traceID.utf8)
        self.init(
            traceIDHigh: Hex.value(trace[0..<16]) ?? 0, traceIDLow: Hex.value(trace[16..<32]) ?? 0,
            parentID: Hex.value(Array(parentID.utf8)[...]) ?? 0, flags: UInt8(Hex.value(Array(flags.utf8)[...]) ?? 0)
        )
    }

    /// Always emitted as version 00, the version this gateway implements, written in one string.
    var header: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "0")
            buffer[2] = UInt8(ascii: "-")
            Hex.write(self.traceIDHigh, into: buffer, at: 3)
            Hex.write(self.traceIDLow, into: buffer, at: 19)
            buffer[35] = UInt8(ascii: "-")
            Hex.write(self.parentIDBits, into: buffer, at: 36)
            buffer[52] = UInt8(ascii: "-")
            let flags = Hex.digits(self.flagBits)
            buffer[53] = flags.0
            buffer[54] = flags.1
            return 55
        }
    }
}

/// The gateway is a participant in the trace: it keeps the client's trace id when the client sent a
/// valid `traceparent`, starts a new trace otherwise, and always forwards its own span id as the
/// upstream's parent.
struct TraceDecision {
    var outgoing: TraceParent
    var continuesClientTrace: Bool
    /// The client's span (the `parent-id` it sent), parent of the gateway's hop span.
    var clientParentID: String? = nil

    /// Whether the gateway records its own spans of the trace: the client's sampled flag when
    /// it continues a trace (unless the ratio is 0: tracing off), the ratio's verdict when the
    /// gateway starts one. Never changes what is forwarded for a client's trace.
    var sampled = false

    /// `sampleRatio` is the `tracing.sampling` setting: the share of the traces the gateway
    /// starts that it marks sampled (W3C flags `01`), and 0 to record none. Without tracing it
    /// is 0, so nothing changes for the upstream.
    static func decide(incoming: String?, sampleRatio: Double = 0, generator: inout IdentifierGenerator) -> TraceDecision {
        if let incoming, let parent = TraceParent(incoming) {
            return TraceDecision(
                outgoing: TraceParent(traceIDHigh: parent.traceIDHigh, traceIDLow: parent.traceIDLow, parentID: generator.spanBits(), flags: parent.flagBits),
                continuesClientTrace: true, clientParentID: parent.parentID, sampled: sampleRatio > 0 && parent.flagBits & 1 == 1
            )
        }
        let (high, low) = generator.traceBits()
        let sampled = Self.samples(low, ratio: sampleRatio)
        return TraceDecision(
            outgoing: TraceParent(traceIDHigh: high, traceIDLow: low, parentID: generator.spanBits(), flags: sampled ? 1 : 0),
            continuesClientTrace: false, sampled: sampled
        )
    }

    /// The decision of OpenTelemetry's trace-id-ratio sampler: the trace id's random low 64 bits
    /// against the ratio, so every node that sees the same new trace id decides alike.
    static func samples(_ randomBits: UInt64, ratio: Double) -> Bool {
        if ratio >= 1 { return true }
        guard ratio > 0 else { return false }
        return randomBits < UInt64(ratio * 18_446_744_073_709_551_616.0)
    }
}

/// SplitMix64: statistically sound, one multiply-xorshift chain per call. For what needs an even
/// spread and uniqueness, not secrecy — request and span ids, sampling decisions — kept per
/// connection or per loop, so no call asks the kernel for randomness or takes a lock.
public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
