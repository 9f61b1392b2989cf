import Foundation
import TingxieAudio
import TingxieCore
import TingxieText

/// Tingxie against faster-whisper on one long recording with the same Whisper weights (our ONNX
/// conversion and the CTranslate2 `model.bin` it was made from), one system after another in
/// one invocation: RTF (median of `runs` whole-process wall times, model load included), CER of
/// the whole text against the recording's `.tsv` (scored as the tests score), peak RSS, segments,
/// sentences missing (fewer than half of a reference sentence's characters have a counterpart when
/// the whole text is aligned with the reference), and the share of the reference's utterances
/// whose start and end both lie within 1 s of a segment's.
struct PeerBench {
    /// `tingxie transcribe` with the bench's model and thread flags, and the audio with its reference.
    let executable: String
    let modelArguments: [String]
    let audio: URL
    let runs: Int
    let work: URL
    /// `scripts/setup --peers`'s folder: `python/` (faster-whisper) and `whisper-base-ct2/`.
    let peers: URL
    /// `scripts/peers/faster_whisper_run.py`.
    let peerScript: URL
    let language: String
    /// Further Tingxie rows: transcribe flags added to `modelArguments`.
    var variants: [[String]] = []
    /// Whether the faster-whisper rows run.
    var includesFasterWhisper = true

    struct Segment: Decodable {
        var start: Double
        var end: Double
        var text: String
    }

    private struct Output: Decodable { var segments: [Segment] }

    private struct System {
        var name: String
        /// The command for one run that writes its segments (`Output`) to the given file.
        var command: (URL) -> (String, [String])
    }

    func run() throws {
        let reference = try referenceUtterances()
        let audioSeconds = try WAVReader(url: audio).duration ?? 0
        let model = peers.appendingPathComponent("whisper-base-ct2")
        let python = peers.appendingPathComponent("python")
        func fasterWhisper(_ mode: String) -> (URL) -> (String, [String]) {
            { out in ("/usr/bin/env", ["PYTHONPATH=" + python.path, "python3", peerScript.path, model.path, audio.path, out.path, mode, "2", language]) }
        }
        let tingxieOut = work.appendingPathComponent("peers-tingxie")
        let tingxie = ([[]] + variants).map { extra in
            let arguments = modelArguments + extra
            return System(name: "Tingxie `transcribe \(arguments.drop { $0 != "--quiet" }.dropFirst().joined(separator: " "))`") { out in
                (executable, ["transcribe", audio.path, "--format", "json", "--output-dir", out.deletingLastPathComponent().path] + arguments)
            }
        }
        let systems = tingxie + (!includesFasterWhisper ? [] : [
            System(name: "faster-whisper, greedy, vad_filter", command: fasterWhisper("greedy")),
            System(name: "faster-whisper, beam 5 (its default)", command: fasterWhisper("beam5")),
            System(name: "faster-whisper batched, batch 8, greedy", command: fasterWhisper("batched")),
        ])
        say(String(format: "\n## Peers: %@ (%.0f s, %d utterances), faster-whisper with 2 threads, RTF the median of %d whole-process runs",
                   audio.lastPathComponent, audioSeconds, reference.count, runs))
        say("| system | RTF | CER | peak RSS | segments | sentences missing | boundaries within 1 s |")
        say("|---|---:|---:|---:|---:|---:|---:|")
        let normalizer = try TextNormalizer.forLanguage(language)
        for system in systems {
            var walls: [Double] = []
            var peak = 0
            var segments: [Segment] = []
            for _ in 0..<runs {
                try? FileManager.default.removeItem(at: tingxieOut)
                try FileManager.default.createDirectory(at: tingxieOut, withIntermediateDirectories: true)
                // Tingxie names its output after the input; the peer script writes where it is told.
                let out = tingxieOut.appendingPathComponent(audio.deletingPathExtension().lastPathComponent + ".json")
                let (command, arguments) = system.command(out)
                let measured = try MeasuredRun.run(command, arguments)
                guard measured.status == 0 else {
                    throw TingxieError(.internalError, "\(system.name) exited with status \(measured.status): \(command) \(arguments.joined(separator: " "))")
                }
                walls.append(measured.wallSeconds)
                peak = max(peak, measured.peakRSSBytes)
                segments = try JSONDecoder().decode(Output.self, from: Data(contentsOf: out)).segments
            }
            let text = segments.map { normalizer.normalize($0.text) }.joined()
            let scored = ErrorRate.count(hypothesis: text, reference: reference.map(\.text).joined())
            let missing = ErrorRate.heardCharacters(hypothesis: text, sentences: reference.map(\.text))
                .filter { heard in 2 * heard.filter { $0 }.count < heard.count }.count
            let matched = reference.filter { utterance in
                segments.contains { abs($0.start - utterance.start) <= 1 && abs($0.end - utterance.end) <= 1 }
            }
            say(String(format: "| %@ | %.4f | %.2f%% | %.0f MB | %d | %d | %.0f%% |", system.name, walls.sorted()[walls.count / 2] / audioSeconds,
                       100 * Double(scored.errors) / Double(max(1, scored.length)), Double(peak) / 1e6, segments.count, missing,
                       100 * Double(matched.count) / Double(max(1, reference.count))))
        }
    }

    /// `start<TAB>end<TAB>text` lines of the `.tsv` beside the audio.
    private func referenceUtterances() throws -> [Segment] {
        let tsv = audio.deletingPathExtension().appendingPathExtension("tsv")
        return try String(contentsOf: tsv, encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", maxSplits: 2)
            guard fields.count == 3, let start = Double(fields[0]), let end = Double(fields[1]) else {
                throw TingxieError(.invalidArgument, "\(tsv.path): each line must be start<TAB>end<TAB>text, not \"\(line.prefix(60))\"")
            }
            return Segment(start: start, end: end, text: String(fields[2]))
        }
    }
}
