#!/usr/bin/env python3
"""Writes tiny random-weight ONNX models with sherpa-onnx's Paraformer signature, for tests
of Tingxie's model loading path. Needs the `onnx` and `numpy` packages (scripts/setup --test).

    make-test-models.py OUT_DIR

creates
    OUT_DIR/paraformer-tiny/            a loadable model: model.onnx + tokens.txt
    OUT_DIR/paraformer-no-metadata/     the same graph without the metadata sherpa-onnx needs
    OUT_DIR/paraformer-corrupt/         model.onnx truncated to half its bytes
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


def main():
    out = sys.argv[1]
    write(os.path.join(out, "paraformer-tiny"), model(True))
    write(os.path.join(out, "paraformer-no-metadata"), model(False))
    write(os.path.join(out, "paraformer-corrupt"), model(True), truncate=True)


if __name__ == "__main__":
    main()
