import CSherpaOnnx
import Foundation
import TingxieCore

/// A streaming model folder in sherpa-onnx's layout: a streaming Paraformer (encoder and
/// decoder) or a streaming transducer (encoder, decoder and joiner). Values come only from
/// `detect`, which validates the metadata sherpa-onnx would otherwise end the process over.
public struct StreamingModelDirectory: Sendable, Equatable {
    public enum Family: String, Sendable {
        case paraformer = "paraformer-streaming"
        case transducer = "transducer-streaming"
    }

    public let url: URL
    public let family: Family
    public let encoder: URL
    public let decoder: URL
    public let joiner: URL?
    public let tokens: URL

    public var name: String { url.lastPathComponent }

    /// Metadata sherpa-onnx's streaming Paraformer reads from the encoder without a default.
    static let paraformerMetadata = ["vocab_size", "lfr_window_size", "lfr_window_shift", "encoder_output_size",
                                     "decoder_num_blocks", "decoder_kernel_size", "neg_mean", "inv_stddev"]
    /// What each streaming transducer encoder (by its `model_type`) must carry; the decoder
    /// carries `vocab_size` and `context_size`.
    static let transducerMetadata: [String: [String]] = [
        "conformer": ["num_encoder_layers", "decode_chunk_len", "left_context", "encoder_dim", "pad_length", "cnn_module_kernel"],
        "ebranchformer": ["decode_chunk_len", "num_hidden_layers", "hidden_size", "intermediate_size", "csgu_kernel_size",
                          "merge_conv_kernel", "left_context_len", "num_heads", "head_dim"],
        "lstm": ["num_encoder_layers", "decode_chunk_len", "rnn_hidden_size", "d_model"],
        "zipformer": ["encoder_dims", "attention_dims", "num_encoder_layers", "cnn_module_kernels", "left_context_len", "decode_chunk_len"],
        "zipformer2": ["encoder_dims", "query_head_dims", "value_head_dims", "num_heads", "num_encoder_layers",
                       "cnn_module_kernels", "left_context_len", "decode_chunk_len"],
    ]

    static let expectedLayouts = """
        expected a streaming model:
          streaming Paraformer: encoder*.onnx, decoder*.onnx and tokens.txt
          streaming Zipformer transducer: encoder*.onnx, decoder*.onnx, joiner*.onnx and tokens.txt
        """

    /// Detects the streaming model in `url` (or the one folder inside it) and validates it.
    /// - Throws: `.modelNotFound` when the folder is missing; `.invalidModel` saying what is
    ///   wrong (an offline model, missing metadata, a corrupt file).
    public static func detect(_ url: URL) throws -> StreamingModelDirectory {
        let files = try ModelFiles.list(url, expected: expectedLayouts)
        guard let encoder = files.encoder, let decoder = files.decoder else {
            throw files.unrecognised(files.single != nil ? "this is an offline model (model.onnx); give it as --model-dir" : "no streaming model files")
        }
        let metadata = try ONNXMetadata.read(encoder)
        let directory: StreamingModelDirectory
        if let joiner = files.joiner {
            let type = metadata["model_type"] ?? ""
            guard let keys = transducerMetadata[type] else {
                throw files.unrecognised("\(encoder.lastPathComponent) is not a streaming transducer encoder (model_type \"\(type)\"; streaming ones are \(transducerMetadata.keys.sorted().joined(separator: ", ")))")
            }
            try ModelFiles.require(keys, in: metadata, of: encoder, kind: "streaming \(type)")
            try ModelFiles.require(["vocab_size", "context_size"], in: try ONNXMetadata.read(decoder), of: decoder, kind: "streaming transducer")
            _ = try ONNXMetadata.read(joiner)
            directory = StreamingModelDirectory(url: files.folder, family: .transducer, encoder: encoder, decoder: decoder,
                                                joiner: joiner, tokens: files.tokens)
        } else {
            if metadata["n_text_ctx"] != nil {
                throw files.unrecognised("this is a Whisper model, which does not stream; give it as --model-dir")
            }
            try ModelFiles.require(paraformerMetadata, in: metadata, of: encoder, kind: "streaming Paraformer")
            try ModelFiles.checkNormalization(metadata, of: encoder)
            _ = try ONNXMetadata.read(decoder)
            directory = StreamingModelDirectory(url: files.folder, family: .paraformer, encoder: encoder, decoder: decoder,
                                                joiner: nil, tokens: files.tokens)
        }
        return directory
    }
}

/// sherpa-onnx's online recogniser: live text that grows as audio arrives.
///
/// Thread-safety: the recogniser is only read once created, and each live stream has its own
/// sherpa-onnx stream (the state sherpa-onnx's own servers keep per connection), so streams
/// decode on different threads at once.
public final class SherpaStreamingRecognizer: StreamingRecognizer, @unchecked Sendable {
    public let directory: StreamingModelDirectory
    private let handle: OpaquePointer

    public var name: String { directory.name }

    /// - Throws: `TingxieError(.modelError)` when sherpa-onnx cannot load the model.
    public init(directory: StreamingModelDirectory, threads: Int = 1) throws {
        self.directory = directory
        var strings = CStringArena()
        defer { strings.free() }
        var config = SherpaOnnxOnlineRecognizerConfig()
        config.feat_config.sample_rate = 16_000
        config.feat_config.feature_dim = 80
        // Greedy search only appends: text once shown is never revised.
        config.decoding_method = strings.copy("greedy_search")
        config.model_config.tokens = strings.copy(directory.tokens.path)
        config.model_config.num_threads = Int32(max(1, threads))
        config.model_config.provider = strings.copy("cpu")
        switch directory.family {
        case .paraformer:
            config.model_config.paraformer.encoder = strings.copy(directory.encoder.path)
            config.model_config.paraformer.decoder = strings.copy(directory.decoder.path)
        case .transducer:
            config.model_config.transducer.encoder = strings.copy(directory.encoder.path)
            config.model_config.transducer.decoder = strings.copy(directory.decoder.path)
            config.model_config.transducer.joiner = strings.copy(directory.joiner!.path)
        }
        guard let created = SherpaOnnxCreateOnlineRecognizer(&config) else {
            throw TingxieError(.modelError, "sherpa-onnx could not load the streaming model in \(directory.url.path) (corrupt model file, or tokens that do not match it; see the messages above)")
        }
        handle = created
    }

    deinit {
        SherpaOnnxDestroyOnlineRecognizer(handle)
    }

    public func makeStream() throws -> any StreamingDecoding {
        guard let stream = SherpaOnnxCreateOnlineStream(handle) else {
            throw TingxieError(.modelError, "sherpa-onnx could not create a streaming decoder")
        }
        return Stream(recognizer: self, handle: stream)
    }

    final class Stream: StreamingDecoding {
        /// Keeps the recogniser alive while its stream is.
        private let recognizer: SherpaStreamingRecognizer
        private let handle: OpaquePointer

        init(recognizer: SherpaStreamingRecognizer, handle: OpaquePointer) {
            self.recognizer = recognizer
            self.handle = handle
        }

        deinit {
            SherpaOnnxDestroyOnlineStream(handle)
        }

        func accept(_ samples: [Float]) {
            guard !samples.isEmpty else { return }
            samples.withUnsafeBufferPointer { buffer in
                SherpaOnnxOnlineStreamAcceptWaveform(handle, 16_000, buffer.baseAddress, Int32(buffer.count))
            }
        }

        func decode() -> String {
            while SherpaOnnxIsOnlineStreamReady(recognizer.handle, handle) != 0 {
                SherpaOnnxDecodeOnlineStream(recognizer.handle, handle)
            }
            guard let result = SherpaOnnxGetOnlineStreamResult(recognizer.handle, handle) else { return "" }
            defer { SherpaOnnxDestroyOnlineRecognizerResult(result) }
            return result.pointee.text.map { String(cString: $0) } ?? ""
        }

        func reset() {
            SherpaOnnxOnlineStreamReset(recognizer.handle, handle)
        }
    }
}
