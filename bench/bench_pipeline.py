"""Benchmark of the main job, `avatar render`.

Prints:
  - real-time factor (render seconds / video seconds) of the demo at 1280x720 and 1920x1080
  - peak memory (RSS) of a 2-scene and a 20-scene script (should stay flat)
  - the cached rerun after changing one scene of the 20-scene script (about 1/N of the full time)
  - the real-time factor of `avatar say` for about 30 s of speech (512x512 photo, whole picture)

Each render runs in its own process so peak RSS is that render's alone.
Usage: python bench/bench_pipeline.py [--quick] [--memory]   (--quick: 720p demo and the 2/6-scene
       memory runs only; --memory: the 2/20-scene memory runs and the rerun only)

       python bench/bench_pipeline.py --growth 200
RSS after every tenth of the scenes and the peak, while one process (--jobs 1) renders an
N-scene 1280x720 script (the memory script's scenes): flat means the RSS stops rising.

       python bench/bench_pipeline.py --mix [--scenes 20 --scenes 200] [--cache DIR]
the final mix at assembly: scripts of N scenes of about 15 s of narration each (a sentence and
a pause; 160x96, 4 fps, no presenter, so scenes render fast), rendered once to fill the cache,
then re-rendered from the cache in one process (--jobs 1: only assembly runs) with loudness on
(the default, -16 LUFS) and off: peak RSS and seconds of each. Also the cached demo (1280x720):
assembly seconds with loudness on and off. --cache keeps the scene cache between runs (e.g. to
measure another checkout's assembly on the same segments: PYTHONPATH=that/checkout).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

SAY = r"""
import json, resource, sys, time
from pathlib import Path
from avatar.api import say
text, out = sys.argv[1:3]
t = time.perf_counter()
r = say(text, face=None, out=Path(out))
print(json.dumps({"seconds": time.perf_counter() - t, "duration": r.duration, "scenes": 1, "rendered": 1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from avatar.api import render
from avatar.script import load
script, out, size, cache, jobs = sys.argv[1:6]
t = time.perf_counter()
r = render(load(Path(script)), Path(out), size=size or None, cache_dir=Path(cache), jobs=int(jobs) or None)
print(json.dumps({"seconds": time.perf_counter() - t, "duration": r.duration, "scenes": r.scenes,
                  "rendered": r.rendered, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

GROWTH = r"""
import json, resource, sys
from pathlib import Path
from avatar.api import render
from avatar.script import load
script, out, cache, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS"))
seen = set()
def progress(ev):
    if ev.stage == "scenes" and ev.done not in seen and (ev.done % max(1, n // 10) == 0 or ev.done == 1):
        seen.add(ev.done)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"  after scene {ev.done:4d}: RSS {rss()} MB, peak so far {peak} MB", flush=True)
render(load(Path(script)), Path(out), cache_dir=Path(cache), jobs=1, on_progress=progress)
print(f"  end: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
"""

SENTENCES = [
    "Our product turns a written script into a narrated video.",
    "Each scene has a slide, a voice and a talking presenter.",
    "The face is animated from a single photo on the processor.",
    "Captions follow the words as they are spoken.",
    "Scenes that did not change are reused from the cache.",
]


MIX_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from avatar.api import render
from avatar.script import load
script, out, cache, loudness = sys.argv[1:5]
t = time.perf_counter()
r = render(load(Path(script)), Path(out), cache_dir=Path(cache), jobs=1, loudness=loudness or None)
print(json.dumps({"seconds": time.perf_counter() - t, "duration": r.duration, "scenes": r.scenes,
                  "rendered": r.rendered, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(script: Path, out: Path, size: str, cache: Path, code: str = CHILD, jobs: int = 0) -> dict:
    """jobs 0: the default (one scene process per core); 1: everything in one process (its peak RSS
    is then the whole render's; with worker processes it is the main process's alone)."""
    args = [str(script), str(out)] + ([size, str(cache), str(jobs)] if code is CHILD else [])
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"render failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def deck(path: Path, n: int, changed: int | None = None) -> Path:
    lines = ["title: Bench", "size: 1280x720", "scenes:"]
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)] + (" This one changed." if i == changed else "")
        lines += [f"  - slide: {{layout: bullets, title: 'Scene {i + 1}', bullets: ['Point one', 'Point two']}}",
                  f"    narration: \"{text}\""]
    path.write_text("\n".join(lines) + "\n")
    return path


def mix_deck(path: Path, n: int) -> Path:
    lines = ["title: Mix bench", "size: 160x96", "fps: 4", "transition: cut", "captions: {burn: false}",
             "avatar: {layout: none}", "scenes:"]
    for i in range(n):
        lines.append(f"  - narration: \"Scene {i + 1}. {SENTENCES[i % len(SENTENCES)]} [pause 11s]\"")
    path.write_text("\n".join(lines) + "\n")
    return path


def child(code: str, *args) -> dict:
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"render failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def mix(scenes: list[int], keep: Path | None) -> None:
    from avatar.resources import templates_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = keep or tmp / "cache"
        demo = templates_dir() / "demo.yaml"
        run(demo, tmp / "demo.mp4", "1280x720", cache)           # fills the cache
        for loud in ("-16", "off"):
            r = child(MIX_CHILD.replace("jobs=1,", "jobs=1, size='1280x720',"), demo, tmp / "demo.mp4", cache, loud)
            print(f"demo 1280x720 from the cache, loudness {loud}: {r['duration']:.1f} s video, "
                  f"assembly {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
        for n in scenes:
            script = mix_deck(tmp / f"mix{n}.yaml", n)
            t = child(CHILD, script, tmp / f"mix{n}.mp4", "", cache, 0)
            print(f"{n} scenes: {t['duration']:.0f} s video, first render {t['seconds']:.0f} s ({t['rendered']} scenes)")
            for loud in ("-16", "off"):
                r = child(MIX_CHILD, script, tmp / f"mix{n}.mp4", cache, loud)
                print(f"  from the cache, --jobs 1, loudness {loud}: peak RSS {r['peak_rss_mb']:.0f} MB, "
                      f"{r['seconds']:.1f} s ({r['rendered']} scenes re-rendered)")


def main() -> None:
    quick = "--quick" in sys.argv
    memory_only = "--memory" in sys.argv
    if "--mix" in sys.argv:
        args = sys.argv[1:]
        scenes = [int(args[i + 1]) for i, a in enumerate(args) if a == "--scenes"] or [20, 200]
        keep = Path(args[args.index("--cache") + 1]) if "--cache" in args else None
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        return mix(scenes, keep)
    from avatar.resources import templates_dir

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if "--growth" in sys.argv:
        n = int(sys.argv[sys.argv.index("--growth") + 1])
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            print(f"{n} scenes at 1280x720, --jobs 1, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}:")
            subprocess.run([sys.executable, "-c", GROWTH, str(deck(tmp / "g.yaml", n)), str(tmp / "g.mp4"),
                            str(tmp / "cache"), str(n)], check=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        text = " ".join(SENTENCES * 2)   # about 30 s of speech
        if not memory_only:
            r = run(text, tmp / "say.mp4", "", tmp, code=SAY)   # type: ignore[arg-type]
            print(f"avatar say: {r['duration']:.1f} s clip in {r['seconds']:.1f} s -> "
                  f"RTF {r['seconds'] / r['duration']:.2f} (includes model loading), peak RSS {r['peak_rss_mb']:.0f} MB")
        demo = templates_dir() / "demo.yaml"
        for size in ([] if memory_only else ["1280x720"] if quick else ["1280x720", "1920x1080"]):
            r = run(demo, tmp / f"demo_{size}.mp4", size, tmp / f"cache_{size}")
            print(f"demo {size}: {r['duration']:.1f} s video in {r['seconds']:.1f} s -> "
                  f"RTF {r['seconds'] / r['duration']:.2f} (scene processes: one per core)")
        big = 6 if quick else 20
        for n in (2, big):
            r = run(deck(tmp / f"d{n}.yaml", n), tmp / f"d{n}.mp4", "", tmp / f"c{n}", jobs=1)
            print(f"{n:2d} scenes: {r['duration']:.1f} s video, peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(--jobs 1: one process), render {r['seconds']:.1f} s")
            full = r
        r = run(deck(tmp / f"d{big}.yaml", big, changed=big // 2), tmp / "rerun.mp4", "", tmp / f"c{big}", jobs=1)
        print(f"rerun after changing 1 of {big} scenes: {r['seconds']:.1f} s "
              f"({r['rendered']} re-rendered; full render {full['seconds']:.1f} s, "
              f"ratio {r['seconds'] / full['seconds']:.2f} vs 1/N = {1 / big:.2f})")


if __name__ == "__main__":
    main()
