/// 16-bit little-endian PCM arriving in messages of any size, as floats: a message that ends
/// in the middle of a sample keeps its odd byte for the next one, so every size of message
/// gives the same samples.
public struct PCMFramer: Sendable {
    private var carry: UInt8?

    public init() {}

    /// The whole samples `bytes` completes, after any byte the previous message left.
    public mutating func samples(_ bytes: some Collection<UInt8>) -> [Float] {
        var samples: [Float] = []
        samples.reserveCapacity((bytes.count + 1) / 2)
        var low = carry
        for byte in bytes {
            if let first = low {
                samples.append(Float(Int16(bitPattern: UInt16(first) | UInt16(byte) << 8)) / 32768)
                low = nil
            } else {
                low = byte
            }
        }
        carry = low
        return samples
    }
}
