import Foundation

/// Builds WAV files in memory for decoder tests.
enum WAVFixture {
    /// A sine tone as interleaved frames, with the same signal on every channel.
    static func sine(frequency: Double, seconds: Double, sampleRate: Int, amplitude: Double = 0.5) -> [Double] {
        (0..<Int(seconds * Double(sampleRate))).map { amplitude * sin(2 * .pi * frequency * Double($0) / Double(sampleRate)) }
    }

    /// A complete WAV file. `format` is 1 (PCM) or 3 (float); `extensible` wraps it in WAVE_FORMAT_EXTENSIBLE.
    static func file(_ samples: [Double], sampleRate: Int, channels: Int = 1, bits: Int = 16, format: UInt16 = 1,
                     extensible: Bool = false, dataSizeOverride: UInt32? = nil, blockAlignOverride: UInt16? = nil) -> Data {
        var payload = Data()
        for value in samples {
            for _ in 0..<channels {
                switch (format, bits) {
                case (1, 8): payload.append(UInt8(clamping: Int((value * 127).rounded()) + 128))
                case (1, 16): payload.append(le(Int16((value * 32767).rounded())))
                case (1, 24):
                    let v = Int32((value * 8_388_607).rounded())
                    payload.append(contentsOf: [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF)])
                case (1, 32): payload.append(le(Int32((value * 2_147_483_647).rounded())))
                case (3, 32): payload.append(le(Float(value).bitPattern))
                case (3, 64): payload.append(le(value.bitPattern))
                default: fatalError("unsupported fixture format")
                }
            }
        }
        let blockAlign = blockAlignOverride ?? UInt16(channels * bits / 8)
        var fmt = Data()
        fmt.append(le(extensible ? UInt16(0xFFFE) : format))
        fmt.append(le(UInt16(channels)))
        fmt.append(le(UInt32(sampleRate)))
        fmt.append(le(UInt32(sampleRate * channels * bits / 8)))
        fmt.append(le(blockAlign))
        fmt.append(le(UInt16(bits)))
        if extensible {
            fmt.append(le(UInt16(22)))
            fmt.append(le(UInt16(bits)))
            fmt.append(le(UInt32(0)))
            fmt.append(le(format))
            fmt.append(Data([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]))
        }
        var body = Data("WAVE".utf8)
        body.append(Data("fmt ".utf8)); body.append(le(UInt32(fmt.count))); body.append(fmt)
        // An unknown chunk before the data, as many writers add (LIST/INFO).
        body.append(Data("LIST".utf8)); body.append(le(UInt32(3))); body.append(Data([1, 2, 3, 0]))
        body.append(Data("data".utf8)); body.append(le(dataSizeOverride ?? UInt32(payload.count))); body.append(payload)
        var file = Data("RIFF".utf8)
        file.append(le(UInt32(body.count)))
        file.append(body)
        return file
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> Data {
        withUnsafeBytes(of: value.littleEndian) { Data($0) }
    }
}
