"""Benchmark of `avatar batch`: videos per hour, local pool vs Ray on one machine, and what de-duplication saves.

The template has 3 scenes: scene 1 is personalised ("Hi {{name}}, welcome to {{company}}"),
scenes 2 and 3 are the same for every row. Each measurement starts from an empty cache.

Prints, with the machine:
  - local pool (the default executor, de-duplicated): wall seconds, videos per hour
    (after a warm-up batch; each executor runs --repeat times, interleaved, the fastest kept)
  - Ray on this machine (ray.init(num_cpus=JOBS), timed apart) running the same batch
  - no de-duplication: the same process pool rendering every row's 3 scenes and joining them
    (what rendering the rows one by one costs); the speed-up from de-duplication
  - the per-scene costs measured in the workers (personalised scene, shared scene, join) and the
    throughput model for N Ray workers built from them (README, "Batch")

Usage: python bench/bench_batch.py [--rows 4] [--size 1280x720] [--fps 25] [--jobs 0 (one per core)]
       [--repeat 2] [--no-ray] [--model-rows 1000 --model-machines 10 --model-cores 16]
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = """\
title: "Welcome, {{{{name}}}}"
size: {size}
fps: {fps}
transition: cut
avatar: {{layout: pip, motion: phonemes}}
scenes:
  - slide: {{layout: title, title: "Welcome, {{{{name}}}}", subtitle: "{{{{company}}}}"}}
    narration: Hi {{{{name}}}}, and welcome to {{{{company}}}}. I am glad you are joining us this week.
  - slide: {{layout: bullets, title: Your first week, bullets: [Meet your team, Set up your laptop, Read the guide]}}
    narration: In your first week you will meet your team, set up your laptop and read the short guide we wrote.
  - slide: {{layout: title, title: Questions?, subtitle: We are here to help}}
    narration: If anything is unclear, ask us at any time. We are looking forward to working with you.
"""
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella"]


def machine() -> str:
    from avatar.build.run import available_cores

    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{platform.system()} {platform.machine()}, {available_cores()} cores available ({model}){load}"


def no_dedup(jobs_rows, jobs: int, root: Path) -> float:
    """Every row's scenes rendered (each row its own cache) and joined: wall seconds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from avatar.build.batch import join_row, render_scene
    from avatar.build.run import _init_worker

    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as ex:
        futs = [(j, [ex.submit(render_scene, p.to_json(), str(root / str(j.row.number))) for p in j.plans])
                for j in jobs_rows]
        for j, fs in futs:
            results = [f.result() for f in fs]
            job = {**j.to_dict(), "out": str(root / "out" / j.out.name)}
            res = join_row(job, str(root / str(j.row.number)), *results)
            if "error" in res or any("error" in r for r in results):
                sys.exit(f"no-dedup render failed: {res}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=0, help="worker processes / Ray CPUs (0: one per core)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each executor (the fastest is kept)")
    ap.add_argument("--model-rows", type=int, default=1000)
    ap.add_argument("--model-machines", type=int, default=10)
    ap.add_argument("--model-cores", type=int, default=16, help="Ray worker slots per machine in the model")
    args = ap.parse_args()

    from avatar.build.batch import batch, prepare
    from avatar.build.run import available_cores

    jobs = args.jobs or available_cores()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    tpl = tmp / "welcome.yaml"
    tpl.write_text(TEMPLATE.format(size=args.size, fps=args.fps))
    rows = tmp / "rows.csv"
    with open(rows, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "company"])
        for i in range(args.rows):
            w.writerow([NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else str(i)), COMPANIES[i % len(COMPANIES)]])
    print(f"machine: {machine()}")
    print(f"batch: {args.rows} rows x 3 scenes (1 personalised), {args.size} @ {args.fps} fps, {jobs} worker(s)")

    # warm-up (libraries into the page cache), then each executor `--repeat` times from an empty cache, best kept
    small = tmp / "warm.yaml"
    small.write_text(TEMPLATE.format(size="160x90", fps=8))
    batch(small, rows, tmp / "warm", cache_dir=tmp / "cache-warm", jobs=jobs)
    vph = lambda s: 3600 * args.rows / s   # noqa: E731
    best: dict[str, float] = {}
    local = on_ray = None
    jobs_rows, _ = prepare(tpl, rows, tmp / "local")
    ray = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray          skipped: Ray is not installed (pip install 'avatar-presenter[cluster]')")
    for rep in range(args.repeat):
        r = batch(tpl, rows, tmp / f"local{rep}", cache_dir=tmp / f"cache-local{rep}", jobs=jobs)
        assert not r.failed, r.failed
        if local is None or r.seconds < local.seconds:
            local = r
        if ray is not None:
            t0 = time.perf_counter()
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 2 ** 20)
            best["ray.init"] = min(best.get("ray.init", 1e9), time.perf_counter() - t0)
            try:
                r = batch(tpl, rows, tmp / f"ray{rep}", cache_dir=tmp / f"cache-ray{rep}", executor="ray")
            finally:
                ray.shutdown()
            assert not r.failed, r.failed
            if on_ray is None or r.seconds < on_ray.seconds:
                on_ray = r
        best["plain"] = min(best.get("plain", 1e9), no_dedup(jobs_rows, jobs, tmp / f"nodedup{rep}"))
    print(f"local pool   {local.seconds:7.1f} s  {vph(local.seconds):7.0f} videos/hour  "
          f"(scenes rendered {local.scenes_rendered} of {local.scenes_requested} requested)")
    if on_ray is not None:
        print(f"ray (1 node) {on_ray.seconds:7.1f} s  {vph(on_ray.seconds):7.0f} videos/hour  "
              f"(+ {best['ray.init']:.1f} s ray.init; ratio to local {on_ray.seconds / local.seconds:.2f})")
    plain = best["plain"]
    print(f"no dedup     {plain:7.1f} s  {vph(plain):7.0f} videos/hour  "
          f"(scenes rendered {3 * args.rows}); de-duplication speed-up {plain / local.seconds:.2f}x")

    personal = {j.plans[0].key for j in jobs_rows}
    # medians: each worker's first scene also loads the voice and the face models
    t_p = statistics.median(s for k, s in local.scene_seconds.items() if k in personal)
    t_s = statistics.median(s for k, s in local.scene_seconds.items() if k not in personal)
    t_j = statistics.median(local.join_seconds.values())
    print(f"per scene (worker seconds, local run, median): personalised {t_p:.1f} s, shared {t_s:.1f} s, "
          f"join {t_j:.2f} s")
    R, M, C = args.model_rows, args.model_machines, args.model_cores
    W = M * C
    cpu = R * (t_p + t_j) + 2 * t_s
    wall = cpu / W + t_p + t_s   # + one scene of start-up/tail (the last tasks, the shared scenes first)
    print(f"model: {R} rows on {M} machines x {C} slots = {W} workers: {cpu / 3600:.1f} CPU-hours, "
          f"~{wall / 60:.1f} min wall, ~{3600 * R / wall:.0f} videos/hour "
          f"(without dedup {R * (t_p + 2 * t_s + t_j) / 3600:.1f} CPU-hours)")
    print(f"(temporary files in {tmp}; remove them when done)")


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    main()
