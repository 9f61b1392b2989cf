#!/usr/bin/env python3
"""Writes the ordinary-phrase hotword list the hotword precision tests use.

A seeded sample of 2-4 character phrases from pypinyin's phrase dictionary (PyPI `pypinyin`,
MIT), leaving out every phrase that occurs in, or contains a term of, the test corpora's
transcripts: the list stands for the product names, people and jargon a team loads, none of
which the plain sentences contain.

    python3 scripts/make-phrase-list.py ../shared/corpus > Tests/TingxieTests/Fixtures/ordinary-phrases.txt
"""
import pathlib
import random
import sys

from pypinyin.phrases_dict import phrases_dict

COUNT = 1000
SEED = 20261202


def main():
    corpus = pathlib.Path(sys.argv[1])
    sentences = [line.split("\t", 1)[1] for tsv in sorted(corpus.glob("*/transcripts.tsv"))
                 for line in tsv.read_text(encoding="utf-8").splitlines() if "\t" in line]
    terms = [line.strip() for line in (corpus / "zh-tts-hotwords" / "hotwords.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    phrases = sorted(phrase for phrase in phrases_dict
                     if 2 <= len(phrase) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in phrase)
                     and not any(phrase in sentence for sentence in sentences)
                     and not any(term in phrase or phrase in term for term in terms))
    chosen = random.Random(SEED).sample(phrases, COUNT)
    print(f"# {COUNT} ordinary phrases: pypinyin {__import__('pypinyin').__version__} phrases_dict, seed {SEED} (scripts/make-phrase-list.py)")
    print("\n".join(chosen))


if __name__ == "__main__":
    main()
