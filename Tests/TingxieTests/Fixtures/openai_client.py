"""Speaks to Tingxie with the official openai SDK, as a client moving from OpenAI would.

usage: openai_client.py formats BASE_URL API_KEY AUDIO
           every response format, a streamed transcription, and the status a wrong key gets
       openai_client.py languages BASE_URL API_KEY MANDARIN ENGLISH
           a translation, English named and detected, an unsupported language, word timestamps
       openai_client.py words BASE_URL API_KEY AUDIO
           verbose_json with word timestamps
Prints one JSON object with what came back.
"""
import json
import sys

import openai

mode, base_url, api_key = sys.argv[1:4]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
results = {}


def transcribe(audio, **options):
    with open(audio, "rb") as file:
        return client.audio.transcriptions.create(model="whisper-1", file=file, **options)


def verbose(audio, **options):
    response = transcribe(audio, response_format="verbose_json", **options)
    words = None if response.words is None else [[w.word, w.start, w.end] for w in response.words]
    return {"text": response.text, "language": response.language, "duration": response.duration,
            "segments": len(response.segments or []), "words": words}


if mode == "formats":
    audio = sys.argv[4]
    for response_format in ["json", "text", "srt", "vtt"]:
        response = transcribe(audio, response_format=response_format, language="zh")
        results[response_format] = response.text if response_format == "json" else response.strip()
    results["verbose_json"] = verbose(audio, language="zh", timestamp_granularities=["segment"])
    # stream=True: deltas as segments are recognised, then the whole text.
    events = list(transcribe(audio, language="zh", stream=True))
    results["stream"] = {
        "deltas": [event.delta for event in events if event.type == "transcript.text.delta"],
        "done": [event.text for event in events if event.type == "transcript.text.done"],
    }
    wrong = openai.OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0)
    try:
        with open(audio, "rb") as file:
            wrong.audio.transcriptions.create(model="whisper-1", file=file)
        results["unauthorized"] = 200
    except openai.AuthenticationError as error:
        results["unauthorized"] = error.status_code
elif mode == "languages":
    mandarin, english = sys.argv[4:6]
    with open(mandarin, "rb") as file:
        results["translation"] = client.audio.translations.create(model="whisper-1", file=file).text
    with open(mandarin, "rb") as file:
        translated = client.audio.translations.create(model="whisper-1", file=file, response_format="verbose_json")
    results["translation_verbose"] = {"task": translated.task, "language": translated.language}
    results["english"] = transcribe(english, language="en").text
    results["detected"] = verbose(english)
    results["mandarin_detected"] = verbose(mandarin, timestamp_granularities=["word", "segment"])
    try:
        transcribe(english, language="xx")
        results["unsupported"] = {"status": 200}
    except openai.BadRequestError as error:
        results["unsupported"] = {"status": error.status_code, "message": error.message}
elif mode == "words":
    results["verbose_json"] = verbose(sys.argv[4], timestamp_granularities=["word"])
print(json.dumps(results, ensure_ascii=False))
