import Foundation
import TingxieCore
import TingxieRuntime
import TingxieAudio
import TingxieServer
import TingxieSherpa
import TingxieText
import TingxieWhisper

/// One Whisper decoder step, timed per piece at several batch sizes on Tingxie's step graph
/// (`*-step.int8.onnx`, the converter's layout 5), against the graph sherpa-onnx runs (one piece a
/// call, the caches copied in and out) on the same ONNX Runtime in the same run.
struct StepBench {
    let modelDirectory: URL
    let corpus: URL
    let threads: Int
    let batches = [1, 4, 8, 16]
    /// Timed steps per batch size, after the prompt and a warm-up.
    let steps = 60

    func run() throws {
        let directory = try ModelDirectory.detect(modelDirectory)
        guard directory.family == .whisper, let encoderURL = directory.encoder, let decoderURL = directory.decoder else {
            throw TingxieError(.invalidModel, "\(modelDirectory.path) is not a Whisper model")
        }
        let stepURL = try WhisperStepGraph.find(in: directory.url)
        let metadata = try ONNXMetadata.read(encoderURL)
        let dimensions = try WhisperDimensions(metadata: metadata)
        let tokens = try WhisperTokens(metadata: metadata)
        let prompt = try tokens.prompt(language: "zh")
        say("\n## Whisper decoder step, \(threads) threads, ONNX Runtime \(try ONNXRuntime.libraryVersion()) (\(stepURL.lastPathComponent))")
        let encoder = WhisperEncoder(session: try RuntimeSession(model: encoderURL, threads: threads), dimensions: dimensions,
                                     mels: Int(metadata["n_mels"] ?? "") ?? 80)
        let cross = try encoder.encode(Self.syntheticMel(encoder.mels, frames: 2 * dimensions.frames), melFrames: 2 * dimensions.frames)
        let features = WhisperFeatures(mels: encoder.mels)
        let noise = Self.syntheticMel(1, frames: 30 * 16_000).map { $0 * 0.1 }
        let started = DispatchTime.now().uptimeNanoseconds
        _ = features.logMel(noise)
        say(String(format: "Whisper features of 30 s of audio: %.1f ms", Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6))
        say("cross keys and values from the encoder on a synthetic 30-s log-mel; greedy tokens; per step: the model call, the cache writes, the argmax")
        say("batch  ms a step  ms a piece-step  RSS after")
        let today = try WhisperCacheCopyingDecoder(decoder: try RuntimeSession(model: decoderURL, threads: threads), dimensions: dimensions,
                                                   cross: cross, width: prompt.count)
        let baseline = try timed { fed in [Int64(whisperArgmax(try today.step(fed[0]), width: dimensions.vocabulary))] }
        say(String(format: "%5@  %9.2f  %15.2f  %6.0f MB   (the graph sherpa-onnx runs, batch 1)", "today", baseline, baseline, residentMB()))
        let step = try RuntimeSession(model: stepURL, threads: threads)
        for size in batches {
            let batch = try WhisperStepBatch(step: step, dimensions: dimensions, capacity: size, width: max(prompt.count, 1))
            for slot in 0..<size { try batch.load(slot: slot, cross, spoken: cross.frames) }
            var offsets = Array(repeating: 0, count: size)
            let perStep = try timed(size: size) { fed in
                let logits = try batch.step(tokens: fed, offsets: offsets)
                for slot in 0..<size { offsets[slot] += fed[slot].count }
                return (0..<size).map { Int64(whisperArgmax(logits, row: $0, width: dimensions.vocabulary)) }
            }
            say(String(format: "%5d  %9.2f  %15.2f  %6.0f MB", size, perStep, perStep / Double(size), residentMB()))
        }
        try decodeCorpus(directory, encoder: encoder, step: step, dimensions: dimensions, tokens: tokens, prompt: prompt)

        /// ms a step of `step` over `steps` greedy steps after the prompt and one more, for `size` pieces.
        func timed(size: Int = 1, _ step: ([[Int64]]) throws -> [Int64]) throws -> Double {
            var fed = Array(repeating: prompt, count: size), elapsed = 0.0
            for index in 0..<(steps + 2) {
                let started = DispatchTime.now().uptimeNanoseconds
                fed = try step(fed).map { [$0] }
                if index >= 2 { elapsed += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
            }
            return elapsed / Double(steps) * 1000
        }
    }

    /// The corpus's sentences decoded by sherpa-onnx and by Tingxie's decoder at several batch sizes.
    private func decodeCorpus(_ directory: ModelDirectory, encoder: WhisperEncoder, step: RuntimeSession, dimensions: WhisperDimensions,
                              tokens: WhisperTokens, prompt: [Int64]) throws {
        let transcripts = try String(contentsOf: corpus.appendingPathComponent("transcripts.tsv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: "\t", maxSplits: 1).map(String.init) }.filter { $0.count == 2 }
        let audio = try transcripts.map { try WAVReader(url: corpus.appendingPathComponent("\($0[0]).wav")).readAll() }
        let seconds = Double(audio.reduce(0) { $0 + $1.count }) / 16_000
        let normalizer = try TextNormalizer.forLanguage("zh")
        func rate(_ texts: [String]) -> Double {
            ErrorRate.characterErrorRate(zip(texts, transcripts).map { (normalizer.normalize($0), $1[1]) })
        }
        say(String(format: "\n## The corpus decoded: %d sentences, %.1f s, padded as sherpa-onnx pads them (1000 frames)", audio.count, seconds))
        say("decoder                      features+encoder  decoder  RTF     CER")
        let sherpa = try SherpaRecognizer(directory: directory, configuration: .init(threads: threads, language: "zh"))
        var started = DispatchTime.now().uptimeNanoseconds
        let theirs = try audio.map { try sherpa.recognize(batch: [$0], hotwords: [], options: RecognitionOptions(language: "zh"))[0].text }
        let sherpaSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        say(String(format: "sherpa-onnx (one a call)     %25.2fs  %.4f  %.2f%%", sherpaSeconds, sherpaSeconds / seconds, rate(theirs) * 100))
        started = DispatchTime.now().uptimeNanoseconds
        let pieces = try audio.map { try encoder.piece($0) }
        let encoding = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let vocabulary = try WhisperVocabulary(contentsOf: directory.tokens)
        for capacity in [1, 4, 8] {
            let decoder = try WhisperDecoder(step: step, dimensions: dimensions, tokens: tokens, capacity: capacity)
            started = DispatchTime.now().uptimeNanoseconds
            let decoded = try decoder.decode(pieces, prompt: prompt)
            let decoding = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            say(String(format: "Tingxie, batch %-2d           %15.2fs  %6.2fs  %.4f  %.2f%%", capacity, encoding, decoding,
                       (encoding + decoding) / seconds, rate(decoded.map { vocabulary.text($0.tokens) }) * 100))
        }
    }

    /// A fixed pseudo-random log-mel [mels, frames] in the range Whisper's normalised features take.
    static func syntheticMel(_ mels: Int, frames: Int) -> [Float] {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<(mels * frames)).map { _ in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(seed >> 40) / Float(1 << 24) * 1.6 - 1.0
        }
    }

    private func residentMB() -> Double {
        Double(SystemResources.kilobytes("VmRSS:", in: "/proc/self/status") ?? 0) / 1024
    }
}
