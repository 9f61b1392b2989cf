#!/usr/bin/env python3
"""Writes long test recordings, each with its reference, from the public corpus's sentences.

    python3 scripts/make-long-audio.py CORPUS_DIR OUT_DIR

CORPUS_DIR holds zh-tts/ and zh-tts-hotwords/ (../shared/corpus). Every recording is
OUT_DIR/NAME.wav (16 kHz mono 16-bit) with OUT_DIR/NAME.tsv beside it: start_s<TAB>end_s<TAB>text,
one line per sentence, as the corpus's own meeting-10min.tsv. The recordings differ from
meeting-10min.wav (id order, 0.5-3 s pauses, one voice, clean) in what long-form decoding is
sensitive to: order, pause lengths, speaking rate, noise and voice. Seeded: the same corpus
gives the same files.

Needs numpy and ffmpeg (tempo and pitch changes, resampling). The second voice is the corpus
voice 20% lower (about four semitones, a male-like pitch) at the same tempo: espeak-ng's Mandarin
voices, tried first, come out as noise to Whisper base (its `cmn` voice reads many characters as
English letters, and even fed tone-numbered pinyin its `cmn-latn-pinyin` voice gave "和三个" for
a whole sentence), so they would measure the voice, not long-form decoding.
"""
import pathlib
import subprocess
import sys
import tempfile
import wave

import numpy as np

RATE = 16_000

# name: seed, pauses (s), tempo of the corpus voice, noise SNR in dB (None: clean), voices.
RECORDINGS = {
    "shuffled-short-pauses": dict(seed=1, pauses=(0.3, 1.2), tempo=1.0, snr=None, voices=("corpus",)),
    "fast-long-pauses": dict(seed=2, pauses=(1.0, 5.0), tempo=1.25, snr=None, voices=("corpus",)),
    "noisy-20db": dict(seed=3, pauses=(0.5, 3.0), tempo=1.0, snr=20, voices=("corpus",)),
    "two-voices-slow": dict(seed=4, pauses=(0.4, 2.0), tempo=0.9, snr=None, voices=("corpus", "lower")),
}
# Sentences per recording: every corpus sentence twice (about six minutes of speech).
REPEATS = 2


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768


def write_wav(path, samples):
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def ffmpeg(source, filters, work):
    """Runs `source` (a WAV file) through ffmpeg's `filters`, out at 16 kHz mono."""
    out = pathlib.Path(work) / "ffmpeg-out.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-af", filters,
                    "-ar", str(RATE), "-ac", "1", "-c:a", "pcm_s16le", str(out)], check=True)
    return read_wav(out)


def trimmed(samples):
    """The speech from its first to its last sample above 1e-4."""
    loud = np.flatnonzero(np.abs(samples) > 1e-4)
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples[:0]


def sentence(corpus_wav, voice, tempo, work):
    if voice == "lower":
        # Played 20% slower (lower), then sped back up to the tempo asked for.
        return trimmed(ffmpeg(corpus_wav, f"asetrate={RATE}*0.8,aresample={RATE},atempo={tempo / 0.8}", work))
    if tempo == 1.0:
        return trimmed(read_wav(corpus_wav))
    return trimmed(ffmpeg(corpus_wav, f"atempo={tempo}", work))


def sentences(corpus):
    for folder in ("zh-tts", "zh-tts-hotwords"):
        for line in (corpus / folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            ident, text = line.split("\t", 1)
            yield corpus / folder / f"{ident}.wav", text


def make(name, spec, corpus, out, work):
    rng = np.random.default_rng(spec["seed"])
    pool = list(sentences(corpus)) * REPEATS
    order = rng.permutation(len(pool))
    pieces, rows, at = [], [], 0.0
    for position, index in enumerate(order):
        wav, text = pool[index]
        pause = rng.uniform(*spec["pauses"])
        voice = spec["voices"][position % len(spec["voices"])]
        speech = sentence(wav, voice, spec["tempo"], work)
        pieces += [np.zeros(int(pause * RATE), dtype=np.float32), speech]
        start = at + int(pause * RATE) / RATE
        at = start + len(speech) / RATE
        rows.append(f"{start:.3f}\t{at:.3f}\t{text}")
    pieces.append(np.zeros(int(rng.uniform(*spec["pauses"]) * RATE), dtype=np.float32))
    audio = np.concatenate(pieces)
    if spec["snr"] is not None:
        speech = np.concatenate([p for p in pieces if p.size and np.any(p)])
        power = float(np.mean(speech ** 2)) / 10 ** (spec["snr"] / 10)
        audio = audio + rng.normal(0, np.sqrt(power), audio.size).astype(np.float32)
    write_wav(out / f"{name}.wav", audio)
    (out / f"{name}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{name}: {audio.size / RATE:.0f} s, {len(rows)} sentences")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    corpus, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for name, spec in RECORDINGS.items():
            make(name, spec, corpus, out, work)


if __name__ == "__main__":
    main()
