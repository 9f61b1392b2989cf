import Foundation
import TingxieCore

/// Reads a RIFF/WAVE file as a stream of 16 kHz mono Float32 chunks.
///
/// Handles PCM 8/16/24/32-bit and IEEE float 32/64-bit (plain or `WAVE_FORMAT_EXTENSIBLE`),
/// any sample rate and channel count. Headers are not trusted: nothing is allocated in
/// proportion to a size the header claims, a streaming size marker (0 or 0xFFFFFFFF) reads to
/// the end of the file, and any other size past the end is reported as a truncated file.
public final class WAVReader: AudioSource {
    public struct Format: Sendable, Equatable {
        public enum Encoding: Sendable, Equatable { case integer, float }
        public var encoding: Encoding
        public var channels: Int
        public var sampleRate: Int
        public var bitsPerSample: Int
        public var bytesPerFrame: Int { channels * bitsPerSample / 8 }
    }

    public let format: Format
    /// Bytes of sample data in the file, after clamping to the file's real size.
    public let dataBytes: Int
    public var duration: Double? { Double(dataBytes / format.bytesPerFrame) / Double(format.sampleRate) }

    private let file: FileHandle
    private var remaining: Int
    private var resampler: Resampler
    private var finished = false
    private static let framesPerChunk = 32_768

    /// Opens `url` and reads its header.
    /// - Throws: `TingxieError` with `.invalidAudio` when the header is malformed, or
    ///   `.unsupportedFormat` when it is not a WAV file or holds an encoding we don't decode.
    public init(url: URL) throws {
        guard let file = FileHandle(forReadingAtPath: url.path) else {
            throw TingxieError(.fileNotFound, "\(url.lastPathComponent): cannot open the file")
        }
        self.file = file
        do {
            let fileSize = Int(try file.seekToEnd())
            try file.seek(toOffset: 0)
            let parsed = try Self.readHeader(file, fileSize: fileSize, name: url.lastPathComponent)
            format = parsed.format
            dataBytes = parsed.dataBytes - parsed.dataBytes % parsed.format.bytesPerFrame
            remaining = dataBytes
            resampler = Resampler(inputRate: format.sampleRate, outputRate: modelSampleRate)
        } catch {
            try? file.close()
            throw error
        }
    }

    deinit { close() }

    /// Whether the first bytes of a file look like a WAV file.
    /// Sample rates Tingxie reads: 1 kHz to 384 kHz, the highest any recorder writes.
    public static let sampleRates = 1_000...384_000

    public static func looksLikeWAV(_ prefix: Data) -> Bool {
        prefix.count >= 12 && (prefix.prefix(4) == Data("RIFF".utf8) || prefix.prefix(4) == Data("RF64".utf8))
            && prefix.dropFirst(8).prefix(4) == Data("WAVE".utf8)
    }

    public func nextChunk() throws -> [Float]? {
        while !finished {
            let frames = min(Self.framesPerChunk, remaining / format.bytesPerFrame)
            if frames == 0 {
                finished = true
                let tail = resampler.flush()
                close()
                return tail.isEmpty ? nil : tail
            }
            let wanted = frames * format.bytesPerFrame
            guard let data = try file.read(upToCount: wanted), !data.isEmpty else {
                remaining = 0
                continue
            }
            let usable = data.count - data.count % format.bytesPerFrame
            // A short read means the file shrank under us: decode what came, then stop.
            remaining = data.count < wanted ? 0 : remaining - usable
            let mono = decode(data.prefix(usable))
            let output = resampler.process(mono)
            if !output.isEmpty { return output }
        }
        return nil
    }

    public func close() {
        try? file.close()
    }

    /// Converts interleaved frames to mono Float32 in [-1, 1] by averaging the channels.
    private func decode(_ data: Data) -> [Float] {
        let channels = format.channels
        let bytesPerSample = format.bitsPerSample / 8
        let frames = data.count / format.bytesPerFrame
        var mono = [Float](repeating: 0, count: frames)
        let scale = 1 / Float(channels)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for frame in 0..<frames {
                var sum: Float = 0
                let frameOffset = frame * format.bytesPerFrame
                for channel in 0..<channels {
                    sum += sample(raw, at: frameOffset + channel * bytesPerSample)
                }
                mono[frame] = sum * scale
            }
        }
        return mono
    }

    @inline(__always)
    private func sample(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Float {
        switch (format.encoding, format.bitsPerSample) {
        case (.integer, 8):
            return (Float(raw[offset]) - 128) / 128
        case (.integer, 16):
            return Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self))) / 32768
        case (.integer, 24):
            let value = Int32(raw[offset]) | Int32(raw[offset + 1]) << 8 | Int32(Int8(bitPattern: raw[offset + 2])) << 16
            return Float(value) / 8_388_608
        case (.integer, 32):
            return Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))) / 2_147_483_648
        case (.float, 32):
            let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            return Self.clean(Float(bitPattern: bits))
        case (.float, 64):
            let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            return Self.clean(Float(Double(bitPattern: bits)))
        default:
            return 0
        }
    }

    /// Float WAVs may hold NaN or values far outside [-1, 1]; models must never see those.
    private static func clean(_ value: Float) -> Float {
        value.isFinite ? min(max(value, -1), 1) : 0
    }

    private static func readHeader(_ file: FileHandle, fileSize: Int, name: String) throws -> (format: Format, dataBytes: Int) {
        guard fileSize > 0 else { throw TingxieError(.invalidAudio, "\(name): the file is empty") }
        guard let riff = try file.read(upToCount: 12), looksLikeWAV(riff) else {
            throw TingxieError(.unsupportedFormat, "\(name): not a WAV file (no RIFF/WAVE header)")
        }
        var format: Format?
        var offset = 12
        // A real WAV has a handful of chunks; a file with thousands is hostile.
        for _ in 0..<256 {
            guard offset + 8 <= fileSize, let header = try file.read(upToCount: 8), header.count == 8 else { break }
            let id = String(decoding: header.prefix(4), as: UTF8.self)
            let size = Int(header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) })
            let bodyStart = offset + 8
            switch id {
            case "fmt ":
                guard size >= 16, let body = try file.read(upToCount: min(size, 64)), body.count >= 16 else {
                    throw TingxieError(.invalidAudio, "\(name): the WAV format chunk is truncated")
                }
                format = try parseFormat(body, name: name)
            case "data":
                guard let format else {
                    throw TingxieError(.invalidAudio, "\(name): the WAV data chunk comes before its format chunk")
                }
                // Writers that stream write 0 or 0xFFFFFFFF here: then the data runs to the end
                // of the file. Any other size past the end means the file was cut short.
                let available = max(0, fileSize - bodyStart)
                if size == 0 || size == 0xFFFF_FFFF { return (format, available) }
                guard size <= available else {
                    throw TingxieError(.invalidAudio, "\(name): the file is truncated: its header declares \(size) bytes of audio, the file holds \(available)")
                }
                return (format, size)
            default:
                break
            }
            offset = bodyStart + size + (size & 1)
            try file.seek(toOffset: UInt64(min(offset, fileSize)))
        }
        if format == nil { throw TingxieError(.invalidAudio, "\(name): the WAV file has no format chunk") }
        throw TingxieError(.invalidAudio, "\(name): the WAV file has no data chunk")
    }

    private static func parseFormat(_ body: Data, name: String) throws -> Format {
        func u16(_ at: Int) -> Int { Int(body.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }) }
        func u32(_ at: Int) -> Int { Int(body.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }) }
        var tag = u16(0)
        let channels = u16(2)
        let sampleRate = u32(4)
        let blockAlign = u16(12)
        let bits = u16(14)
        if tag == 0xFFFE {
            guard body.count >= 26 else { throw TingxieError(.invalidAudio, "\(name): the WAV extensible format chunk is truncated") }
            tag = u16(24)  // the first two bytes of the sub-format GUID are the format tag
        }
        let encoding: Format.Encoding
        switch (tag, bits) {
        case (1, 8), (1, 16), (1, 24), (1, 32): encoding = .integer
        case (3, 32), (3, 64): encoding = .float
        default:
            throw TingxieError(.unsupportedFormat, "\(name): WAV encoding \(tag) with \(bits) bits per sample is not supported (PCM 8/16/24/32-bit and float 32/64-bit are)")
        }
        guard (1...64).contains(channels) else {
            throw TingxieError(.invalidAudio, "\(name): the WAV header says \(channels) channels")
        }
        // Refused before any set-up: the resampler's cost grows with the rate a header claims.
        guard Self.sampleRates.contains(sampleRate) else {
            throw TingxieError(.invalidAudio, "\(name): the WAV header says a sample rate of \(sampleRate) Hz; Tingxie reads 1000 to 384000 Hz")
        }
        let format = Format(encoding: encoding, channels: channels, sampleRate: sampleRate, bitsPerSample: bits)
        guard blockAlign == format.bytesPerFrame else {
            throw TingxieError(.invalidAudio, "\(name): the WAV block size \(blockAlign) does not match \(channels) channels of \(bits) bits")
        }
        return format
    }
}
