/// Redis Cluster's hash slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the
/// key — or of its hash tag, when it has one — modulo 16384, as the cluster specification
/// defines it. Keys with the same tag (`erp:q:{acme}:…`, `erp:{admin}:tree`) share a slot, so a
/// script or `MGET` over them runs on one shard.
///
/// The hash tag is what lies between the first `{` and the first `}` after it, when that is not
/// empty; otherwise (no `{`, no `}` after it, or `{}`) the whole key is hashed.
public enum RedisKeySlot {
    /// Slots of a Redis Cluster: 0..<16384.
    public static let count = 16_384

    public static func slot(of key: String) -> Int {
        var key = key
        return key.withUTF8 { Self.slot(of: $0) }
    }

    public static func slot(of key: some Collection<UInt8>) -> Int {
        if let slot = key.withContiguousStorageIfAvailable({ Self.slot(of: UnsafeBufferPointer(rebasing: $0[...])) }) {
            return slot
        }
        return Array(key).withUnsafeBufferPointer { Self.slot(of: $0) }
    }

    static func slot(of key: UnsafeBufferPointer<UInt8>) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
           let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
           close > open + 1
        {
            hashed = key[(open + 1)..<close]
        }
        return Int(Self.crc16(hashed) & 0x3FFF)
    }

    static func crc16(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ Self.table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    /// CRC16/XMODEM, one entry per byte value.
    private static let table: [UInt16] = (0..<256).map { value in
        var crc = UInt16(value) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
