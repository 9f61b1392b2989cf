#!/usr/bin/env python3
"""Writes tiny ONNX models with sherpa-onnx's Paraformer and transducer signatures, for tests of
Tingxie's model loading path and of hotwords in a transducer's beam search. Needs the `onnx` and
`numpy` packages (scripts/setup --test).

    make-test-models.py OUT_DIR

creates
    OUT_DIR/paraformer-tiny/            a loadable model: model.onnx + tokens.txt
    OUT_DIR/paraformer-no-metadata/     the same graph without the metadata sherpa-onnx needs
    OUT_DIR/paraformer-corrupt/         model.onnx truncated to half its bytes
    OUT_DIR/transducer-tiny/            encoder/decoder/joiner.onnx + tokens.txt (see transducer())
    OUT_DIR/punctuation-tiny/           a CT-Transformer punctuation model (see punctuation())
    OUT_DIR/punctuation-no-metadata/    the same graph without the metadata sherpa-onnx needs
    OUT_DIR/paraformer-streaming-tiny/  a streaming Paraformer: encoder/decoder.onnx + tokens.txt (see streaming())
    OUT_DIR/paraformer-streaming-no-metadata/  the same without the metadata sherpa-onnx needs
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

FEATURES = 560  # 80-dim fbank stacked over an LFR window of 7
VOCAB = 8


def graph():
    rng = np.random.default_rng(20241124)
    weight = helper.make_tensor(
        "weight", TensorProto.FLOAT, [FEATURES, VOCAB],
        rng.standard_normal((FEATURES, VOCAB)).astype(np.float32).flatten().tolist())
    # A large bias on token 4 ("好") makes every frame decode to it, so a test can check the
    # whole path: fbank + LFR features in, one token per LFR frame out.
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [VOCAB], [0, 0, 0, 0, 1e4, 0, 0, 0])
    nodes = [
        # logits [N, T, vocab] = speech [N, T, 560] x weight [560, vocab] + bias
        helper.make_node("MatMul", ["speech", "weight"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        # token_num [N] (sherpa-onnx does not read it): the frame counts as int64
        helper.make_node("Cast", ["speech_lengths"], ["token_num"], to=TensorProto.INT64),
    ]
    return helper.make_graph(
        nodes, "paraformer_tiny",
        inputs=[
            helper.make_tensor_value_info("speech", TensorProto.FLOAT, ["N", "T", FEATURES]),
            helper.make_tensor_value_info("speech_lengths", TensorProto.INT32, ["N"]),
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "T", VOCAB]),
            helper.make_tensor_value_info("token_num", TensorProto.INT64, ["N"]),
        ],
        initializer=[weight, bias])


def model(with_metadata):
    m = helper.make_model(graph(), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    if with_metadata:
        metadata = {
            "model_type": "paraformer",
            "vocab_size": str(VOCAB),
            "lfr_window_size": "7",
            "lfr_window_shift": "6",
            "neg_mean": ",".join(["0"] * FEATURES),
            "inv_stddev": ",".join(["1"] * FEATURES),
        }
        for key, value in metadata.items():
            entry = m.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(m)
    return m


def write(folder, m, truncate=False):
    os.makedirs(folder, exist_ok=True)
    data = m.SerializeToString()
    with open(os.path.join(folder, "model.onnx"), "wb") as f:
        f.write(data[: len(data) // 2] if truncate else data)
    tokens = ["<blank>", "<s>", "</s>", "你", "好", "世", "界", "<unk>"]
    with open(os.path.join(folder, "tokens.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{token} {index}\n" for index, token in enumerate(tokens))


def save_graph(folder, name, nodes, inputs, outputs, initializers, metadata=None):
    """Checks and writes FOLDER/NAME.onnx: one graph, opset 13, with METADATA as its properties."""
    m = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, initializers),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(folder, f"{name}.onnx"))


TRANSDUCER_TOKENS = ["<blk>", "甲", "乙", "丙", "丁", "<unk>"]


def transducer(folder):
    """An icefall-style offline transducer whose answer does not depend on the audio: from the
    start state the joiner prefers "甲" (logit 1.0) over "乙" (0.5) and blank (0); once a token is
    out, blank wins every later frame. Greedy or beam search therefore says "甲", and only a
    hotword bonus on "乙" of more than log(p(甲)/p(乙)) = 0.5 per token turns it into "乙": a
    test of whether hotwords reach the decoder, and with what weight."""
    vocab = len(TRANSDUCER_TOKENS)
    os.makedirs(folder, exist_ok=True)

    def save(name, nodes, inputs, outputs, initializers, metadata=None):
        save_graph(folder, name, nodes, inputs, outputs, initializers, metadata)

    def constant(name, values, dtype=TensorProto.INT64):
        return helper.make_tensor(name, dtype, [len(values)], values)

    # encoder: every 4th fbank frame (the subsampling sherpa-onnx assumes), lengths (n + 3) / 4
    save("encoder", [
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["encoder_out"]),
        helper.make_node("Add", ["x_lens", "three"], ["padded"]),
        helper.make_node("Div", ["padded", "four"], ["encoder_out_lens"]),
    ], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 80]),
        helper.make_tensor_value_info("x_lens", TensorProto.INT64, ["N"])],
       [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", "T4", 80]),
        helper.make_tensor_value_info("encoder_out_lens", TensorProto.INT64, ["N"])],
       [constant("starts", [0]), constant("ends", [2**62]), constant("axes", [1]), constant("steps", [4]),
        helper.make_tensor("three", TensorProto.INT64, [], [3]), helper.make_tensor("four", TensorProto.INT64, [], [4])],
       {"model_type": "zipformer2"})

    # decoder: [1, 0] after blank (the start), [0, 1] after any token; y is [N, context_size]
    embedding = [[1.0, 0.0]] + [[0.0, 1.0]] * (vocab - 1)
    save("decoder", [
        helper.make_node("Gather", ["y", "last"], ["previous"], axis=1),
        helper.make_node("Gather", ["embedding", "previous"], ["decoder_out"], axis=0),
    ], [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", 2])],
       [helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", 2])],
       [helper.make_tensor("last", TensorProto.INT64, [], [1]),
        helper.make_tensor("embedding", TensorProto.FLOAT, [vocab, 2], np.array(embedding, np.float32).flatten().tolist())],
       {"vocab_size": str(vocab), "context_size": "2"})

    # joiner: logit = decoder_out x table + 0 x sum(encoder_out), so the audio is read but not used
    table = [[0.0, 1.0, 0.5, -10.0, -10.0, -10.0],   # at the start
             [0.0, -20.0, -20.0, -20.0, -20.0, -20.0]]  # after a token
    save("joiner", [
        helper.make_node("MatMul", ["decoder_out", "table"], ["scores"]),
        helper.make_node("ReduceSum", ["encoder_out", "feature_axis"], ["total"], keepdims=1),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["scores", "nothing"], ["logit"]),
    ], [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", 80]),
        helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", 2])],
       [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", vocab])],
       [helper.make_tensor("table", TensorProto.FLOAT, [2, vocab], np.array(table, np.float32).flatten().tolist()),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]), constant("feature_axis", [1])])

    with open(os.path.join(folder, "tokens.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{token} {index}\n" for index, token in enumerate(TRANSDUCER_TOKENS))


PUNCTUATION_TOKENS = ["<unk>", "今", "天", "是", "好", "了", "吗", "hello", "world"]
PUNCTUATIONS = ["<unk>", "_", "，", "。", "？", "、"]
# The mark each token is followed by; unknown tokens get none ("_").
PUNCTUATION_AFTER = {"天": "，", "了": "。", "吗": "？", "world": "。"}


def punctuation(folder, with_metadata):
    """A CT-Transformer signature for sherpa-onnx's offline punctuation whose answer is a table:
    logits [N, T, marks] = one row per token id, so "今天是好了吗" comes back as
    "今天，是好了。吗？" (sherpa-onnx cuts at the last full stop and punctuates the rest again)."""
    rows = [[10.0 if mark == PUNCTUATION_AFTER.get(token, "_") else 0.0 for mark in PUNCTUATIONS]
            for token in PUNCTUATION_TOKENS]
    table = helper.make_tensor("table", TensorProto.FLOAT, [len(rows), len(PUNCTUATIONS)], np.array(rows, np.float32).flatten().tolist())
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 1, 1])
    nodes = [
        helper.make_node("Gather", ["table", "inputs"], ["scores"], axis=0),
        # text_lengths [N] takes part as zeros, so that the graph reads both inputs.
        helper.make_node("Cast", ["text_lengths"], ["lengths"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["lengths", "lengths"], ["zeros"]),
        helper.make_node("Reshape", ["zeros", "shape"], ["zero"]),
        helper.make_node("Add", ["scores", "zero"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "punctuation_tiny",
        inputs=[helper.make_tensor_value_info("inputs", TensorProto.INT32, ["N", "T"]),
                helper.make_tensor_value_info("text_lengths", TensorProto.INT32, ["N"])],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "T", len(PUNCTUATIONS)])],
        initializer=[table, shape])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    if with_metadata:
        metadata = {"model_type": "ct_transformer", "vocab_size": str(len(PUNCTUATION_TOKENS)),
                    "tokens": "|".join(PUNCTUATION_TOKENS), "punctuations": "|".join(PUNCTUATIONS), "unk_symbol": "<unk>"}
        for key, value in metadata.items():
            entry = m.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(m)
    os.makedirs(folder, exist_ok=True)
    onnx.save(m, os.path.join(folder, "model.onnx"))


STREAMING_DIM = 4
STREAMING_KERNEL = 11
STREAMING_TOKENS = ["<blank>", "<s>", "</s>", "乙", "丙", "<unk>"]


def streaming(folder, with_metadata):
    """sherpa-onnx's streaming Paraformer signature, whose answer is one "乙" for about every
    0.6 s of audio, whatever the audio: the encoder's CIF weights (alphas) are 0.1 for every
    LFR frame, so the integrator fires once per ten frames (one chunk), and the decoder's large
    bias picks token 3 for every acoustic embedding. Speech in, "乙乙乙" out as it arrives: a
    test that partials come from this model and not from the offline one."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(20261202)

    def save(name, nodes, inputs, outputs, initializers, metadata=None):
        save_graph(folder, name, nodes, inputs, outputs, initializers, metadata)

    def tensor(name, shape, values):
        return helper.make_tensor(name, TensorProto.FLOAT, shape, np.asarray(values, np.float32).flatten().tolist())

    metadata = {
        "model_type": "paraformer",
        "vocab_size": str(len(STREAMING_TOKENS)),
        "lfr_window_size": "7",
        "lfr_window_shift": "6",
        "encoder_output_size": str(STREAMING_DIM),
        "decoder_num_blocks": "1",
        "decoder_kernel_size": str(STREAMING_KERNEL),
        "neg_mean": ",".join(["0"] * FEATURES),
        "inv_stddev": ",".join(["1"] * FEATURES),
    } if with_metadata else None
    # encoder: encoder_out = speech x W; alphas = 0 x mean(speech) + 0.1 per frame
    save("encoder", [
        helper.make_node("MatMul", ["speech", "weight"], ["encoder_out"]),
        helper.make_node("Identity", ["speech_lengths"], ["encoder_out_lens"]),
        helper.make_node("ReduceMean", ["speech"], ["mean"], axes=[2], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "alpha"], ["alphas"]),
    ], [helper.make_tensor_value_info("speech", TensorProto.FLOAT, ["N", "T", FEATURES]),
        helper.make_tensor_value_info("speech_lengths", TensorProto.INT32, ["N"])],
       [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", "T", STREAMING_DIM]),
        helper.make_tensor_value_info("encoder_out_lens", TensorProto.INT32, ["N"]),
        helper.make_tensor_value_info("alphas", TensorProto.FLOAT, ["N", "T"])],
       [tensor("weight", [FEATURES, STREAMING_DIM], rng.standard_normal((FEATURES, STREAMING_DIM)) * 0.01),
        tensor("zero", [], [0.0]), tensor("alpha", [], [0.1])],
       metadata)

    # decoder: logits = acoustic_embeds x W + bias (token 3 wins); the cache passes through
    vocab = len(STREAMING_TOKENS)
    bias = [0.0] * vocab
    bias[3] = 1e4
    save("decoder", [
        helper.make_node("MatMul", ["acoustic_embeds", "weight"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("ArgMax", ["logits"], ["sample_ids"], axis=2, keepdims=0),
        helper.make_node("Identity", ["in_cache_0"], ["out_cache_0"]),
    ], [helper.make_tensor_value_info("enc", TensorProto.FLOAT, ["N", "T", STREAMING_DIM]),
        helper.make_tensor_value_info("enc_len", TensorProto.INT32, ["N"]),
        helper.make_tensor_value_info("acoustic_embeds", TensorProto.FLOAT, ["N", "U", STREAMING_DIM]),
        helper.make_tensor_value_info("acoustic_embeds_len", TensorProto.INT32, ["N"]),
        helper.make_tensor_value_info("in_cache_0", TensorProto.FLOAT, ["N", STREAMING_DIM, STREAMING_KERNEL - 1])],
       [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "U", vocab]),
        helper.make_tensor_value_info("sample_ids", TensorProto.INT64, ["N", "U"]),
        helper.make_tensor_value_info("out_cache_0", TensorProto.FLOAT, ["N", STREAMING_DIM, STREAMING_KERNEL - 1])],
       [tensor("weight", [STREAMING_DIM, vocab], rng.standard_normal((STREAMING_DIM, vocab))), tensor("bias", [vocab], bias)])

    with open(os.path.join(folder, "tokens.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{token} {index}\n" for index, token in enumerate(STREAMING_TOKENS))


def main():
    out = sys.argv[1]
    write(os.path.join(out, "paraformer-tiny"), model(True))
    write(os.path.join(out, "paraformer-no-metadata"), model(False))
    write(os.path.join(out, "paraformer-corrupt"), model(True), truncate=True)
    transducer(os.path.join(out, "transducer-tiny"))
    punctuation(os.path.join(out, "punctuation-tiny"), True)
    punctuation(os.path.join(out, "punctuation-no-metadata"), False)
    streaming(os.path.join(out, "paraformer-streaming-tiny"), True)
    streaming(os.path.join(out, "paraformer-streaming-no-metadata"), False)


if __name__ == "__main__":
    main()
