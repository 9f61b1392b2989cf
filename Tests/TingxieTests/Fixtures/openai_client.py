"""Transcribes one file through Tingxie with the official openai SDK, in every response format.

usage: openai_client.py BASE_URL API_KEY AUDIO
Prints one JSON object: the text of each format, a summary of verbose_json, the events of a
streamed transcription, and the status a wrong key gets.
"""
import json
import sys

import openai

base_url, api_key, audio = sys.argv[1:4]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
results = {}
for response_format in ["json", "text", "srt", "vtt", "verbose_json"]:
    with open(audio, "rb") as file:
        extra = {"timestamp_granularities": ["segment"]} if response_format == "verbose_json" else {}
        response = client.audio.transcriptions.create(
            model="whisper-1", file=file, response_format=response_format, language="zh", **extra
        )
    if response_format == "json":
        results["json"] = response.text
    elif response_format == "verbose_json":
        results["verbose_json"] = {"duration": response.duration, "segments": len(response.segments or [])}
    else:
        results[response_format] = response.strip() if isinstance(response, str) else str(response)

# stream=True: deltas as segments are recognised, then the whole text.
with open(audio, "rb") as file:
    events = list(client.audio.transcriptions.create(model="whisper-1", file=file, language="zh", stream=True))
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
print(json.dumps(results, ensure_ascii=False))
