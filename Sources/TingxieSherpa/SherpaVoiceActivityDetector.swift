import CSherpaOnnx
import Foundation
import TingxieCore

/// Settings for silero VAD through sherpa-onnx.
public struct SileroVADConfiguration: Sendable {
    /// Path to `silero_vad.onnx`.
    public var model: URL
    public var threshold: Float
    /// Silence that ends a segment, in seconds. Clause pauses in read speech reach 0.5 s: at 0.5
    /// the corpus meeting lost 8 of 96 utterance boundaries to mid-sentence cuts, at 0.6 none.
    public var minSilence: Float
    /// Speech shorter than this is dropped, in seconds.
    public var minSpeech: Float
    /// Speech longer than this is cut by the VAD itself; the pipeline splits segments again at
    /// a quiet point below the model's limit, so this only bounds memory.
    public var maxSpeech: Float

    public init(model: URL, threshold: Float = 0.5, minSilence: Float = 0.6, minSpeech: Float = 0.25,
                maxSpeech: Float = 120) {
        self.model = model
        self.threshold = threshold
        self.minSilence = minSilence
        self.minSpeech = minSpeech
        self.maxSpeech = maxSpeech
    }
}

/// Makes a silero VAD per audio stream.
public struct SileroVADFactory: VoiceActivityDetectorFactory {
    public let configuration: SileroVADConfiguration

    /// - Throws: `TingxieError(.modelNotFound)` when the model file is missing.
    public init(configuration: SileroVADConfiguration) throws {
        guard FileManager.default.fileExists(atPath: configuration.model.path) else {
            throw TingxieError(.modelNotFound, "VAD model \(configuration.model.path) not found (scripts/setup installs it into .deps/models/vad/)")
        }
        _ = try ONNXMetadata.read(configuration.model)
        self.configuration = configuration
    }

    private init(checked configuration: SileroVADConfiguration) {
        self.configuration = configuration
    }

    public func makeDetector() throws -> any VoiceActivityDetector {
        try SherpaVoiceActivityDetector(configuration: configuration)
    }

    public func limitingSpeech(to seconds: Double) -> any VoiceActivityDetectorFactory {
        var limited = configuration
        limited.maxSpeech = min(limited.maxSpeech, Float(seconds))
        return SileroVADFactory(checked: limited)
    }
}

/// silero VAD over one 16 kHz stream. Confined to the thread that drives it.
final class SherpaVoiceActivityDetector: VoiceActivityDetector {
    /// sherpa-onnx dates a segment's start and end from the end of the audio it was given in
    /// one call, so the VAD is fed one model window at a time to keep boundaries exact.
    private static let window = 512
    private let handle: OpaquePointer
    /// Forces a segment out when speech runs on this long (samples). sherpa-onnx only raises
    /// its threshold past `maxSpeech`, which loud music can still pass, and its buffer grows.
    private let hardLimit: Int
    private var openSamples = 0
    /// Speech silero needs before it says so: the open segment starts this much earlier.
    private let detectionDelay: Int

    init(configuration: SileroVADConfiguration) throws {
        var strings = CStringArena()
        defer { strings.free() }
        var config = SherpaOnnxVadModelConfig()
        config.silero_vad.model = strings.copy(configuration.model.path)
        config.silero_vad.threshold = configuration.threshold
        config.silero_vad.min_silence_duration = configuration.minSilence
        config.silero_vad.min_speech_duration = configuration.minSpeech
        config.silero_vad.max_speech_duration = configuration.maxSpeech
        config.silero_vad.window_size = 512
        config.sample_rate = 16_000
        config.num_threads = 1
        config.provider = strings.copy("cpu")
        guard let created = SherpaOnnxCreateVoiceActivityDetector(&config, configuration.maxSpeech + 10) else {
            throw TingxieError(.modelError, "sherpa-onnx could not load the VAD model \(configuration.model.path)")
        }
        handle = created
        hardLimit = Int(configuration.maxSpeech * 1.5 * 16_000)
        detectionDelay = Int(configuration.minSpeech * 16_000) + Self.window
    }

    deinit {
        SherpaOnnxDestroyVoiceActivityDetector(handle)
    }

    func accept(_ samples: [Float]) throws -> [SpeechSegment] {
        samples.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = min(Self.window, buffer.count - offset)
                SherpaOnnxVoiceActivityDetectorAcceptWaveform(handle, buffer.baseAddress! + offset, Int32(count))
                offset += count
                if SherpaOnnxVoiceActivityDetectorDetected(handle) == 0 {
                    openSamples = 0
                } else {
                    openSamples += count
                    if openSamples > hardLimit {
                        SherpaOnnxVoiceActivityDetectorFlush(handle)
                        openSamples = 0
                    }
                }
            }
        }
        return drain()
    }

    var openSpeechSamples: Int { openSamples == 0 ? 0 : openSamples + detectionDelay }

    func finish() throws -> [SpeechSegment] {
        SherpaOnnxVoiceActivityDetectorFlush(handle)
        openSamples = 0
        return drain()
    }

    private func drain() -> [SpeechSegment] {
        var segments: [SpeechSegment] = []
        while SherpaOnnxVoiceActivityDetectorEmpty(handle) == 0 {
            if let front = SherpaOnnxVoiceActivityDetectorFront(handle) {
                let segment = front.pointee
                let samples = Array(UnsafeBufferPointer(start: segment.samples, count: Int(segment.n)))
                segments.append(SpeechSegment(startSample: Int(segment.start), samples: samples))
                SherpaOnnxDestroySpeechSegment(front)
            }
            SherpaOnnxVoiceActivityDetectorPop(handle)
        }
        return segments
    }
}
