import Foundation
import Testing
import TingxieCore
import TingxiePipeline
import TingxieSherpa
import TingxieText

/// The audio pipeline with Whisper base: every format, a 10-minute meeting, silence.
@Suite(.enabled(if: TestData.realModelsAvailable, TestData.skipReason), .serialized)
struct LongAudioTests {
    func transcribe(_ urls: [URL]) async throws -> [Transcript] {
        try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool)
            var transcripts: [Transcript] = []
            for url in urls { transcripts.append(try await pipeline.transcribe(url)) }
            return transcripts
        }
    }

    /// Lossy codecs shift Whisper's output slightly: at most 2 characters a sentence on average
    /// over the five (with Debian's ffmpeg 5.1.9, Opus costs 030 five characters: 5月21上50点 for
    /// 5月21日上午10点); FLAC must be identical.
    @Test func everyFormatGivesTheTextOfItsWAV() async throws {
        let corpus = try #require(TestData.corpus)
        let ids = ["001", "003", "012", "024", "030"]
        var distances: [String: Int] = [:]
        for id in ids {
            let variants = ["\(id).flac", "\(id).mp3", "\(id).m4a", "\(id).ogg", "\(id)_44k1_stereo.wav"]
            let urls = [corpus.appendingPathComponent("\(id).wav")]
                + variants.map { corpus.appendingPathComponent("formats/\($0)") }
            let texts = try await transcribe(urls).map(\.text)
            let reference = ErrorRate.scoringForm(texts[0])
            #expect(!reference.isEmpty)
            #expect(texts[1] == texts[0], "\(id).flac")
            for (variant, text) in zip(variants, texts.dropFirst()).dropFirst() {
                let format = String(variant.dropFirst(4))
                let distance = ErrorRate.editDistance(ErrorRate.scoringForm(text), reference)
                distances[format, default: 0] += distance
                if distance > 2 { print("\(variant): \(text) vs \(texts[0])") }
            }
        }
        print("characters off the WAV's text, over \(ids.count) sentences: \(distances.sorted { $0.key < $1.key })")
        for (format, total) in distances {
            #expect(total <= 2 * ids.count, "\(format): \(total) characters over \(ids.count) sentences")
        }
    }

    @Test func tenMinuteMeeting() async throws {
        let long = try #require(TestData.corpus).appendingPathComponent("long")
        let rows = try String(contentsOf: long.appendingPathComponent("meeting-10min.tsv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: "\t", maxSplits: 2).map(String.init) }
        let utterances = rows.compactMap { row -> (start: Double, end: Double, text: String)? in
            guard row.count == 3, let start = Double(row[0]), let end = Double(row[1]) else { return nil }
            return (start, end, row[2])
        }
        let transcript = try await transcribe([long.appendingPathComponent("meeting-10min.wav")])[0]

        let cer = ErrorRate.characterErrorRate([(transcript.text, utterances.map(\.text).joined())])
        let matched = utterances.filter { utterance in
            transcript.segments.contains { abs($0.start - utterance.start) <= 1 && abs($0.end - utterance.end) <= 1 }
        }.count
        print(String(format: "meeting-10min: CER %.2f%%, %d of %d utterances with both boundaries within 1 s, %d segments, RTF %.3f",
                     cer * 100, matched, utterances.count, transcript.segments.count, transcript.rtf))
        #expect(utterances.count == 96)
        #expect(abs(transcript.durationS - 600) < 0.01)
        #expect(cer <= 0.15)
        #expect(Double(matched) >= 0.9 * Double(utterances.count))
        // Real subtitles of a real meeting pass the strict parsers.
        #expect(try SubtitleParser.parseSRT(OutputFormat.srt.render(transcript)).count >= transcript.segments.count)
        #expect(try SubtitleParser.parseVTT(OutputFormat.vtt.render(transcript)).count >= transcript.segments.count)
    }

    @Test func silenceGivesAnEmptyTranscript() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("silence.wav")
        // Ten seconds of faint noise, as an idle microphone records it.
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<160_000).map { _ in Double.random(in: -0.0005...0.0005, using: &generator) }
        try WAVFixture.file(noise, sampleRate: 16_000).write(to: url)
        let transcript = try await transcribe([url])[0]
        #expect(transcript.segments.isEmpty)
        #expect(transcript.text.isEmpty)
        #expect(abs(transcript.durationS - 10) < 0.01)
    }
}
