import ArgumentParser
import Foundation
import TingxieCore
import TingxieSherpa

/// Flags shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder in sherpa-onnx layout (env TINGXIE_MODEL_DIR).")
    var modelDir: String?

    @Option(name: .long, help: "silero VAD model (env TINGXIE_VAD_MODEL; default: vad/silero_vad.onnx in TINGXIE_MODELS_DIR).")
    var vadModel: String?

    @Option(name: .long, help: "ONNX Runtime threads per model call.")
    var threads: Int = 2

    @Option(name: .long, help: "Language of the audio (zh, en, ...).")
    var language: String = "zh"

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
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

    func loadRecognizer() throws -> SherpaRecognizer {
        let directory = try ModelDirectory.detect(try modelDirectory())
        return try SherpaRecognizer(directory: directory, configuration: .init(threads: threads, language: language))
    }

    func loadVAD() throws -> SileroVADFactory {
        let model = vadModel.map { URL(fileURLWithPath: $0) } ?? ModelLocations.vadModel()
        return try SileroVADFactory(configuration: SileroVADConfiguration(model: model))
    }
}

extension OutputFormat: ExpressibleByArgument {}
