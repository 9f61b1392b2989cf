import TingxieCore
import TingxieRuntime

/// The encoder's cross-attention keys and values for one piece, as the converter lays them out:
/// keys [layers, 1, D, frames], values [layers, 1, H·frames, D/H], float16.
public struct WhisperCrossAttention: Sendable {
    public var keys: [Float16]
    public var values: [Float16]
    public var frames: Int
}

/// Runs a Tingxie conversion's encoder (`*-encoder.int8.onnx`) on one log-mel spectrogram.
public final class WhisperEncoder: @unchecked Sendable {
    public let dimensions: WhisperDimensions
    public let mels: Int
    private let session: RuntimeSession
    private let features: WhisperFeatures

    public init(session: RuntimeSession, dimensions: WhisperDimensions, mels: Int) {
        self.session = session
        self.dimensions = dimensions
        self.mels = mels
        features = WhisperFeatures(mels: mels)
    }

    /// The piece `samples` (16 kHz) make, padded as sherpa-onnx pads: at most 29.5 s of speech,
    /// then `tailPaddingFrames` of silence up to the 30-s window.
    public func piece(_ samples: [Float], tailPaddingFrames: Int = 1000) throws -> WhisperPiece {
        let window = 2 * dimensions.frames
        let speech = min(WhisperFeatures.frameCount(samples.count), window - 50)
        let frames = min(speech + tailPaddingFrames, window)
        let mel = features.logMel(samples, limit: speech, padding: frames - speech)
        return WhisperPiece(cross: try encode(mel, melFrames: frames), speechFrames: speech)
    }

    /// Encodes `mel` [mels, melFrames] (at most the 30-s window's); every two mel frames make one
    /// encoder frame.
    public func encode(_ mel: [Float], melFrames: Int) throws -> WhisperCrossAttention {
        let d = dimensions
        guard melFrames > 0, melFrames <= 2 * d.frames, mel.count == mels * melFrames else {
            throw TingxieError(.internalError, "a log-mel of \(mel.count) values is not \(mels) × \(melFrames) (at most \(2 * d.frames))")
        }
        let frames = (melFrames + 1) / 2
        let input = TensorStorage<Float>(count: mel.count)
        _ = input.buffer.update(fromContentsOf: mel)
        let size = d.layers * d.state * frames
        let keys = TensorStorage<Float16>(count: size), values = TensorStorage<Float16>(count: size)
        let binding = try session.binding()
        try binding.input("mel", input.tensor([1, mels, melFrames]))
        try binding.output("n_layer_cross_k", keys.tensor([d.layers, 1, d.state, frames]))
        try binding.output("n_layer_cross_v", values.tensor([d.layers, 1, d.heads * frames, d.perHead]))
        try binding.run()
        return WhisperCrossAttention(keys: Array(keys.buffer), values: Array(values.buffer), frames: frames)
    }
}

/// The decoder graph sherpa-onnx runs (layout 3): one piece a call, the whole self-attention cache
/// in and out. Kept to compare the step graph with, in tests and the step benchmark.
public final class WhisperCacheCopyingDecoder: @unchecked Sendable {
    private let dimensions: WhisperDimensions
    private let binding: RuntimeBinding
    private var caches: [TensorStorage<Float>], spare: [TensorStorage<Float>]
    private let keys: TensorStorage<Float16>, values: TensorStorage<Float16>
    private let tokens: TensorStorage<Int64>, offset = TensorStorage<Int64>(count: 1)
    private let logits: TensorStorage<Float>, attention: TensorStorage<Float>
    private let width: Int, attentionFrames: Int
    private var position = 0

    /// A decoder over `cross` for steps of at most `width` tokens.
    public init(decoder: RuntimeSession, dimensions d: WhisperDimensions, cross: WhisperCrossAttention, width: Int) throws {
        dimensions = d
        self.width = width
        attentionFrames = cross.frames
        binding = try decoder.binding()
        let cacheSize = d.layers * d.cache * d.state
        caches = [TensorStorage(count: cacheSize), TensorStorage(count: cacheSize)]
        spare = [TensorStorage(count: cacheSize), TensorStorage(count: cacheSize)]
        keys = TensorStorage(count: cross.keys.count)
        values = TensorStorage(count: cross.values.count)
        _ = keys.buffer.update(fromContentsOf: cross.keys)
        _ = values.buffer.update(fromContentsOf: cross.values)
        tokens = TensorStorage(count: width)
        logits = TensorStorage(count: width * d.vocabulary)
        attention = TensorStorage(count: max(1, d.alignmentHeads) * width * cross.frames)
        try binding.input("n_layer_cross_k", keys.tensor([d.layers, 1, d.state, cross.frames]))
        try binding.input("n_layer_cross_v", values.tensor([d.layers, 1, d.heads * cross.frames, d.perHead]))
        try binding.input("offset", offset.tensor([1]))
    }

    /// Feeds `fed` after what was fed before; returns the logits of its last token.
    public func step(_ fed: [Int64]) throws -> UnsafeBufferPointer<Float> {
        let d = dimensions
        guard !fed.isEmpty, fed.count <= width, position + fed.count <= d.cache else {
            throw TingxieError(.internalError, "\(fed.count) tokens at \(position) do not fit the decoder")
        }
        for (i, token) in fed.enumerated() { tokens.pointer[i] = token }
        offset.pointer[0] = Int64(position)
        try binding.input("tokens", tokens.tensor([1, fed.count]))
        try binding.input("in_n_layer_self_k_cache", caches[0].tensor([d.layers, 1, d.cache, d.state]))
        try binding.input("in_n_layer_self_v_cache", caches[1].tensor([d.layers, 1, d.cache, d.state]))
        try binding.output("out_n_layer_self_k_cache", spare[0].tensor([d.layers, 1, d.cache, d.state]))
        try binding.output("out_n_layer_self_v_cache", spare[1].tensor([d.layers, 1, d.cache, d.state]))
        try binding.output("logits", logits.tensor([1, fed.count, d.vocabulary]))
        if d.alignmentHeads > 0 {
            try binding.output("cross_attention_weights", attention.tensor([1, d.alignmentHeads, fed.count, attentionFrames]))
        }
        try binding.run()
        swap(&caches, &spare)
        position += fed.count
        return UnsafeBufferPointer(start: logits.pointer + (fed.count - 1) * d.vocabulary, count: d.vocabulary)
    }
}

/// The index of the largest of `logits`' `row`th `width` values.
public func whisperArgmax(_ logits: UnsafeBufferPointer<Float>, row: Int = 0, width: Int) -> Int {
    var best = row * width
    for i in (row * width)..<((row + 1) * width) where logits[i] > logits[best] { best = i }
    return best - row * width
}
