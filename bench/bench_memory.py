"""Peak memory (RSS) of `avatar say --audio` on long recordings and of `avatar render` on many scenes.

  - say --audio on 1, 10 and 60 minutes of speech-like audio (generated: Piper sentences in a
    shuffled order with pauses of 0.2-1.5 s between them, 16 kHz mono 16-bit WAV; no transcript,
    so the audio-to-lips model drives the mouth, or with --transcript its text, so Piper reads it
    and pocketsphinx aligns it), 256 px output at 10 fps to keep the run short
    (memory does not depend on the frame rate: frames are streamed);
  - render of 2, 20 and 200 tiny scenes (160x96, 8 fps, presenter in a corner), serial (--jobs 1)
    so one process holds everything.

Each command runs in its own process; its peak RSS is read with getrusage(RUSAGE_CHILDREN) by a
wrapper process that runs nothing else. Target: flat, under 1.5 GB.
Usage: python bench/bench_memory.py [--quick]     (--quick: 1 and 10 minutes; 2 and 20 scenes)
       python bench/bench_memory.py --minutes 60 --scenes 200   (one case each)
       python bench/bench_memory.py --minutes 5 --transcript     (the aligned path)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRAP = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(json.dumps({'rc': r.returncode, 'err': r.stderr[-1500:], 'seconds': time.perf_counter() - t, "
        "'peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")

SENTENCES = [
    "Our product turns a written script into a narrated video.",
    "Each scene has a slide, a voice and a talking presenter.",
    "The face is animated from a single photo on the processor.",
    "Captions follow the words as they are spoken, one line at a time.",
    "Scenes that did not change are reused from the cache.",
    "Memory should stay flat, however long the recording is.",
    "We measured it on a small machine with two cores.",
    "Bob bought a big map, then Pam came by with a puppy.",
]


def measure(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True, env=env)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["rc"]:
        sys.exit(f"{' '.join(cmd)} failed:\n{out['err']}")
    return out


def speech_like(path: Path, minutes: float, seed: int = 0) -> tuple[Path, str]:
    """Piper sentences, shuffled, with pauses between them, up to `minutes` (16 kHz mono WAV),
    and the transcript of the sentences that are whole in it."""
    import numpy as np
    import soundfile as sf

    from avatar.script.models import VoiceSpec
    from avatar.speech.audio import resample
    from avatar.speech.piper_voice import PiperVoice

    voice = PiperVoice(VoiceSpec())
    clips = [resample(voice.synthesize(s).audio, voice.sample_rate, 16000) for s in SENTENCES]
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * 16000)
    said = []
    with sf.SoundFile(str(path), "w", 16000, 1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            k = rng.integers(len(clips))
            clip = clips[k] * rng.uniform(0.6, 1.0)
            gap = np.zeros(int(rng.uniform(0.2, 1.5) * 16000), np.float32)
            block = np.concatenate([clip, gap])[: total - written]
            f.write(block)
            written += len(block)
            if len(block) >= len(clip):
                said.append(SENTENCES[k])
    return path, " ".join(said)


def deck(path: Path, scenes: int) -> Path:
    lines = ["title: Memory", "size: 160x96", "fps: 8", "transition: cut",
             "avatar: {layout: pip, motion: phonemes}", "scenes:"]
    for i in range(scenes):
        lines.append(f"  - narration: \"Scene {i + 1}. {SENTENCES[i % len(SENTENCES)]}\"")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 and 10 minutes; 2 and 20 scenes")
    ap.add_argument("--minutes", type=float, action="append", help="recording length(s) to measure")
    ap.add_argument("--scenes", type=int, action="append", help="scene count(s) to measure")
    ap.add_argument("--transcript", action="store_true",
                    help="pass the recording's transcript (Piper reads it, pocketsphinx aligns it)")
    args = ap.parse_args()
    minutes = args.minutes or ([] if args.scenes else [1, 10] if args.quick else [1, 10, 60])
    scenes = args.scenes or ([] if args.minutes else [2, 20] if args.quick else [2, 20, 200])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    avatar = [sys.executable, "-m", "avatar.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        for m in minutes:
            wav, text = speech_like(tmp / f"rec{m:g}.wav", m)
            r = measure(avatar + ["say", "--audio", str(wav), "-o", str(tmp / "say.mp4"), "--size", "256",
                                  "--fps", "10", "-q"] + (["--transcript", text] if args.transcript else []))
            what = "with its transcript" if args.transcript else "no transcript"
            print(f"say --audio, {m:g} min recording ({what}): peak RSS {r['peak_mb']:.0f} MB, "
                  f"{r['seconds']:.0f} s (real-time factor {r['seconds'] / (m * 60):.2f})")
            wav.unlink()
        for n in scenes:
            t0 = time.perf_counter()
            r = measure(avatar + ["render", str(deck(tmp / f"d{n}.yaml", n)), "-o", str(tmp / "r.mp4"),
                                  "--cache-dir", str(tmp / f"cache{n}"), "--jobs", "1", "-q"])
            print(f"render, {n} scenes: peak RSS {r['peak_mb']:.0f} MB, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
