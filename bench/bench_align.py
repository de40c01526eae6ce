"""Word timing accuracy of transcript alignment on recorded speech (avatar.speech.align).

Ground truth: Debian's Festival speaks generated sentences with voices that are not
Piper's (US female HTS `cmu_us_slt_arctic_hts`, and the diphone voices kal, kd
when installed) and reports the time of every word. The aligner gets the audio and
the text, as it would get a user's recording and transcript.

    python bench/bench_align.py [--n 20] [--seed 1]

Prints, per voice, the word-start error (median, mean, 95th percentile) and the share
of words within 50 and 100 ms. Needs `apt-get install festival festvox-us-slt-hts`
(and optionally festvox-kallpc16k festvox-kdlpc16k).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

def festival_words(voice: str, texts: list[str], workdir: Path):
    """[(audio float32, sample rate, [(word, start, end)])] spoken by Festival `voice`."""
    import wave

    from avatar.lips.festival import VOICES, scheme_string

    lines = [f"(voice_{VOICES[voice].voice})"]
    for i, text in enumerate(texts):
        lines.append(f"(set! utt (utt.synth (Utterance Text {scheme_string(text)})))")
        lines.append(f'(utt.save.wave utt "{workdir}/{i}.wav" \'riff)')
        lines.append(f'(set! fd (fopen "{workdir}/{i}.txt" "w"))')
        lines.append("(mapcar (lambda (w) (format fd \"%s %f %f\\n\" (item.name w) "
                     "(item.feat w \"word_start\") (item.feat w \"word_end\"))) (utt.relation.items utt 'Word))")
        lines.append("(fclose fd)")
    script = workdir / "run.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True)
    out = []
    for i in range(len(texts)):
        with wave.open(str(workdir / f"{i}.wav")) as w:
            a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
            sr = w.getframerate()
        words = [(p[0], float(p[1]), float(p[2])) for p in
                 (line.split() for line in (workdir / f"{i}.txt").read_text().splitlines()) if len(p) == 3]
        out.append((a, sr, words))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="utterances per voice")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("festival") is None:
        sys.exit("bench_align: Festival is not installed (apt-get install festival festvox-us-slt-hts)")
    from avatar.lips.dataset import make_text
    from avatar.lips.festival import VOICES, installed_voices
    from avatar.speech.align import align_transcript

    rng = np.random.default_rng(args.seed)
    texts = [make_text(rng) for _ in range(args.n)]
    have = installed_voices()
    for voice in VOICES:
        if voice not in have:
            print(f"{voice}: not installed, skipped")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            clips = festival_words(voice, texts, Path(tmp))
        errs, audio_s, t0 = [], 0.0, time.perf_counter()
        for (audio, sr, truth), text in zip(clips, texts):
            speech = align_transcript(audio, sr, text)
            audio_s += len(audio) / sr
            if len(speech.words) != len(truth):       # tokenisation differs (rare): skip the clip
                continue
            errs += [abs(w.start - t[1]) for w, t in zip(speech.words, truth)]
        secs = time.perf_counter() - t0
        e = np.array(errs) * 1000
        print(f"{voice}: {len(e)} words, start error median {np.median(e):.0f} ms, mean {e.mean():.0f} ms, "
              f"p95 {np.percentile(e, 95):.0f} ms; within 50 ms {np.mean(e <= 50):.0%}, "
              f"within 100 ms {np.mean(e <= 100):.0%}; {audio_s:.0f} s of audio aligned in {secs:.1f} s")


if __name__ == "__main__":
    main()
