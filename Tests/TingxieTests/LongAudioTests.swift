import Foundation
import Synchronization
import Testing
import TingxieCore
import TingxiePipeline
import TingxieSherpa
import TingxieText

/// The audio pipeline with Whisper base: every format, a 10-minute meeting, silence.
@Suite(.enabled(if: TestData.realModelsAvailable, TestData.skipReason), .serialized)
struct LongAudioTests {
    func transcribe(_ urls: [URL], recognizer: (any Recognizer)? = nil) async throws -> [Transcript] {
        try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool, recognizer: recognizer)
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
        let recognizer = CountingRecognizer(try #require(WhisperRecognitionTests.recognizer))
        #expect(recognizer.info.givesSegmentTimestamps)
        let transcript = try await transcribe([long.appendingPathComponent("meeting-10min.wav")], recognizer: recognizer)[0]

        let cer = ErrorRate.characterErrorRate([(transcript.text, utterances.map(\.text).joined())])
        let matched = utterances.filter { utterance in
            transcript.segments.contains { abs($0.start - utterance.start) <= 1 && abs($0.end - utterance.end) <= 1 }
        }.count
        // Sentences are recognised together and split back by Whisper's timestamps: each
        // segment's text must be the sentence spoken in its time (the utterance it overlaps most).
        let sentenceErrors = transcript.segments.map { segment -> Double in
            func overlap(_ utterance: (start: Double, end: Double, text: String)) -> Double {
                min(utterance.end, segment.end) - max(utterance.start, segment.start)
            }
            let spoken = utterances.max { overlap($0) < overlap($1) }?.text ?? ""
            return ErrorRate.characterErrorRate([(segment.text, spoken)])
        }
        let rightSentence = sentenceErrors.filter { $0 <= 0.5 }.count
        print(String(format: "meeting-10min: CER %.2f%%, %d of %d utterances with both boundaries within 1 s, %d segments from %d model calls, %d with the text of their own sentence, RTF %.3f",
                     cer * 100, matched, utterances.count, transcript.segments.count, recognizer.pieces, rightSentence, transcript.rtf))
        #expect(utterances.count == 96)
        #expect(abs(transcript.durationS - 600) < 0.01)
        #expect(cer <= 0.15)
        #expect(Double(matched) >= 0.9 * Double(utterances.count))
        #expect(recognizer.pieces < transcript.segments.count / 2, "sentences were not merged")
        #expect(Double(rightSentence) >= 0.95 * Double(transcript.segments.count))
        #expect(zip(transcript.segments, transcript.segments.dropFirst()).allSatisfy { $0.end <= $1.start })
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

/// Forwards to a recogniser, counting the pieces it is given.
final class CountingRecognizer: Recognizer {
    let base: any Recognizer
    private let count = Mutex(0)

    init(_ base: any Recognizer) { self.base = base }

    var info: ModelInfo { base.info }
    var pieces: Int { count.withLock { $0 } }

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        count.withLock { $0 += batch.count }
        return try base.recognize(batch: batch, hotwords: hotwords, options: options)
    }
}
