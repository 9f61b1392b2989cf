import Foundation
import Testing
import TingxieCore

@Suite struct OutputFormatTests {
    static let transcript = Transcript(
        text: "",
        durationS: 3725,
        language: "zh",
        model: "test",
        segments: [
            .init(id: 0, start: 0.5, end: 2.25, text: "大家好"),
            // Long and wordy: must be cut into several cues of at most two lines and seven seconds.
            .init(id: 1, start: 2.0, end: 21.0, text: String(repeating: "今天我们讨论第二季度的销售计划，", count: 5)),
            .init(id: 2, start: 3600.001, end: 3601.5, text: "散会"),
            // Zero-length segments must not become zero-length cues.
            .init(id: 3, start: 3700, end: 3700, text: "嗯"),
        ],
        processingS: 1
    )

    func checkCues(_ cues: [SubtitleParser.Cue]) {
        #expect(cues.count >= 5)
        for cue in cues {
            #expect(cue.end - cue.start <= SubtitleCue.maxDuration + 1e-9)
            #expect(cue.lines.count <= 2)
            #expect(cue.lines.allSatisfy { $0.count <= SubtitleCue.maxLineLength })
        }
        #expect(cues.first?.lines == ["大家好"])
        #expect(cues.last?.lines == ["散会"])
    }

    @Test func srtPassesAStrictParser() throws {
        let srt = OutputFormat.srt.render(Self.transcript)
        checkCues(try SubtitleParser.parseSRT(srt))
        #expect(srt.contains("01:00:00,001 --> 01:00:01,500"))
    }

    @Test func vttPassesAStrictParser() throws {
        let vtt = OutputFormat.vtt.render(Self.transcript)
        checkCues(try SubtitleParser.parseVTT(vtt))
        #expect(vtt.contains("01:00:00.001 --> 01:00:01.500"))
    }

    @Test func emptyTranscriptRendersEmptyButValidFiles() throws {
        let empty = Transcript(text: "", durationS: 10, language: "zh", model: "m", segments: [], processingS: 0.1)
        #expect(try SubtitleParser.parseSRT(OutputFormat.srt.render(empty)).isEmpty)
        #expect(try SubtitleParser.parseVTT(OutputFormat.vtt.render(empty)).isEmpty)
        #expect(OutputFormat.txt.render(empty) == "")
    }

    @Test func jsonFollowsTheProtocolShape() throws {
        let data = Data(OutputFormat.json.render(Self.transcript).utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["text", "duration_s", "language", "model", "segments", "processing_s", "rtf"])
        let segments = try #require(object["segments"] as? [[String: Any]])
        #expect(Set(segments[0].keys) == ["id", "start", "end", "text"])
        #expect(try JSONDecoder().decode(Transcript.self, from: data) == Self.transcript)
    }

    @Test func txtIsOneSegmentPerLine() {
        #expect(OutputFormat.txt.render(Self.transcript).split(separator: "\n").count == 4)
    }
}
