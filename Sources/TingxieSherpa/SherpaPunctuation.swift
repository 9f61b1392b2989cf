import CSherpaOnnx
import Foundation
import TingxieCore

/// Punctuation from a CT-Transformer model (FunASR's, exported for sherpa-onnx's offline
/// punctuation): for models whose text has none (Paraformer, transducers).
public final class SherpaPunctuation: Punctuator, @unchecked Sendable {
    /// The model file: `model.int8.onnx` or `model.onnx` in the folder given.
    public let model: URL
    public let name: String
    // sherpa-onnx's punctuation is read-only after creation; ONNX Runtime sessions take
    // concurrent runs.
    private let handle: OpaquePointer

    /// Metadata sherpa-onnx reads without a default (a missing one ends the process), and the
    /// punctuation marks it looks up by name.
    static let requiredMetadata = ["tokens", "vocab_size", "punctuations", "unk_symbol"]
    static let requiredMarks = ["_", "，", "。", "？", "、"]

    /// Loads the model in `folder` (or in its only sub-folder, as a release archive extracts).
    /// - Throws: `TingxieError` with `.modelNotFound` when there is no model file, `.invalidModel`
    ///   when its metadata is not what sherpa-onnx needs, `.modelError` when it cannot load it.
    public init(folder: URL, threads: Int = 1) throws {
        model = try Self.modelFile(in: folder)
        name = model.deletingLastPathComponent().lastPathComponent
        try Self.validate(model)
        var strings = CStringArena()
        defer { strings.free() }
        var config = SherpaOnnxOfflinePunctuationConfig()
        config.model.ct_transformer = strings.copy(model.path)
        config.model.num_threads = Int32(max(1, threads))
        config.model.provider = strings.copy("cpu")
        guard let created = SherpaOnnxCreateOfflinePunctuation(&config) else {
            throw TingxieError(.modelError, "sherpa-onnx could not load the punctuation model \(model.path)")
        }
        handle = created
    }

    deinit {
        SherpaOnnxDestroyOfflinePunctuation(handle)
    }

    public func punctuate(_ text: String) -> String {
        guard !text.isEmpty, let punctuated = SherpaOfflinePunctuationAddPunct(handle, text) else { return text }
        defer { SherpaOfflinePunctuationFreeText(punctuated) }
        return String(cString: punctuated)
    }

    /// The model file in `folder`, or in its only sub-folder: `model.int8.onnx`, else `model.onnx`.
    public static func modelFile(in folder: URL) throws -> URL {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TingxieError(.modelNotFound, "punctuation model folder \(folder.path) does not exist")
        }
        var names = try files.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }
        var inside = folder
        if names.count == 1, files.fileExists(atPath: folder.appendingPathComponent(names[0]).path, isDirectory: &isDirectory), isDirectory.boolValue {
            inside = folder.appendingPathComponent(names[0])
            names = try files.contentsOfDirectory(atPath: inside.path)
        }
        guard let file = ["model.int8.onnx", "model.onnx"].first(where: names.contains) else {
            throw TingxieError(.invalidModel, "\(inside.path): no model.onnx or model.int8.onnx (a CT-Transformer punctuation model in sherpa-onnx's layout)")
        }
        return inside.appendingPathComponent(file)
    }

    /// Checks what sherpa-onnx would otherwise end the process over.
    /// - Throws: `TingxieError(.invalidModel)` naming what is missing.
    public static func validate(_ model: URL) throws {
        let metadata = try ONNXMetadata.read(model)
        let missing = requiredMetadata.filter { (metadata[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw TingxieError(.invalidModel, "\(model.path) is not a CT-Transformer punctuation model for sherpa-onnx: its metadata lacks \(missing.joined(separator: ", "))")
        }
        let tokens = metadata["tokens"]!.split(separator: "|", omittingEmptySubsequences: false)
        let marks = Set(metadata["punctuations"]!.split(separator: "|").map(String.init))
        guard Int(metadata["vocab_size"]!) == tokens.count else {
            throw TingxieError(.invalidModel, "\(model.path): metadata vocab_size is \(metadata["vocab_size"]!) but it lists \(tokens.count) tokens")
        }
        guard tokens.contains(Substring(metadata["unk_symbol"]!)) else {
            throw TingxieError(.invalidModel, "\(model.path): its unk_symbol is not one of its tokens")
        }
        let absent = requiredMarks.filter { !marks.contains($0) }
        guard absent.isEmpty else {
            throw TingxieError(.invalidModel, "\(model.path): its punctuations lack \(absent.joined(separator: " "))")
        }
    }
}
