"""Render/encode ratio: `avatar demo` on an empty cache against re-encoding its own output.

    python bench/bench_speed.py [--size 1920x1080] [--runs 2] [--tree DIR] [--env NAME=VALUE ...]

Each paired run renders the built-in demo into a fresh, empty cache (AVATAR_CACHE) and
then re-encodes that output with the ffmpeg command line at the renderer's own settings:

    ffmpeg -i demo.mp4 -c:v libx264 -preset veryfast -crf 23 -c:a aac re.mp4

The figure is (render wall time) / (re-encode wall time), the median over the paired
runs (both halves of a pair run back to back, so a busy machine weighs on both). It also
prints the CPU seconds of all the render's processes (and their system time), the largest
peak RSS among its scene workers, the render's own CPU user and system seconds, page faults,
context switches and peak RSS (from the child's rusage), the machine's cores and load average, and the md5 of the
demo's decoded video frames (same script, same frames: the speed work must not change it).

Then a breakdown that shows the floor on this machine (--no-breakdown skips it):
  piper   synthesising the demo's narration alone (every scene, one process, voice loaded first)
  x264    encoding the demo's frames alone, from raw yuv420p frames on disk, with write_mp4's own
          stream (libx264 veryfast, crf 23, threads auto, frame threads): the render cannot
          beat this; also with sliced threads and with the ffmpeg command line, for comparison
  decode  decoding demo.mp4 alone (the re-encode reference decodes, then runs x264)
  rest    render - x264 - piper: frames (motion, warp renderer, composition), MediaPipe, process
          start, imports, assembly (concat, loudness), when none of it overlaps x264 or Piper
and the ratios reachable if only x264 (+ Piper, not overlapped) were left.

--tree runs another source tree's code (e.g. an older commit unpacked with `git archive`),
--env sets variables for the render only (thread-count hypotheses: OMP_NUM_THREADS=1 ...).
Needs the ffmpeg command line (Debian: apt-get install ffmpeg).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac"]


def _tree_cpu(root: int, seen: dict[int, tuple[float, float, float]]) -> None:
    """Record user/system seconds and peak RSS (MB) of root and every process below it (from
    /proc; Linux only). The scene workers are children of a forkserver nobody waits for, so the
    root's rusage leaves them out: sampling them is how their CPU time is counted."""
    tick = os.sysconf("SC_CLK_TCK")
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(d)] = (int(f[1]), float(f[11]) / tick, float(f[12]) / tick)
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, (pp, _, _) in parents.items() if pp in tree and pid not in tree}
        tree |= new
        grew = bool(new)
    for pid in tree:
        if pid in parents:
            try:
                hwm = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmHWM:"))
            except (OSError, StopIteration):
                hwm = seen.get(pid, (0, 0, 0.0))[2]
            seen[pid] = (*parents[pid][1:], hwm)


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run cmd; wall seconds and the child's rusage (user, sys, faults, switches, peak RSS),
    and the CPU seconds of its whole process tree ("tree_cpu", sampled every 0.1 s)."""
    import threading

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: dict[int, tuple[float, float, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            if os.path.isdir("/proc"):
                _tree_cpu(p.pid, seen)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = p.stdout.read()
    stop.set()
    sampler.join()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{out.decode(errors='replace')[-2000:]}")
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "major_faults": ru.ru_majflt,
            "minor_faults": ru.ru_minflt, "voluntary_switches": ru.ru_nvcsw, "involuntary_switches": ru.ru_nivcsw,
            "peak_rss_mb": ru.ru_maxrss / 1024,
            # the root's own time from its rusage (exact); the others' as last sampled
            "tree_cpu": ru.ru_utime + ru.ru_stime + sum(u + s for pid, (u, s, _) in seen.items() if pid != p.pid),
            "tree_sys": ru.ru_stime + sum(s for pid, (_, s, _) in seen.items() if pid != p.pid),
            "child_peak_mb": max((m for pid, (_, _, m) in seen.items() if pid != p.pid), default=0.0)}


def frames_md5(path: Path) -> str:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "md5", "-"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().removeprefix("MD5=")


PIPER = """
import sys, time
t0 = time.perf_counter()
from avatar.api import plan
from avatar.build.scene import scene_narration
from avatar.resources import templates_dir
plans = plan(templates_dir() / "demo.yaml", size=sys.argv[1])
decks = [p.presentation() for p in plans]
scene_narration(decks[0], decks[0].scenes[0])   # loads the voice and warms onnxruntime: then every scene
t1 = time.perf_counter()
seconds = sum(scene_narration(d, d.scenes[0]).duration for d in decks)
print(f"{t1 - t0:.3f} {time.perf_counter() - t1:.3f} {seconds:.2f}")
"""


def x264_alone(raw: Path, w: int, h: int, fps: str, out: Path, thread_type: str | None = None) -> float:
    """Wall seconds of encoding raw yuv420p frames with write_mp4's own H.264 stream (this tree's
    avatar.video.mp4.add_video_stream); thread_type e.g. "SLICE" to try another x264 threading."""
    import av
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from avatar.video.mp4 import _video_frame, add_video_stream

    size = w * h * 3 // 2
    t0 = time.perf_counter()
    with av.open(str(out), "w", format="mp4") as c, open(raw, "rb") as f:
        vs = add_video_stream(c, w, h, Fraction(fps))
        if thread_type:
            vs.codec_context.thread_type = thread_type
        i = 0
        while len(buf := f.read(size)) == size:
            vf = _video_frame(np.frombuffer(buf, np.uint8).reshape(h * 3 // 2, w))   # as write_mp4 makes them
            vf.pts = i
            c.mux(vs.encode(vf))
            i += 1
        c.mux(vs.encode(None))
    return time.perf_counter() - t0


def breakdown(demo: Path, tmp: Path, tree: Path, size: str, render: float, encode: float) -> None:
    """Print what the floor is: Piper alone, x264 alone (from raw frames), decoding alone."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, "-c", PIPER, size], cwd=tmp, env=env, capture_output=True, text=True)
    if p.returncode:
        print(f"breakdown: Piper timing failed: {p.stderr.strip()[-300:]}")
        return
    load, piper, spoken = map(float, p.stdout.split())
    w, h = (int(x) for x in subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", str(demo)], check=True, capture_output=True, text=True).stdout.strip().split(","))
    fps = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate",
                          "-of", "csv=p=0", str(demo)], check=True, capture_output=True, text=True).stdout.strip()
    raw = tmp / "frames.yuv"
    try:
        subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(demo), "-f", "rawvideo", "-pix_fmt", "yuv420p",
                        str(raw)], check=True)
        src = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-r", fps, "-i", str(raw)]
        read = timed(["ffmpeg", "-y", "-v", "error", *src, "-f", "null", "-"], tmp)["wall"]
        x264 = x264_alone(raw, w, h, fps, tmp / "x264.mp4")
        x264_other = x264_alone(raw, w, h, fps, tmp / "x264s.mp4", thread_type="SLICE")
        cli = timed(["ffmpeg", "-y", "-v", "error", *src, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                     "-pix_fmt", "yuv420p", str(tmp / "x264c.mp4")], tmp)["wall"]
    finally:
        raw.unlink(missing_ok=True)
    decode = timed(["ffmpeg", "-v", "error", "-i", str(demo), "-f", "null", "-"], tmp)["wall"]
    # every scene cached: start-up, planning and the join alone (the join runs after the last scene)
    again = timed([sys.executable, "-m", "avatar.cli", "demo", "--size", size, "-o", str(tmp / "again.mp4")], tmp,
                  {**env, "AVATAR_CACHE": str(tmp / "cache0")})["wall"]
    rest = render - x264 - piper
    print(f"breakdown (one run each, {len(os.sched_getaffinity(0))} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print(f"  piper  {piper:5.1f} s  narration synthesis alone ({spoken:.1f} s of speech; voice load "
          f"+ first scene {load:.1f} s)")
    print(f"  x264   {x264:5.1f} s  encoding the {w}x{h} frames alone from raw yuv420p with write_mp4's stream "
          f"(x264 frame threads; reading the raw file alone {read:.1f} s)")
    print(f"         {x264_other:5.1f} s  the same with x264 sliced threads (PyAV's default; another encoded stream); "
          f"{cli:.1f} s with the ffmpeg command line (frame threads)")
    print(f"  decode {decode:5.1f} s  decoding demo.mp4 alone (the re-encode = decode + x264: {encode:.1f} s)")
    print(f"  rest   {rest:5.1f} s  render ({render:.1f} s) - x264 - piper")
    print(f"  cached {again:5.1f} s  the same command with every scene cached: start-up, planning and the join "
          f"(the part that runs after the last scene)")
    print(f"  reachable ratio: {x264 / encode:.2f} with x264 alone, {(x264 + piper) / encode:.2f} "
          f"with Piper not overlapped; now {render / encode:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--runs", type=int, default=2, help="paired runs (the figure is their median)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree whose avatar package runs")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set for the render only")
    ap.add_argument("--keep", type=Path, default=None, help="copy the first run's demo.mp4 here")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the Piper / x264 / decode breakdown")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("the ffmpeg command line is needed for the re-encode reference (Debian: apt-get install ffmpeg)")
    tree = args.tree.resolve()
    if not (tree / "avatar" / "cli.py").is_file():
        sys.exit(f"{tree} holds no avatar package (avatar/cli.py)")
    extra = dict(e.split("=", 1) for e in args.env)
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs ({cores} usable), "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"tree: {tree}; render env: {extra or '-'}; size {args.size}; {args.runs} paired run(s)")
    pairs = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        tmp = Path(tmp)
        where = subprocess.run([sys.executable, "-c", "import avatar.cli; print(avatar.cli.__file__)"], cwd=tmp,
                               env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        print(f"code: {where.stdout.strip() or where.stderr.strip()[-200:]}")
        jobs = subprocess.run([sys.executable, "-c", "from avatar.build.run import default_jobs; print(default_jobs(99))"],
                              cwd=tmp, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        print(f"scene processes by default now (cores, available memory): {jobs.stdout.strip() or '?'}")
        for i in range(args.runs):
            cache, demo, re = tmp / f"cache{i}", tmp / f"demo{i}.mp4", tmp / f"re{i}.mp4"
            env = {**os.environ, "PYTHONPATH": str(tree), "AVATAR_CACHE": str(cache), **extra}
            # cwd tmp: `-m` puts the working folder first on sys.path, ahead of PYTHONPATH's tree
            render = timed([sys.executable, "-m", "avatar.cli", "demo", "--size", args.size, "-o", str(demo)], tmp, env)
            encode = timed(["ffmpeg", "-y", "-v", "error", "-i", str(demo), *REENCODE, str(re)], tmp)
            md5 = frames_md5(demo)
            pairs.append((render, encode, md5))
            print(f"run {i + 1}: render {render['wall']:.1f} s (CPU of all its processes {render['tree_cpu']:.1f} s, "
                  f"{render['tree_sys']:.1f} s of it system time, largest peak RSS of a process below it "
                  f"{render['child_peak_mb']:.0f} MB; "
                  f"its own rusage: user {render['user']:.1f} s, sys {render['sys']:.1f} s, "
                  f"minor faults {render['minor_faults']}, major {render['major_faults']}, "
                  f"switches {render['voluntary_switches']} voluntary / {render['involuntary_switches']} involuntary, "
                  f"peak RSS {render['peak_rss_mb']:.0f} MB); re-encode {encode['wall']:.1f} s "
                  f"(CPU {encode['tree_cpu']:.1f} s); ratio {render['wall'] / encode['wall']:.2f}; "
                  f"frames md5 {md5}", flush=True)
            if i == 0 and args.keep:
                shutil.copyfile(demo, args.keep)
        med = statistics.median
        if not args.no_breakdown:
            breakdown(tmp / "demo0.mp4", tmp, tree, args.size, med(p[0]["wall"] for p in pairs),
                      med(p[1]["wall"] for p in pairs))
    r, e = med(p[0]["wall"] for p in pairs), med(p[1]["wall"] for p in pairs)
    ratio = med(p[0]["wall"] / p[1]["wall"] for p in pairs)
    md5s = sorted({p[2] for p in pairs})
    print(f"median: render {r:.1f} s, re-encode {e:.1f} s, render CPU {med(p[0]['tree_cpu'] for p in pairs):.1f} s "
          f"(all its processes), re-encode CPU {med(p[1]['tree_cpu'] for p in pairs):.1f} s, on {cores} cores")
    print(f"CPU ratio (render CPU / re-encode CPU, less sensitive to other load): "
          f"{med(p[0]['tree_cpu'] / p[1]['tree_cpu'] for p in pairs):.2f}")
    print(f"render/encode ratio: {ratio:.2f} (goal <= 1.3); decoded frames md5: {', '.join(md5s)}"
          + ("" if len(md5s) == 1 else "  (runs differ!)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
