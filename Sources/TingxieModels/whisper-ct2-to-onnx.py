"""Builds sherpa-onnx's Whisper layout from CTranslate2 (faster-whisper) weights, without torch.

usage: whisper-ct2-to-onnx.py CT2_DIR OUT_DIR [NAME]
CT2_DIR holds model.bin (or model.bin.part1, model.bin.part2, ...), config.json and
vocabulary.txt. OUT_DIR receives NAME-encoder.int8.onnx, NAME-decoder.int8.onnx,
NAME-step.int8.onnx and NAME-tokens.txt (NAME defaults to "base").

The graphs follow OpenAI's Whisper: the encoder maps a log-mel spectrogram [N, 80, T] to the
cross-attention keys and values of every decoder layer; the decoder takes tokens, a 352-slot
self-attention cache, the cross keys and values and the cache offset, and returns logits and
the updated cache. Weights are MatMul-quantised to int8 as sherpa-onnx's own exports are.

sherpa-onnx hands the cross keys and values from the encoder to every decoder step without
looking inside, so they leave the encoder already split into heads: keys [layers, N, D, frames]
(each head's D/H rows, transposed for Q·Kᵀ) and values [layers, N, H·frames, D/H]. A decoder step
then takes its layer's slice as it is instead of transposing all 1500 frames per layer and token.
They are float16: onnxruntime copies every layer's slice out of the two tensors at every step, and
half the bytes make a step about a fifth cheaper; each slice is cast back to float32 for the products.

The step graph (`decoder_step`) is the same decoder for Tingxie's own loop, which holds the caches
itself and decodes many pieces in one batch: nothing in it copies a cache or the cross keys and values.
"""
import base64
import json
import os
import struct
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.int64}
# Self-attention cache slots (`n_text_ctx`). sherpa-onnx decodes at most 6 tokens per second of a
# piece and at most n_text_ctx / 2 in all: 352 still allows the 170 tokens of the longest piece
# Tingxie feeds (28 s and 0.4 s of padding), and every decoder step copies the whole cache in and
# out, so it costs less than Whisper's 448 (meeting-10min.wav: the same text, RTF 0.0798 against
# 0.0819, peak RSS 577 MB against 732 MB).
CACHE = 352
# The layout's version in the metadata (`version`, with `maintainer` tingxie): 2 splits the cross-attention
# into heads and exports the alignment heads' attention (word times), 3 keeps it in float16, 4 adds the
# step graph of Tingxie's own batched decoder loop, 5 lets its caller choose the step graph's cache
# slots; Tingxie advises converting an earlier one again.
VERSION = 5
# Inputs sharing one int8 scale in the step graph's weights (and its activations' rows).
BLOCK = 32


def read_ct2(directory):
    """Variables of a CTranslate2 model.bin (format version 6) as numpy arrays, aliases resolved."""
    path = os.path.join(directory, "model.bin")
    if os.path.exists(path):
        data = open(path, "rb").read()
    else:
        parts = sorted(name for name in os.listdir(directory) if name.startswith("model.bin.part"))
        if not parts:
            sys.exit(f"{directory}: no model.bin or model.bin.partN files")
        data = b"".join(open(os.path.join(directory, name), "rb").read() for name in parts)
    position = 0

    def take(fmt):
        nonlocal position
        value = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return value[0]

    def string():
        nonlocal position
        length = take("<H")
        text = data[position:position + length].rstrip(b"\0").decode()
        position += length
        return text

    version = take("<I")
    if version != 6:
        sys.exit(f"model.bin format version {version}; this converter reads version 6")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"model.bin holds a {spec}, not a Whisper model")
    take("<I")  # spec revision
    variables = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        shape = [take("<I") for _ in range(rank)]
        dtype = DTYPES[take("<B")]
        size = take("<I")
        variables[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=position).reshape(shape)
        position += size
    for _ in range(take("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


class Graph:
    """A small builder over onnx.helper: fresh names, initializers, common blocks."""

    def __init__(self, prefix, blocks=False):
        self.prefix, self.blocks = prefix, blocks
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint="c"):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, kind, inputs, hint=None, outputs=1, **attributes):
        names = [self.name(hint or kind.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(kind, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def linear(self, x, weight, bias=None):
        if self.blocks:
            y = self.blockwise(x, weight)
        else:
            # x @ W^T with W^T stored, so the int8 quantiser covers it.
            y = self.op("MatMul", [x, self.const(np.ascontiguousarray(weight.astype(np.float32).T), "w")])
        return self.op("Add", [y, self.const(bias.astype(np.float32), "b")]) if bias is not None else y

    def blockwise(self, x, weight):
        """x @ W^T as onnxruntime's MatMulNBits with W [out, in] in int8, one scale for every BLOCK
        inputs of an output (symmetric: stored + 128); the activations are quantised the same way,
        per row, so one piece's results do not depend on the others in its batch."""
        out, inputs = weight.shape
        blocks = (inputs + BLOCK - 1) // BLOCK
        padded = np.zeros((out, blocks * BLOCK), np.float32)
        padded[:, :inputs] = weight
        padded = padded.reshape(out, blocks, BLOCK)
        scale = np.abs(padded).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        stored = (np.clip(np.rint(padded / scale[:, :, None]), -127, 127) + 128).astype(np.uint8)
        return self.op("MatMulNBits", [x, self.const(stored, "w"), self.const(scale.astype(np.float32).reshape(-1), "scale")],
                       domain="com.microsoft", K=inputs, N=out, bits=8, block_size=BLOCK, accuracy_level=4)

    def scaled(self, q):
        """The query [N, n, D] times 1/sqrt(D/H), by a vector: onnxruntime fuses a scalar factor on
        either side of the scores' MatMul into a FusedMatMul, about 3x slower than MatMul for a decoder
        step's query against 1500 frames. (1/8 for 64-wide heads: the scores are the same floats.)"""
        return self.op("Mul", [q, self.const(np.full(self.state, self.scale, np.float32))])

    def layer_norm(self, x, w, prefix):
        return self.op("LayerNormalization", [x, self.const(w[prefix + "/gamma"].astype(np.float32)),
                                              self.const(w[prefix + "/beta"].astype(np.float32))], axis=-1, epsilon=1e-5)

    def gelu(self, x):
        half = self.op("Mul", [x, self.const(np.array(0.5, np.float32))])
        erf = self.op("Erf", [self.op("Div", [x, self.const(np.array(np.sqrt(2.0), np.float32))])])
        return self.op("Mul", [half, self.op("Add", [erf, self.const(np.array(1.0, np.float32))])])

    def heads(self, x, heads, transpose_key=False):
        """[N, T, D] -> [N, H, T, D/H] (or [N, H, D/H, T] for keys)."""
        y = self.op("Reshape", [x, self.const(np.array([0, 0, heads, -1], np.int64))])
        return self.op("Transpose", [y], perm=[0, 2, 3, 1] if transpose_key else [0, 2, 1, 3])

    def attention(self, q, k, v, heads, mask=None, shaped=False, scaled=False):
        """Scaled dot-product attention, and its weights [N, H, n, T]; `shaped` keys and values are
        already [N, H, D/H, T] and [N, H, T, D/H]; a `scaled` query is already scaled (`scaled`)."""
        if not shaped:
            k, v = self.heads(k, heads, transpose_key=True), self.heads(v, heads)
        scores = self.op("MatMul", [self.heads(q, heads), k])
        if not scaled:
            scores = self.op("Mul", [scores, self.const(np.array(self.scale, np.float32))])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        weights = self.op("Softmax", [scores], axis=-1)
        out = self.op("Transpose", [self.op("MatMul", [weights, v])], perm=[0, 2, 1, 3])
        return self.op("Reshape", [out, self.const(np.array([0, 0, -1], np.int64))]), weights

    def decoder_layer_end(self, x, a, weights, w, layer, alignment_heads, alignment):
        """A decoder layer after its cross-attention (output `a`, weights `weights`): the alignment
        heads' weights collected into `alignment`, the output projected and added, the feed-forward block."""
        p = f"decoder/layer_{layer}"
        chosen = [head for at, head in alignment_heads if at == layer]
        if chosen:
            alignment.append(self.op("Gather", [weights, self.const(np.array(chosen, np.int64))], axis=1))
        x = self.op("Add", [x, self.linear(a, w[p + "/attention/linear_2/weight"], w[p + "/attention/linear_2/bias"])])
        h = self.layer_norm(x, w, p + "/ffn/layer_norm")
        h = self.gelu(self.linear(h, w[p + "/ffn/linear_0/weight"], w[p + "/ffn/linear_0/bias"]))
        return self.op("Add", [x, self.linear(h, w[p + "/ffn/linear_1/weight"], w[p + "/ffn/linear_1/bias"])])

    def model(self, inputs, outputs, metadata):
        graph = helper.make_graph(self.nodes, self.prefix, inputs, outputs, self.initializers)
        domains = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if self.blocks else [])
        model = helper.make_model(graph, opset_imports=domains)
        model.ir_version = 8
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=str(value))
        return model


def cross_attention(dims):
    """The encoder's outputs and the decoder's inputs, in float16: keys [layers, N, D, frames] and values [layers, N, H·frames, D/H]."""
    layers, state = dims["layers"], dims["state"]
    return [helper.make_tensor_value_info("n_layer_cross_k", TensorProto.FLOAT16, [layers, "n_audio", state, "T"]),
            helper.make_tensor_value_info("n_layer_cross_v", TensorProto.FLOAT16, [layers, "n_audio", "HT", state // dims["heads"]])]


def encoder(w, dims):
    g = Graph("encoder")
    g.scale = 1.0 / np.sqrt(dims["state"] // dims["heads"])
    x = g.op("Conv", ["mel", g.const(w["encoder/conv1/weight"].astype(np.float32)), g.const(w["encoder/conv1/bias"].astype(np.float32))],
             kernel_shape=[3], pads=[1, 1])
    x = g.gelu(x)
    x = g.op("Conv", [x, g.const(w["encoder/conv2/weight"].astype(np.float32)), g.const(w["encoder/conv2/bias"].astype(np.float32))],
             kernel_shape=[3], pads=[1, 1], strides=[2])
    x = g.op("Transpose", [g.gelu(x)], perm=[0, 2, 1])
    frames = g.op("Slice", [g.op("Shape", [x]), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64))])
    positions = g.op("Slice", [g.const(w["encoder/position_encodings/encodings"].astype(np.float32)),
                               g.const(np.array([0], np.int64)), frames, g.const(np.array([0], np.int64))])
    x = g.op("Add", [x, positions])
    for layer in range(dims["layers"]):
        p = f"encoder/layer_{layer}"
        h = g.layer_norm(x, w, p + "/self_attention/layer_norm")
        q, k, v = g.op("Split", [g.linear(h, w[p + "/self_attention/linear_0/weight"], w[p + "/self_attention/linear_0/bias"]),
                                 g.const(np.array([dims["state"]] * 3, np.int64))], outputs=3, axis=-1)
        a, _ = g.attention(q, k, v, dims["heads"])
        x = g.op("Add", [x, g.linear(a, w[p + "/self_attention/linear_1/weight"], w[p + "/self_attention/linear_1/bias"])])
        h = g.layer_norm(x, w, p + "/ffn/layer_norm")
        h = g.gelu(g.linear(h, w[p + "/ffn/linear_0/weight"], w[p + "/ffn/linear_0/bias"]))
        x = g.op("Add", [x, g.linear(h, w[p + "/ffn/linear_1/weight"], w[p + "/ffn/linear_1/bias"])])
    x = g.layer_norm(x, w, "encoder/layer_norm")
    keys, values = [], []
    zero = g.const(np.array([0], np.int64))
    for layer in range(dims["layers"]):
        p = f"decoder/layer_{layer}/attention/linear_1"
        weight, bias = w[p + "/weight"], w[p + "/bias"]
        state = dims["state"]
        key = g.heads(g.linear(x, weight[:state], bias[:state]), dims["heads"], transpose_key=True)
        value = g.heads(g.linear(x, weight[state:], bias[state:]), dims["heads"])
        keys.append(g.op("Unsqueeze", [g.op("Reshape", [key, g.const(np.array([0, state, -1], np.int64))]), zero]))
        values.append(g.op("Unsqueeze", [g.op("Reshape", [value, g.const(np.array([0, -1, state // dims["heads"]], np.int64))]), zero]))
    g.nodes.append(helper.make_node("Cast", [g.op("Concat", keys, axis=0)], ["n_layer_cross_k"], to=TensorProto.FLOAT16))
    g.nodes.append(helper.make_node("Cast", [g.op("Concat", values, axis=0)], ["n_layer_cross_v"], to=TensorProto.FLOAT16))
    return g, [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["n_audio", dims["mels"], "T"])], cross_attention(dims)


def decoder(w, dims):
    g = Graph("decoder")
    g.scale = 1.0 / np.sqrt(dims["state"] // dims["heads"])
    state, layers = dims["state"], dims["layers"]
    i0, i1 = g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))
    count = g.op("Slice", [g.op("Shape", ["tokens"]), i1, g.const(np.array([2], np.int64))])  # [n]
    end = g.op("Add", ["offset", count])  # offset + n
    # Token embedding as float16 (the source precision), each looked-up row cast (casting the table
    # first would be folded into a 106 MB float32 copy when the session loads); positions from the offset.
    x = g.op("Cast", [g.op("Gather", [g.const(w["decoder/embeddings/weight"].astype(np.float16), "embedding"), "tokens"], axis=0)],
             to=TensorProto.FLOAT)
    positions = g.op("Slice", [g.const(w["decoder/position_encodings/encodings"].astype(np.float32)), "offset", end, i0])
    x = g.op("Add", [x, positions])
    # Causal mask [n, offset + n]: query i (at offset + i) sees keys up to offset + i.
    rows = g.op("Add", [g.op("Unsqueeze", [g.op("Range", [g.const(np.array(0, np.int64)), g.op("Squeeze", [count, i0]),
                                                          g.const(np.array(1, np.int64))]), i1]), "offset"])
    columns = g.op("Range", [g.const(np.array(0, np.int64)), g.op("Squeeze", [end, i0]), g.const(np.array(1, np.int64))])
    mask = g.op("Where", [g.op("Greater", [columns, rows]), g.const(np.array(-1e9, np.float32)), g.const(np.array(0, np.float32))])
    layer_and_slot = g.const(np.array([0, 2], np.int64))
    key_heads = g.const(np.array([0, dims["heads"], state // dims["heads"], -1], np.int64))
    value_heads = g.const(np.array([0, dims["heads"], -1, state // dims["heads"]], np.int64))
    new_keys, new_values, alignment = [], [], []
    for layer in range(layers):
        p = f"decoder/layer_{layer}"
        index = g.const(np.array(layer, np.int64))
        h = g.layer_norm(x, w, p + "/self_attention/layer_norm")
        q, k, v = g.op("Split", [g.linear(h, w[p + "/self_attention/linear_0/weight"], w[p + "/self_attention/linear_0/bias"]),
                                 g.const(np.array([state] * 3, np.int64))], outputs=3, axis=-1)
        # This layer attends to its cached slots before the offset and the fresh ones; only those are copied.
        caches = []
        for name, fresh, collected in (("in_n_layer_self_k_cache", k, new_keys), ("in_n_layer_self_v_cache", v, new_values)):
            before = g.op("Slice", [name, g.const(np.array([layer, 0], np.int64)), g.op("Concat", [g.const(np.array([layer + 1], np.int64)), "offset"], axis=0),
                                    layer_and_slot])
            caches.append(g.op("Concat", [g.op("Squeeze", [before, i0]), fresh], axis=1))
            collected.append(g.op("Unsqueeze", [fresh, i0]))
        a, _ = g.attention(q, caches[0], caches[1], dims["heads"], mask)
        x = g.op("Add", [x, g.linear(a, w[p + "/self_attention/linear_1/weight"], w[p + "/self_attention/linear_1/bias"])])
        h = g.layer_norm(x, w, p + "/attention/layer_norm")
        q = g.linear(h, w[p + "/attention/linear_0/weight"], w[p + "/attention/linear_0/bias"])
        key = g.op("Reshape", [g.op("Cast", [g.op("Gather", ["n_layer_cross_k", index], axis=0)], to=TensorProto.FLOAT), key_heads])
        value = g.op("Reshape", [g.op("Cast", [g.op("Gather", ["n_layer_cross_v", index], axis=0)], to=TensorProto.FLOAT), value_heads])
        a, weights = g.attention(q, key, value, dims["heads"], shaped=True)
        x = g.decoder_layer_end(x, a, weights, w, layer, dims["alignment_heads"], alignment)
    x = g.layer_norm(x, w, "decoder/layer_norm")
    # Tied output projection as x @ E^T with E^T stored, so the quantiser covers it.
    g.nodes.append(helper.make_node("MatMul", [x, g.const(np.ascontiguousarray(w["decoder/embeddings/weight"].astype(np.float32).T), "projection")], ["logits"]))
    # The updated caches: the input with every layer's fresh slots written at offset..offset+n, one copy each.
    fresh_keys = g.op("Concat", new_keys, axis=0)  # [layers, N, n, D]
    slots = g.op("Expand", [g.op("Reshape", [rows, g.const(np.array([1, 1, -1, 1], np.int64))]), g.op("Shape", [fresh_keys])])
    g.nodes.append(helper.make_node("ScatterElements", ["in_n_layer_self_k_cache", slots, fresh_keys], ["out_n_layer_self_k_cache"], axis=2))
    g.nodes.append(helper.make_node("ScatterElements", ["in_n_layer_self_v_cache", slots, g.op("Concat", new_values, axis=0)],
                                    ["out_n_layer_self_v_cache"], axis=2))
    cache = [layers, "n_audio", CACHE, state]
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["n_audio", "n_tokens"]),
              helper.make_tensor_value_info("in_n_layer_self_k_cache", TensorProto.FLOAT, cache),
              helper.make_tensor_value_info("in_n_layer_self_v_cache", TensorProto.FLOAT, cache),
              *cross_attention(dims),
              helper.make_tensor_value_info("offset", TensorProto.INT64, [1])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n_audio", "n_tokens", dims["vocab"]]),
               helper.make_tensor_value_info("out_n_layer_self_k_cache", TensorProto.FLOAT, cache),
               helper.make_tensor_value_info("out_n_layer_self_v_cache", TensorProto.FLOAT, cache)]
    if alignment:
        # The alignment heads' cross-attention weights [N, heads, n, T]: sherpa-onnx times each token
        # from them (dynamic time warping, as OpenAI's word timestamps) when asked to.
        g.nodes.append(helper.make_node("Concat", alignment, ["cross_attention_weights"], axis=1))
        outputs.append(helper.make_tensor_value_info("cross_attention_weights", TensorProto.FLOAT,
                                                     ["n_audio", len(dims["alignment_heads"]), "n_tokens", "T"]))
    return g, inputs, outputs


def decoder_step(w, dims):
    """Tingxie's own decoder loop's graph (`NAME-step.int8.onnx`): one step of N pieces at once,
    each at its own offset, with the caches held by the caller. Per layer L it reads the self-attention
    cache `self_k_L` [N, H, D/H, C] and `self_v_L` [N, H, C, D/H] (C slots of the caller's choosing; those
    at or past a piece's offset are masked, so nothing is sliced or copied) and the cross-attention keys and values
    `cross_k_L` [N, H, D/H, T] and `cross_v_L` [N, H, T, D/H] in float32 (bound once per piece), of
    which each piece's first `frames` [N] count (pieces of several lengths share one batch). It
    returns the last position's `logits` [N, vocab], the fresh keys and values `new_k` and `new_v`
    [layers, N, n, D] for the caller to write at each piece's offset, and the alignment heads'
    attention `alignment` [N, heads, n, T] (word times)."""
    g = Graph("decoder_step", blocks=True)
    state, layers, heads = dims["state"], dims["layers"], dims["heads"]
    g.scale, g.state = 1.0 / np.sqrt(state // heads), state
    i0, i1, i2 = (g.const(np.array([v], np.int64)) for v in (0, 1, 2))
    count = g.op("Squeeze", [g.op("Slice", [g.op("Shape", ["tokens"]), i1, i2]), i0])  # n
    steps = g.op("Range", [g.const(np.array(0, np.int64)), count, g.const(np.array(1, np.int64))])  # [n]
    at = g.op("Add", [g.op("Unsqueeze", ["offset", i1]), steps])  # [N, n]: each token's position
    x = g.op("Cast", [g.op("Gather", [g.const(w["decoder/embeddings/weight"].astype(np.float16), "embedding"), "tokens"], axis=0)],
             to=TensorProto.FLOAT)
    x = g.op("Add", [x, g.op("Gather", [g.const(w["decoder/position_encodings/encodings"].astype(np.float32)), at], axis=0)])
    # Cached slots a piece has not reached yet are masked out [N, 1, 1, C]; the fresh tokens see
    # each other causally [n, n].
    capacity = g.op("Slice", [g.op("Shape", ["self_k_0"]), g.const(np.array([3], np.int64)), g.const(np.array([4], np.int64))])  # [C]
    slots = g.op("Range", [g.const(np.array(0, np.int64)), g.op("Squeeze", [capacity, i0]), g.const(np.array(1, np.int64))])
    reached = g.op("Less", [slots, g.op("Unsqueeze", ["offset", i1])])
    cached_mask = g.op("Unsqueeze", [g.op("Where", [reached, g.const(np.array(0, np.float32)), g.const(np.array(-1e9, np.float32))]),
                                     g.const(np.array([1, 2], np.int64))])
    fresh_mask = g.op("Where", [g.op("Greater", [steps, g.op("Unsqueeze", [steps, i1])]), g.const(np.array(-1e9, np.float32)),
                                g.const(np.array(0, np.float32))])
    # A piece's frames past `frames` (the batch's longer pieces') are masked out [N, 1, 1, T].
    spoken = g.op("Less", [g.op("Range", [g.const(np.array(0, np.int64)), g.op("Squeeze", [g.op("Slice", [g.op("Shape", ["cross_k_0"]),
                                                                                                     g.const(np.array([3], np.int64)),
                                                                                                     g.const(np.array([4], np.int64))]), i0]),
                                          g.const(np.array(1, np.int64))]), g.op("Unsqueeze", ["frames", i1])])
    frames_mask = g.op("Unsqueeze", [g.op("Where", [spoken, g.const(np.array(0, np.float32)), g.const(np.array(-1e9, np.float32))]),
                                     g.const(np.array([1, 2], np.int64))])
    new_keys, new_values, alignment = [], [], []
    for layer in range(layers):
        p = f"decoder/layer_{layer}"
        h = g.layer_norm(x, w, p + "/self_attention/layer_norm")
        q, k, v = g.op("Split", [g.linear(h, w[p + "/self_attention/linear_0/weight"], w[p + "/self_attention/linear_0/bias"]),
                                 g.const(np.array([state] * 3, np.int64))], outputs=3, axis=-1)
        new_keys.append(g.op("Unsqueeze", [k, i0]))
        new_values.append(g.op("Unsqueeze", [v, i0]))
        qh = g.heads(g.scaled(q), heads)
        cached = g.op("Add", [g.op("MatMul", [qh, f"self_k_{layer}"]), cached_mask])
        fresh = g.op("Add", [g.op("MatMul", [qh, g.heads(k, heads, transpose_key=True)]), fresh_mask])
        weights = g.op("Softmax", [g.op("Concat", [cached, fresh], axis=-1)], axis=-1)
        on_cached, on_fresh = g.op("Split", [weights, g.op("Concat", [capacity, g.op("Unsqueeze", [count, i0])], axis=0)],
                                   outputs=2, axis=-1)
        a = g.op("Add", [g.op("MatMul", [on_cached, f"self_v_{layer}"]), g.op("MatMul", [on_fresh, g.heads(v, heads)])])
        a = g.op("Reshape", [g.op("Transpose", [a], perm=[0, 2, 1, 3]), g.const(np.array([0, 0, -1], np.int64))])
        x = g.op("Add", [x, g.linear(a, w[p + "/self_attention/linear_1/weight"], w[p + "/self_attention/linear_1/bias"])])
        h = g.layer_norm(x, w, p + "/attention/layer_norm")
        q = g.scaled(g.linear(h, w[p + "/attention/linear_0/weight"], w[p + "/attention/linear_0/bias"]))
        a, weights = g.attention(q, f"cross_k_{layer}", f"cross_v_{layer}", heads, mask=frames_mask, shaped=True, scaled=True)
        x = g.decoder_layer_end(x, a, weights, w, layer, dims["alignment_heads"], alignment)
    last = g.op("Squeeze", [g.op("Slice", [x, g.const(np.array([-1], np.int64)), g.const(np.array([np.iinfo(np.int64).max], np.int64)), i1]), i1])
    last = g.layer_norm(last, w, "decoder/layer_norm")
    g.nodes.append(helper.make_node("Identity", [g.linear(last, w["decoder/embeddings/weight"].astype(np.float32))], ["logits"]))
    g.nodes.append(helper.make_node("Concat", new_keys, ["new_k"], axis=0))
    g.nodes.append(helper.make_node("Concat", new_values, ["new_v"], axis=0))
    per_head = state // heads
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", "n"]),
              helper.make_tensor_value_info("offset", TensorProto.INT64, ["N"]),
              helper.make_tensor_value_info("frames", TensorProto.INT64, ["N"])]
    for layer in range(layers):
        inputs += [helper.make_tensor_value_info(f"self_k_{layer}", TensorProto.FLOAT, ["N", heads, per_head, "C"]),
                   helper.make_tensor_value_info(f"self_v_{layer}", TensorProto.FLOAT, ["N", heads, "C", per_head]),
                   helper.make_tensor_value_info(f"cross_k_{layer}", TensorProto.FLOAT, ["N", heads, per_head, "T"]),
                   helper.make_tensor_value_info(f"cross_v_{layer}", TensorProto.FLOAT, ["N", heads, "T", per_head])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", dims["vocab"]]),
               helper.make_tensor_value_info("new_k", TensorProto.FLOAT, [layers, "N", "n", state]),
               helper.make_tensor_value_info("new_v", TensorProto.FLOAT, [layers, "N", "n", state])]
    if alignment:
        g.nodes.append(helper.make_node("Concat", alignment, ["alignment"], axis=1))
        outputs.append(helper.make_tensor_value_info("alignment", TensorProto.FLOAT, ["N", len(dims["alignment_heads"]), "n", "T"]))
    return g, inputs, outputs


def byte_decoder():
    """GPT-2's byte <-> printable character map, reversed."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, characters)}


def metadata(vocabulary, config, dims, name):
    ids = {token: index for index, token in enumerate(vocabulary)}
    languages = config["lang_ids"]
    codes = [vocabulary[token][2:-2] for token in languages]
    special = {key: ids[token] for key, token in {
        "eot": "<|endoftext|>", "sot": "<|startoftranscript|>", "translate": "<|translate|>", "transcribe": "<|transcribe|>",
        "sot_lm": "<|startoflm|>", "sot_prev": "<|startofprev|>", "no_timestamps": "<|notimestamps|>"}.items()}
    no_speech = ids.get("<|nospeech|>", ids.get("<|nocaptions|>"))
    return {
        "model_type": f"whisper-{name}", "version": VERSION, "maintainer": "tingxie",
        "n_mels": dims["mels"], "n_audio_ctx": dims["audio_ctx"], "n_audio_state": dims["state"], "n_audio_head": dims["heads"],
        "n_audio_layer": dims["layers"], "n_vocab": dims["vocab"], "n_text_ctx": CACHE, "n_text_state": dims["state"],
        "n_text_head": dims["heads"], "n_text_layer": dims["layers"],
        "sot_sequence": f"{special['sot']},{languages[0]},{special['transcribe']}",
        "all_language_tokens": ",".join(map(str, languages)), "all_language_codes": ",".join(codes),
        "sot": special["sot"], "sot_index": 0, "eot": special["eot"], "blank_id": ids["Ġ"], "is_multilingual": 1,
        "no_speech": no_speech, "non_speech_tokens": ",".join(map(str, config.get("suppress_ids", []))),
        "transcribe": special["transcribe"], "translate": special["translate"], "sot_prev": special["sot_prev"],
        "sot_lm": special["sot_lm"], "no_timestamps": special["no_timestamps"],
        "n_alignment_heads": len(dims["alignment_heads"]),
    }


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    source, out = sys.argv[1], sys.argv[2]
    name = sys.argv[3] if len(sys.argv) > 3 else "base"
    from onnxruntime.quantization import QuantType, quantize_dynamic

    w = read_ct2(source)
    config = json.load(open(os.path.join(source, "config.json")))
    vocabulary = open(os.path.join(source, "vocabulary.txt"), encoding="utf-8").read().split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    conv = w["encoder/conv1/weight"]
    dims = {"mels": conv.shape[1], "state": conv.shape[0], "layers": len({k.split("/")[1] for k in w if k.split("/")[1].removeprefix("layer_").isdigit() and k.startswith("encoder/")}),
            "heads": int(w["encoder/num_heads"]), "audio_ctx": w["encoder/position_encodings/encodings"].shape[0],
            "vocab": w["decoder/embeddings/weight"].shape[0],
            # The cross-attention heads that follow the speech in time ([layer, head]); none: no token times.
            "alignment_heads": config.get("alignment_heads", [])}
    meta = metadata(vocabulary, config, dims, name)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for part, build in (("encoder", encoder), ("decoder", decoder), ("step", decoder_step)):
            graph, inputs, outputs = build(w, dims)
            model = graph.model(inputs, outputs, meta if part == "encoder" else {})
            plain = os.path.join(scratch, f"{part}.onnx")
            onnx.save(model, plain)
            target = os.path.join(out, f"{name}-{part}.int8.onnx")
            if graph.blocks:
                quantized = model  # already int8 (MatMulNBits)
            else:
                quantize_dynamic(plain, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
                quantized = onnx.load(target)
            del quantized.metadata_props[:]
            for key, value in (meta if part == "encoder" else {}).items():
                quantized.metadata_props.add(key=key, value=str(value))
            onnx.save(quantized, target)
            print(f"{target}: {os.path.getsize(target) / 1e6:.1f} MB", file=sys.stderr)
    decode = byte_decoder()
    with open(os.path.join(out, f"{name}-tokens.txt"), "w") as tokens:
        for index, token in enumerate(vocabulary[:meta["eot"]]):
            raw = bytes(decode[c] for c in token)
            tokens.write(f"{base64.b64encode(raw).decode()} {index}\n")
    print(f"{out}: {name}-encoder.int8.onnx, {name}-decoder.int8.onnx, {name}-step.int8.onnx, {name}-tokens.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
