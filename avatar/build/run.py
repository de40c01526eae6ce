"""Executors: run scene plans whose segments are not cached yet.

    infos, rendered = run(plans, cache, jobs=None)     # None: as many processes as cores and memory allow

Workers receive plans (JSON), never the whole presentation; identical plans run once.
Serial, a local process pool and (avatar.build.ray_executor) Ray tasks execute the same plans.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from avatar.build.cache import SceneCache
from avatar.build.plan import ScenePlan
from avatar.build.scene import SceneInfo, execute
from avatar.progress import ProgressCallback, report

SCENE_MEMORY = 800 * 2 ** 20    # peak memory of one scene worker (bench/bench_pipeline.py: ~600 MB at 1080p)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available now (Linux /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_jobs(scenes: int) -> int:
    """Worker processes for `scenes` scenes: one per core, fewer when memory is short."""
    mem = available_memory()
    by_memory = max(1, mem // SCENE_MEMORY) if mem else available_cores()
    return max(1, min(available_cores(), by_memory, scenes))


def pending(plans: list[ScenePlan], cache: SceneCache, use_cache: bool = True
            ) -> tuple[dict[str, SceneInfo], dict[str, ScenePlan]]:
    """(verified cached infos by key, distinct plans still to render by key)."""
    done: dict[str, SceneInfo] = {}
    todo: dict[str, ScenePlan] = {}
    for p in plans:
        key = p.key
        if key in done or key in todo:
            continue
        info = cache.get(key) if use_cache else None
        if info is not None:
            done[key] = info
        else:
            todo[key] = p
    return done, todo


def render_plan(plan_json: str, cache_root: str) -> dict:
    """Worker entry point: one plan (JSON) -> its segment in the cache. Returns SceneInfo as a dict."""
    plan = ScenePlan.from_json(plan_json)
    cache = SceneCache(cache_root)
    return cache.put(plan, lambda tmp: execute(plan, tmp)).to_dict()


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)   # one scene per core: no thread pools fighting over the same cores


def run(plans: list[ScenePlan], cache: SceneCache, *, jobs: int | None = None, use_cache: bool = True,
        on_progress: ProgressCallback | None = None) -> tuple[list[SceneInfo], int]:
    """Render what is missing; returns (one SceneInfo per plan, in order; number of scenes rendered)."""
    cache.clean()   # temporary files of killed runs
    done, todo = pending(plans, cache, use_cache)
    total = len(done) + len(todo)
    cached = f"{len(done)} cached" if done else ""
    report(on_progress, "scenes", len(done), total, cached)
    workers = default_jobs(len(todo)) if jobs is None else max(1, min(jobs, len(todo)))
    if todo and workers > 1:
        import multiprocessing

        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as ex:
            futs = {ex.submit(render_plan, p.to_json(), str(cache.root)): k for k, p in todo.items()}
            try:
                for f in as_completed(futs):
                    done[futs[f]] = SceneInfo.from_dict(f.result())
                    report(on_progress, "scenes", len(done), total, cached)
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
    else:
        for key, p in todo.items():
            def frames(i: int, p=p) -> None:
                report(on_progress, "frames", i, None, p.name)
            done[key] = cache.put(p, lambda tmp, p=p, cb=frames: execute(p, tmp, progress=cb))
            report(on_progress, "scenes", len(done), total, cached)
    return [done[p.key] for p in plans], len(todo)


__all__ = ["run", "pending", "render_plan", "default_jobs", "available_cores", "Path"]
