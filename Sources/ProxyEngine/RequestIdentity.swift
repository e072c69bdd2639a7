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

    /// A non-zero 64-bit span id as 16 lowercase hex digits.
    mutating func spanID() -> String {
        var value = self.next()
        if value == 0 { value = 1 }
        return Hex.encode(value)
    }

    /// A non-zero 128-bit trace id as 32 lowercase hex digits.
    mutating func traceID() -> String {
        var high = self.next()
        if high == 0 { high = 1 }
        return Hex.encode(high, self.next())
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

    private static func write(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        // Digits computed, not looked up: the table was a global's lazy accessor and a bounds
        // check per digit, 48 per request (a request id and a trace id).
        for index in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - index * 4)) & 0xF
            buffer[offset + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
        }
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
struct TraceParent: Equatable {
    var version: String
    var traceID: String
    var parentID: String
    var flags: String

    /// Parses per the spec: version 00 must be exactly 55 characters; a later version may carry
    /// more after a '-', which is ignored. Version ff and all-zero ids are invalid.
    init?(_ header: String) {
        let bytes = Array(header.utf8)
        guard bytes.count >= 55 else { return nil }
        guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        let text = Substring(header)
        let version = text.prefix(2)
        let traceID = text.dropFirst(3).prefix(32)
        let parentID = text.dropFirst(36).prefix(16)
        let flags = text.dropFirst(53).prefix(2)
        guard Hex.isLowercaseHex(version.utf8), Hex.isLowercaseHex(traceID.utf8), Hex.isLowercaseHex(parentID.utf8),
            Hex.isLowercaseHex(flags.utf8)
        else { return nil }
        guard version != "ff" else { return nil }
        if version == "00" {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
            return nil
        }
        guard traceID.utf8.contains(where: { $0 != UInt8(ascii: "0") }), parentID.utf8.contains(where: { $0 != UInt8(ascii: "0") }) else {
            return nil
        }
        self.version = String(version)
        self.traceID = String(traceID)
        self.parentID = String(parentID)
        self.flags = String(flags)
    }

    init(traceID: String, parentID: String, flags: String) {
        self.version = "00"
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
    }

    /// Always emitted as version 00, the version this gateway implements. Written into one
    /// buffer: interpolation grew the string three times on every forwarded request.
    var header: String {
        let count = 5 + self.traceID.utf8.count + self.parentID.utf8.count + self.flags.utf8.count
        return String(unsafeUninitializedCapacity: count) { buffer in
            var index = buffer[0...].initialize(from: "00-".utf8).1
            index = buffer[index...].initialize(from: self.traceID.utf8).1
            buffer[index] = UInt8(ascii: "-")
            index = buffer[(index + 1)...].initialize(from: self.parentID.utf8).1
            buffer[index] = UInt8(ascii: "-")
            return buffer[(index + 1)...].initialize(from: self.flags.utf8).1
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
                outgoing: TraceParent(traceID: parent.traceID, parentID: generator.spanID(), flags: parent.flags),
                continuesClientTrace: true, clientParentID: parent.parentID, sampled: sampleRatio > 0 && Self.isSampled(flags: parent.flags)
            )
        }
        var high = generator.next()
        if high == 0 { high = 1 }
        let low = generator.next()
        let sampled = Self.samples(low, ratio: sampleRatio)
        return TraceDecision(
            outgoing: TraceParent(traceID: Hex.encode(high, low), parentID: generator.spanID(), flags: sampled ? "01" : "00"),
            continuesClientTrace: false, sampled: sampled
        )
    }

    /// W3C `sampled`: bit 0 of the flags, i.e. of their low hex digit (the parser admits only
    /// lowercase hex; 'a' is 10, even).
    static func isSampled(flags: String) -> Bool {
        guard let digit = flags.utf8.last else { return false }
        return (digit <= UInt8(ascii: "9") ? digit - UInt8(ascii: "0") : digit - UInt8(ascii: "a")) & 1 == 1
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
