import CSherpaOnnx
import Foundation
import TingxieCore

/// An offline sherpa-onnx recogniser over one model directory.
///
/// Thread-safety: sherpa-onnx's offline recogniser is shared across threads by its own
/// server ("DecodeStreams is thread-safe"): every call here creates its own streams and
/// only reads the recogniser, so the class is `@unchecked Sendable`. The concurrent-decode
/// test checks this for the families we ship.
public final class SherpaRecognizer: Recognizer, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Intra-op threads ONNX Runtime uses for one call.
        public var threads: Int
        /// Language hint for multilingual models (`zh`, `en`, ...; empty means detect).
        public var language: String
        /// ONNX Runtime execution provider: `cpu` or `cuda`.
        public var provider: String

        public init(threads: Int = 2, language: String = "zh", provider: String = "cpu") {
            self.threads = threads
            self.language = language
            self.provider = provider
        }
    }

    public let directory: ModelDirectory
    public let configuration: Configuration
    public let info: ModelInfo
    private let handle: OpaquePointer

    /// Loads the model. Its metadata was validated when the directory was detected, so a bad
    /// model has already thrown instead of letting sherpa-onnx end the process.
    /// - Throws: `TingxieError(.modelError)` when sherpa-onnx cannot load it.
    public init(directory: ModelDirectory, configuration: Configuration = Configuration()) throws {
        self.directory = directory
        self.configuration = configuration
        info = ModelInfo(
            family: directory.family.rawValue,
            name: directory.name,
            emitsTraditional: directory.family == .whisper,
            // Whisper sees 30 s windows; the others grow quadratically past ~30 s.
            maxSegmentSeconds: directory.family == .whisper ? 28 : 30,
            // sherpa-onnx gives token times for Paraformer exports with CIF peaks, SenseVoice and
            // transducers; its Whisper needs an attention output that common exports lack.
            givesTokenTimestamps: directory.family != .whisper
        )
        var strings = CStringArena()
        defer { strings.free() }
        var config = SherpaOnnxOfflineRecognizerConfig()
        config.feat_config.sample_rate = 16_000
        config.feat_config.feature_dim = 80
        config.decoding_method = strings.copy("greedy_search")
        config.model_config.tokens = strings.copy(directory.tokens.path)
        config.model_config.num_threads = Int32(max(1, configuration.threads))
        config.model_config.provider = strings.copy(configuration.provider)
        switch directory.family {
        case .paraformer:
            config.model_config.paraformer.model = strings.copy(directory.model!.path)
        case .senseVoice:
            config.model_config.sense_voice.model = strings.copy(directory.model!.path)
            config.model_config.sense_voice.language = strings.copy(configuration.language.isEmpty ? "auto" : configuration.language)
            config.model_config.sense_voice.use_itn = 1
        case .whisper:
            config.model_config.whisper.encoder = strings.copy(directory.encoder!.path)
            config.model_config.whisper.decoder = strings.copy(directory.decoder!.path)
            config.model_config.whisper.language = strings.copy(configuration.language)
            config.model_config.whisper.task = strings.copy("transcribe")
            config.model_config.whisper.tail_paddings = -1
        case .transducer:
            config.model_config.transducer.encoder = strings.copy(directory.encoder!.path)
            config.model_config.transducer.decoder = strings.copy(directory.decoder!.path)
            config.model_config.transducer.joiner = strings.copy(directory.joiner!.path)
        }
        guard let created = SherpaOnnxCreateOfflineRecognizer(&config) else {
            throw TingxieError(.modelError, "sherpa-onnx could not load the \(directory.family.rawValue) model in \(directory.url.path) (corrupt model file, or tokens that do not match it; see the messages above)")
        }
        handle = created
    }

    deinit {
        SherpaOnnxDestroyOfflineRecognizer(handle)
    }

    public func recognize(batch: [[Float]]) throws -> [RecognitionResult] {
        // Empty pieces get an empty result without a model call.
        let work = batch.indices.filter { !batch[$0].isEmpty }
        var results = Array(repeating: RecognitionResult(text: ""), count: batch.count)
        guard !work.isEmpty else { return results }
        var streams: [OpaquePointer?] = []
        streams.reserveCapacity(work.count)
        defer { for stream in streams { SherpaOnnxDestroyOfflineStream(stream) } }
        for index in work {
            guard let stream = SherpaOnnxCreateOfflineStream(handle) else {
                throw TingxieError(.modelError, "sherpa-onnx could not create a decoding stream")
            }
            streams.append(stream)
            batch[index].withUnsafeBufferPointer { samples in
                SherpaOnnxAcceptWaveformOffline(stream, 16_000, samples.baseAddress, Int32(samples.count))
            }
        }
        streams.withUnsafeMutableBufferPointer { pointers in
            SherpaOnnxDecodeMultipleOfflineStreams(handle, pointers.baseAddress, Int32(pointers.count))
        }
        for (position, index) in work.enumerated() {
            results[index] = try result(of: streams[position])
        }
        return results
    }

    /// Copies a stream's result into Swift values and frees the C result.
    private func result(of stream: OpaquePointer?) throws -> RecognitionResult {
        guard let raw = SherpaOnnxGetOfflineStreamResult(stream) else {
            throw TingxieError(.modelError, "sherpa-onnx returned no result")
        }
        defer { SherpaOnnxDestroyOfflineRecognizerResult(raw) }
        let result = raw.pointee
        let text = result.text.map { String(cString: $0) } ?? ""
        let count = Int(result.count)
        var tokens: [String] = []
        var timestamps: [Double] = []
        if count > 0, let array = result.tokens_arr {
            tokens = (0..<count).map { array[$0].map { String(cString: $0) } ?? "" }
        }
        if count > 0, let stamps = result.timestamps {
            timestamps = (0..<count).map { Double(stamps[$0]) }
        }
        let language = result.lang.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        return RecognitionResult(text: text, tokens: tokens, timestamps: timestamps,
                                 language: language ?? (configuration.language.isEmpty ? nil : configuration.language))
    }
}

/// Owns C copies of strings for the duration of a `SherpaOnnxCreate...` call.
struct CStringArena {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    mutating func copy(_ string: String) -> UnsafePointer<CChar> {
        let pointer = strdup(string)!
        pointers.append(pointer)
        return UnsafePointer(pointer)
    }

    mutating func free() {
        for pointer in pointers { Foundation.free(pointer) }
        pointers.removeAll()
    }
}
