import Foundation
import Testing
import TingxieAudio
import TingxieCore
import TingxiePipeline

@Suite struct AudioDecodingTests {
    /// Writes `data` to a temporary `input.wav` and runs `body` on it.
    func withFile<T>(_ data: Data, named name: String = "input.wav", _ body: (URL) throws -> T) throws -> T {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return try body(url)
    }

    func decode(_ data: Data) throws -> [Float] {
        try withFile(data) { url in
            let source = try AudioDecoder.open(url)
            defer { source.close() }
            return try source.readAll()
        }
    }

    /// Amplitude and frequency of a decoded sine, measured away from the edges.
    func measure(_ samples: [Float]) -> (peak: Float, frequency: Double) {
        let middle = samples[samples.count / 4 ..< samples.count * 3 / 4]
        let peak = middle.map(abs).max() ?? 0
        var crossings = 0
        var previous = middle.first ?? 0
        for value in middle.dropFirst() {
            if previous < 0 && value >= 0 { crossings += 1 }
            previous = value
        }
        return (peak, Double(crossings) / (Double(middle.count) / 16_000))
    }

    @Test(arguments: [
        (rate: 16_000, channels: 1, bits: 16, format: UInt16(1), extensible: false),
        (rate: 44_100, channels: 2, bits: 16, format: UInt16(1), extensible: false),
        (rate: 48_000, channels: 1, bits: 24, format: UInt16(1), extensible: true),
        (rate: 8_000, channels: 1, bits: 8, format: UInt16(1), extensible: false),
        (rate: 22_050, channels: 6, bits: 32, format: UInt16(1), extensible: false),
        (rate: 32_000, channels: 1, bits: 32, format: UInt16(3), extensible: false),
        (rate: 96_000, channels: 2, bits: 64, format: UInt16(3), extensible: true),
    ])
    func decodesEncodingsRatesAndChannelsTo16kMono(_ c: (rate: Int, channels: Int, bits: Int, format: UInt16, extensible: Bool)) throws {
        let tone = WAVFixture.sine(frequency: 440, seconds: 1.5, sampleRate: c.rate)
        let samples = try decode(WAVFixture.file(tone, sampleRate: c.rate, channels: c.channels, bits: c.bits,
                                                 format: c.format, extensible: c.extensible))
        #expect(abs(samples.count - 24_000) <= 2)
        let measured = measure(samples)
        #expect(abs(measured.peak - 0.5) < 0.03)
        #expect(abs(measured.frequency - 440) < 5)
    }

    @Test func resamplingInChunksEqualsResamplingAtOnce() {
        let input = WAVFixture.sine(frequency: 1000, seconds: 0.5, sampleRate: 44_100).map(Float.init)
        var whole = Resampler(inputRate: 44_100, outputRate: 16_000)
        let expected = whole.process(input) + whole.flush()
        var chunked = Resampler(inputRate: 44_100, outputRate: 16_000)
        var output: [Float] = []
        var offset = 0
        for size in [1, 7, 1000, 333, 4096, 20_000] where offset < input.count {
            let end = min(input.count, offset + size)
            output += chunked.process(Array(input[offset..<end]))
            offset = end
        }
        output += chunked.process(Array(input[offset...])) + chunked.flush()
        #expect(output.count == expected.count)
        #expect(zip(output, expected).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func removesContentAboveTheNewNyquist() throws {
        // 12 kHz cannot exist at 16 kHz; it must be filtered out, not folded down to 4 kHz.
        let tone = WAVFixture.sine(frequency: 12_000, seconds: 1, sampleRate: 48_000)
        let samples = try decode(WAVFixture.file(tone, sampleRate: 48_000))
        #expect(measure(samples).peak < 0.01)
    }

    @Test func streamingSizeMarkerReadsToTheEndOfTheFile() throws {
        let tone = WAVFixture.sine(frequency: 440, seconds: 0.25, sampleRate: 16_000)
        let samples = try decode(WAVFixture.file(tone, sampleRate: 16_000, dataSizeOverride: 0xFFFF_FFFF))
        #expect(samples.count == tone.count)
        // A 70-byte file whose header claims 4 GB of data: 12 bytes are read, nothing more is allocated.
        let tiny = WAVFixture.file(Array(tone.prefix(6)), sampleRate: 16_000, dataSizeOverride: 0xFFFF_FFFF)
        #expect(tiny.count < 80)
        #expect(try withFile(tiny) { try WAVReader(url: $0).dataBytes } == 12)
        #expect(try decode(tiny).count == 6)
    }

    @Test func headerClaimingMoreDataThanTheFileHoldsIsTruncated() throws {
        let tone = WAVFixture.sine(frequency: 440, seconds: 0.25, sampleRate: 16_000)
        let error = try #require(throws: TingxieError.self) {
            try decode(WAVFixture.file(tone, sampleRate: 16_000, dataSizeOverride: 1_000_000))
        }
        #expect(error.code == .invalidAudio)
        #expect(error.message.contains("truncated"))
    }

    /// Real encoder output cut to a third of its bytes, or with 2 KB in the middle overwritten,
    /// in the five formats of the corpus: never a plain success. Without `allowPartial` it is an
    /// error that says how much was readable (or that the file cannot be read at all); with it,
    /// the readable audio and a warning that says the same.
    @Test(.enabled(if: TestData.corpus != nil, TestData.skipReason),
          arguments: ["003.mp3", "003.flac", "003.m4a", "003.ogg", "003_44k1_stereo.wav", "012.mp3", "012.flac", "012.ogg"])
    func damagedFilesAreNeverAPlainSuccess(_ file: String) throws {
        let corpus = try #require(TestData.corpus)
        let original = try Data(contentsOf: corpus.appendingPathComponent("formats/\(file)"))
        var flipped = [UInt8](original)
        var generator = SystemRandomNumberGenerator()
        for index in (flipped.count / 2)..<(flipped.count / 2 + 2048) { flipped[index] = UInt8.random(in: 0...255, using: &generator) }
        // Overwritten PCM is only other samples: nothing can tell, so WAV is only cut.
        let damaged = [("cut to a third", original.prefix(original.count / 3))]
            + (file.hasSuffix(".wav") ? [] : [("2 KB overwritten", Data(flipped))])
        for (damage, data) in damaged {
            let name = file.replacingOccurrences(of: "003", with: "input")
            let outcome: String = try withFile(data, named: name) { url in
                do {
                    let source = try AudioDecoder.open(url)
                    defer { source.close() }
                    let samples = try source.readAll()
                    Issue.record("\(file) \(damage): a plain success with \(samples.count) samples")
                    return "success"
                } catch let error as TingxieError {
                    #expect([.audioTruncated, .audioCorrupt, .invalidAudio, .unsupportedFormat].contains(error.code), "\(file) \(damage): \(error.message)")
                    if [.audioTruncated, .audioCorrupt].contains(error.code) {
                        #expect(error.message.contains(" s"), "\(error.message)")
                        // Allowed, the same file gives what was readable and says so.
                        let source = try AudioDecoder.open(url, allowPartial: true)
                        defer { source.close() }
                        let samples = try source.readAll()
                        #expect(source.warnings == [error.message])
                        print(String(format: "%@ %@: %@ -> allowed: %.1f s and a warning", file, damage, error.code.rawValue, Double(samples.count) / 16_000))
                    } else {
                        print("\(file) \(damage): \(error.code.rawValue) (\(error.message.prefix(80)))")
                    }
                    return error.code.rawValue
                }
            }
            #expect(outcome != "success")
        }
    }

    /// A VBR MP3 without a Xing header only lets ffprobe estimate its length from the first
    /// frames' bitrate; the decoder's length is the truth, so the whole file is decoded.
    @Test(.enabled(if: TestData.corpus != nil, TestData.skipReason))
    func aVBRMP3WithoutAXingHeaderDecodesWhole() async throws {
        try await offThePool { try Self.vbrMP3DecodesWhole() }
    }

    static func vbrMP3DecodesWhole() throws {
        let corpus = try #require(TestData.corpus)
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Silence first (few bits a frame), then speech: the estimate from the start is far off.
        let silence = [Float](repeating: 0, count: 16_000 * 20)
        let speech = try (1...6).flatMap { try TestData.samples(corpus.appendingPathComponent(String(format: "%03d.wav", $0))) }
        let wav = directory.appendingPathComponent("input.wav")
        let writer = try WAVWriter(url: wav)
        try writer.append(silence + speech)
        try writer.finish()
        let mp3 = directory.appendingPathComponent("vbr.mp3")
        try Subprocess.run("ffmpeg", ["-v", "error", "-i", wav.path, "-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0", mp3.path],
                           limits: SubprocessLimits())
        let probed = try #require(try FFmpegSource.probe(mp3).duration)
        let expected = Double(silence.count + speech.count) / 16_000
        let decoded = try AudioDecoder.open(mp3).readAll()
        print(String(format: "VBR MP3 without Xing: %.1f s of audio, ffprobe estimates %.1f s, %.1f s decoded", expected, probed, Double(decoded.count) / 16_000))
        #expect(abs(probed - expected) > 2, "the estimate should be off for this test to mean anything")
        #expect(abs(Double(decoded.count) / 16_000 - expected) < 0.5)
    }

    /// A Matroska file whose header says 5 s over two minutes of audio: ffmpeg stops a little
    /// after what the file said (1.5 x 5 s + 60 s), never decoding what it hid.
    @Test func decodingStopsNotFarPastTheProbedDuration() async throws {
        try await offThePool { try Self.lyingMatroskaStopsEarly() }
    }

    static func lyingMatroskaStopsEarly() throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let honest = directory.appendingPathComponent("honest.mka")
        try Subprocess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=125",
                                      "-c:a", "pcm_s16le", honest.path], limits: SubprocessLimits())
        // The Segment's Duration element (ID 0x4489, an 8-byte float in milliseconds) -> 5000.
        var bytes = [UInt8](try Data(contentsOf: honest))
        let at = try #require((0..<(bytes.count - 11)).first { bytes[$0] == 0x44 && bytes[$0 + 1] == 0x89 && bytes[$0 + 2] == 0x88 })
        bytes.replaceSubrange((at + 3)..<(at + 11), with: withUnsafeBytes(of: (5000.0).bitPattern.bigEndian, Array.init))
        let lying = directory.appendingPathComponent("lying.mka")
        try Data(bytes).write(to: lying)
        let probed = try #require(try FFmpegSource.probe(lying).duration)
        let decoded = Double(try AudioDecoder.open(lying).readAll().count) / 16_000
        print(String(format: "Matroska claiming %.1f s over 125 s of audio: %.1f s decoded", probed, decoded))
        #expect(probed == 5)
        #expect(decoded <= probed * 1.5 + 61)
    }

    @Test func validHeaderWithoutFramesDecodesToNothing() throws {
        #expect(try decode(WAVFixture.file([], sampleRate: 16_000)).isEmpty)
    }

    @Test(arguments: [
        ("zero channels", WAVFixture.file([0.1], sampleRate: 16_000, channels: 0), TingxieError.Code.invalidAudio),
        ("zero sample rate", WAVFixture.file([0.1], sampleRate: 0), .invalidAudio),
        ("767999 Hz", WAVFixture.file([0.1], sampleRate: 767_999), .invalidAudio),
        ("384001 Hz", WAVFixture.file([0.1], sampleRate: 384_001), .invalidAudio),
        ("absurd block size", WAVFixture.file([0.1], sampleRate: 16_000, blockAlignOverride: 60_000), .invalidAudio),
        ("12-bit PCM", WAVFixture.file([], sampleRate: 16_000, bits: 12), .unsupportedFormat),
        ("empty file", Data(), .invalidAudio),
        ("random bytes", Data((0..<4096).map { _ in UInt8.random(in: 0...255) }), .unsupportedFormat),
        ("text file", Data("这不是音频文件\n".utf8), .unsupportedFormat),
        ("ELF binary", (try? Data(contentsOf: URL(fileURLWithPath: "/bin/true"))) ?? Data("\u{7F}ELF".utf8), .unsupportedFormat),
        ("HLS playlist", Data("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n".utf8), .unsupportedFormat),
        ("ffconcat", Data("ffconcat version 1.0\nfile '/etc/passwd'\n".utf8), .unsupportedFormat),
        ("header only", Data("RIFF\u{24}\0\0\0WAVE".utf8), .invalidAudio),
    ])
    func rejectsBadInputWithAClearError(_ name: String, _ data: Data, _ code: TingxieError.Code) throws {
        let error = try #require(throws: TingxieError.self, "\(name)") { try decode(data) }
        #expect(error.code == code, "\(name): \(error.message)")
        #expect(error.message.hasPrefix("input.wav: "))
    }
}
