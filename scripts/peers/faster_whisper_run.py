"""One faster-whisper run for `tingxie bench --sections peers`: transcribes AUDIO with the
CTranslate2 model in MODEL_DIR and writes {"segments": [{"start", "end", "text"}]} to OUT.

    faster_whisper_run.py MODEL_DIR AUDIO OUT MODE THREADS LANGUAGE

MODE: greedy (beam 1, vad_filter), beam5 (faster-whisper's default beam, vad_filter), or
batched (BatchedInferencePipeline, batch 8, beam 1: what speaches and WhisperX run).
"""
import json
import sys

from faster_whisper import BatchedInferencePipeline, WhisperModel


def main():
    model_dir, audio, out, mode, threads, language = sys.argv[1:7]
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
    if mode == "batched":
        segments, _ = BatchedInferencePipeline(model).transcribe(audio, language=language, batch_size=8, beam_size=1)
    elif mode in ("greedy", "beam5"):
        segments, _ = model.transcribe(audio, language=language, beam_size=1 if mode == "greedy" else 5, vad_filter=True)
    else:
        sys.exit(f"unknown mode {mode}: greedy, beam5 or batched")
    result = [{"start": s.start, "end": s.end, "text": s.text} for s in segments]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"segments": result}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
