"""What a render pays for new memory (pages the kernel must zero before a process uses them).

    python bench/bench_fresh_memory.py [--rounds 2] [--frames 100]

Two measurements, each case in a fresh process of its own, the cases alternated --rounds times:

  x264    four 1080p H.264 segments written one after another with write_mp4 (--frames
          pictures each: a still with a moving block), as a scene worker writes its scenes,
          with the system's defaults ("default"), with avatar.build.memory's malloc thresholds
          ("malloc": keep_freed_memory, what the command line and the scene workers now set)
          and with those and no transparent huge pages as well ("nothp", prctl
          PR_SET_THP_DISABLE: tried, and left out, see avatar/build/memory.py). Prints each
          segment's CPU user and system seconds and minor page faults.
  voice   the bundled Piper voice patched for alignment (avatar.speech.piper_voice): by
          parsing the whole ONNX model and writing it again (_patched_whole, what it did
          before), and by rewriting only its graph's nodes and outputs (_patched, now). CPU
          seconds and minor faults of each; both give the same model (tests/test_speech.py).

System time here is mostly the kernel zeroing pages; on a virtual machine a new page can cost
a fault in the host too, so the figures differ most between machines of different kinds.
Prints the machine and its load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

X264 = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import numpy as np
from avatar.build import memory
if sys.argv[1] == "malloc":
    assert memory.keep_freed_memory(), "mallopt refused"
elif sys.argv[1] == "nothp":
    assert memory.keep_freed_memory(), "mallopt refused"
    import ctypes
    assert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0, "prctl(PR_SET_THP_DISABLE) refused"
from avatar.video.mp4 import write_mp4
n = int(sys.argv[2])
base = (np.random.default_rng(0).random((1080, 1920, 3)) * 255).astype(np.uint8)

def pictures():
    for k in range(n):
        f = base.copy()
        f[100 + k:300 + k, 100:400] = k
        yield f

out = []
with tempfile.TemporaryDirectory() as d:
    for i in range(4):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        write_mp4(Path(d) / f"s{i}.mp4", pictures(), fps=25)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        out.append([r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt])
print(json.dumps(out))
"""

VOICE = r"""
import json, resource, sys
import onnx, piper.patch_voice_with_alignment
from avatar.speech import piper_voice as P
model, _ = P.bundled_model()
f = P._patched if sys.argv[1] == "splice" else P._patched_whole
r0 = resource.getrusage(resource.RUSAGE_SELF)
data = f(str(model))
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps([r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt, len(data)]))
"""


def run(code: str, *args: str) -> list:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd="/")
    if p.returncode:
        sys.exit(f"bench failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def machine() -> str:
    return (f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; code: {ROOT / 'avatar'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    print(machine())
    print(f"x264: 4 segments of {args.frames} 1080p pictures in one process (CPU user/system s, minor faults)")
    sums: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for case in ("default", "malloc", "nothp"):
            segs = run(X264, case, str(args.frames))
            sums.setdefault(case, []).extend(s[1] for s in segs)
            cells = "  ".join(f"{u:.2f}/{s:.2f} {int(f):6d}" for u, s, f in segs)
            print(f"  round {r + 1} {case:8s} segment 1..4: {cells}")
    for case, s in sums.items():
        print(f"  {case:8s} system seconds: first segments {sum(s[0::4]) / (len(s) // 4):.2f}, "
              f"later ones {sum(x for i, x in enumerate(s) if i % 4) / (3 * (len(s) // 4)):.2f} (mean per segment)")
    print("voice: the bundled Piper voice patched (CPU user/system s, minor faults)")
    for r in range(args.rounds):
        for case in ("whole", "splice"):
            u, s, f, size = run(VOICE, case)
            print(f"  round {r + 1} {case:7s} {u:.2f}/{s:.2f} s  {int(f):7d} faults  ({size / 1e6:.1f} MB model)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
