import Foundation
import TingxieCore

/// A model folder laid out as sherpa-onnx's releases lay them out, with its family detected
/// from the file names and the ONNX metadata. Values come only from `detect`, which validates
/// the metadata, so every `ModelDirectory` is safe to hand to sherpa-onnx.
public struct ModelDirectory: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case paraformer
        case whisper
        case senseVoice = "sense_voice"
        case transducer
    }

    public let url: URL
    public let family: Family
    /// The single model file (Paraformer, SenseVoice).
    public let model: URL?
    public let encoder: URL?
    public let decoder: URL?
    public let joiner: URL?
    public let tokens: URL
    /// The BPE vocabulary (`bpe.vocab`) that BPE transducers need to encode hotwords.
    public var bpeVocab: URL?

    /// A name for logs and APIs: the folder's name.
    public var name: String { url.lastPathComponent }

    /// Metadata keys sherpa-onnx reads without a default; a missing one makes it `exit(-1)`.
    static let requiredMetadata: [Family: [String]] = [
        .paraformer: ["vocab_size", "lfr_window_size", "lfr_window_shift", "neg_mean", "inv_stddev"],
        .senseVoice: ["vocab_size", "lfr_window_size", "lfr_window_shift", "normalize_samples",
                      "with_itn", "without_itn", "lang_auto", "lang_zh", "lang_en", "lang_ja", "lang_ko",
                      "lang_yue", "neg_mean", "inv_stddev"],
        .whisper: ["n_mels", "n_text_layer", "n_text_ctx", "n_text_state", "n_vocab", "sot", "eot", "blank_id",
                   "translate", "transcribe", "is_multilingual", "no_timestamps", "no_speech", "sot_sequence"],
        .transducer: ["vocab_size", "context_size"],
    ]

    static let expectedLayouts = """
        expected one of:
          Paraformer / SenseVoice: model.onnx or model.int8.onnx, and tokens.txt
          Whisper: *-encoder*.onnx, *-decoder*.onnx and *-tokens.txt
          Zipformer transducer: encoder*.onnx, decoder*.onnx, joiner*.onnx and tokens.txt
        """

    /// Detects the model family in `url` and validates the model's metadata.
    ///
    /// A folder holding exactly one sub-folder (as a release archive extracts) is looked into.
    /// Where both fp32 and int8 files exist, the int8 ones are chosen.
    /// - Throws: `TingxieError` with `.modelNotFound` when the folder is missing, or
    ///   `.invalidModel` listing what was found and what was expected.
    public static func detect(_ url: URL) throws -> ModelDirectory {
        let files = try ModelFiles.list(url, expected: expectedLayouts)
        let (folder, tokens) = (files.folder, files.tokens)
        var directory: ModelDirectory
        if let encoder = files.encoder, let decoder = files.decoder, let joiner = files.joiner {
            directory = ModelDirectory(url: folder, family: .transducer, model: nil,
                                       encoder: encoder, decoder: decoder, joiner: joiner, tokens: tokens)
            directory.bpeVocab = files.bpeVocab
        } else if let encoder = files.encoder, let decoder = files.decoder {
            directory = ModelDirectory(url: folder, family: .whisper, model: nil,
                                       encoder: encoder, decoder: decoder, joiner: nil, tokens: tokens)
        } else if let single = files.single {
            let metadata = try ONNXMetadata.read(single)
            let family: Family
            if metadata["lang_zh"] != nil || metadata["with_itn"] != nil {
                family = .senseVoice
            } else if metadata["model_type"] == "paraformer" || metadata["lfr_window_size"] != nil
                        || folder.lastPathComponent.lowercased().contains("paraformer") {
                family = .paraformer
            } else {
                throw files.unrecognised("\(single.lastPathComponent) is neither a Paraformer nor a SenseVoice model (model_type=\(metadata["model_type"] ?? "none"))")
            }
            directory = ModelDirectory(url: folder, family: family, model: single,
                                       encoder: nil, decoder: nil, joiner: nil, tokens: tokens)
        } else {
            throw files.unrecognised("no recognisable model files")
        }
        try directory.validate()
        return directory
    }

    /// Checks that the metadata sherpa-onnx reads without a default is present and well formed.
    func validate() throws {
        // sherpa-onnx keeps Whisper's metadata on the encoder and a transducer's on the decoder.
        let carrier: URL
        switch family {
        case .paraformer, .senseVoice: carrier = model!
        case .whisper: carrier = encoder!
        case .transducer: carrier = decoder!
        }
        let metadata = try ONNXMetadata.read(carrier)
        try ModelFiles.require(Self.requiredMetadata[family] ?? [], in: metadata, of: carrier, kind: family.rawValue)
        if family == .paraformer || family == .senseVoice {
            try ModelFiles.checkNormalization(metadata, of: carrier)
        }
        if family == .whisper, metadata["is_multilingual"] != "0",
           metadata["all_language_tokens"] == nil || metadata["all_language_codes"] == nil {
            throw TingxieError(.invalidModel, "\(carrier.lastPathComponent): a multilingual Whisper model needs all_language_tokens and all_language_codes metadata")
        }
        // Other files must at least be well-formed ONNX: corrupt ones make sherpa-onnx fail deep inside.
        for other in [model, encoder, decoder, joiner].compactMap({ $0 }) where other != carrier {
            _ = try ONNXMetadata.read(other)
        }
    }
}

/// The files of a model folder, as sherpa-onnx's release archives lay them out.
struct ModelFiles {
    let folder: URL
    let names: [String]
    let tokens: URL
    let encoder: URL?
    let decoder: URL?
    let joiner: URL?
    /// `model.onnx` or `model.int8.onnx`.
    let single: URL?
    let bpeVocab: URL?
    /// The layouts to name when the folder holds none of them.
    let expected: String

    /// Lists `url`, or the one sub-folder it holds (as a release archive extracts); where both
    /// fp32 and int8 files exist, the int8 ones are chosen.
    /// - Throws: `.modelNotFound` when the folder is missing, `.invalidModel` when it has no tokens file.
    static func list(_ url: URL, expected: String) throws -> ModelFiles {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TingxieError(.modelNotFound, "model directory \(url.path) does not exist")
        }
        var folder = url.standardizedFileURL
        var names = try fileManager.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        if names.count == 1, !names[0].hasSuffix(".onnx") {
            let inner = folder.appendingPathComponent(names[0])
            if fileManager.fileExists(atPath: inner.path, isDirectory: &isDirectory), isDirectory.boolValue {
                folder = inner
                names = try fileManager.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
            }
        }
        let onnx = names.filter { $0.hasSuffix(".onnx") }
        func pick(_ matches: (String) -> Bool) -> URL? {
            let candidates = onnx.filter(matches)
            let chosen = candidates.first { $0.contains(".int8.") } ?? candidates.first
            return chosen.map { folder.appendingPathComponent($0) }
        }
        let tokens = (names.first { $0 == "tokens.txt" } ?? names.first { $0.hasSuffix("tokens.txt") })
            .map { folder.appendingPathComponent($0) }
        let found = names.isEmpty ? "nothing" : names.joined(separator: ", ")
        guard let tokens else { throw TingxieError(.invalidModel, "\(folder.path): no tokens file; found: \(found); \(expected)") }
        return ModelFiles(folder: folder, names: names, tokens: tokens,
                          encoder: pick { $0.contains("encoder") }, decoder: pick { $0.contains("decoder") },
                          joiner: pick { $0.contains("joiner") }, single: pick { $0 == "model.onnx" || $0 == "model.int8.onnx" },
                          bpeVocab: names.contains("bpe.vocab") ? folder.appendingPathComponent("bpe.vocab") : nil, expected: expected)
    }

    /// The error for a folder whose files make no model sherpa-onnx loads.
    func unrecognised(_ reason: String) -> TingxieError {
        let found = names.isEmpty ? "nothing" : names.joined(separator: ", ")
        return TingxieError(.invalidModel, "\(folder.path): \(reason); found: \(found); \(expected)")
    }

    /// Checks that `file`'s metadata has `keys`, non-empty, naming the model `kind` when not.
    static func require(_ keys: [String], in metadata: [String: String], of file: URL, kind: String) throws {
        let missing = keys.filter { (metadata[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw TingxieError(.invalidModel, "\(file.lastPathComponent) is a \(kind) model without the metadata sherpa-onnx needs: missing \(missing.joined(separator: ", ")); re-export it with sherpa-onnx's export script")
        }
    }

    /// Checks that the feature normalisation (`neg_mean`, `inv_stddev`) is two number lists of one length.
    static func checkNormalization(_ metadata: [String: String], of file: URL) throws {
        let vectors = ["neg_mean", "inv_stddev"].map { key in
            (key, metadata[key]!.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) },
             metadata[key]!.split(separator: ",").count)
        }
        for (key, values, fields) in vectors where values.isEmpty || values.count != fields {
            throw TingxieError(.invalidModel, "\(file.lastPathComponent): metadata \(key) is not a list of numbers")
        }
        if vectors[0].1.count != vectors[1].1.count {
            throw TingxieError(.invalidModel, "\(file.lastPathComponent): neg_mean and inv_stddev differ in length")
        }
    }
}
