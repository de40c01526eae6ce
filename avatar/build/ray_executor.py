"""Ray executor for a batch: one task per distinct scene plan, one join task per row depending on them.

    run_batch(scenes, rows, cache_root, address=None, num_cpus=None, on_scene=..., on_row=...)

The tasks run avatar.build.batch.render_scene (avatar.build.run.render_plan inside) and
avatar.build.batch.join_row: the same bodies as the local pool, on the same plans. Segments
travel through the cache folder, not the object store, so on a cluster the cache folder,
the OUTDIR and every input file (photos, logos, voices) must be on storage all nodes share,
at the same path. A task whose worker dies (node lost, out of memory) is retried
(`retries`); a scene that fails with an error is not retried: it fails its rows, reported.

`ray` is imported only here (extra [cluster]: pip install 'avatar-presenter[cluster]').
"""
from __future__ import annotations

import logging
from typing import Callable

from avatar.errors import AvatarError


def _ray():
    try:
        import ray
    except ImportError:
        raise AvatarError("--ray needs Ray", hint="pip install 'avatar-presenter[cluster]'") from None
    return ray


def _scene_task(plan_json: str, cache_root: str) -> dict:
    from avatar.build.batch import render_scene
    from avatar.build.run import configure_worker

    configure_worker()
    return render_scene(plan_json, cache_root)


def _join_task(job: dict, cache_root: str, *scenes: dict) -> dict:
    from avatar.build.batch import join_row

    return join_row(job, cache_root, *scenes)


def _error(e: BaseException) -> dict:
    cause = getattr(e, "cause", None) or e          # RayTaskError wraps the task's own exception
    return {"error": " ".join(f"{type(cause).__name__}: {cause}".split())[:500], "seconds": 0.0}


def run_batch(scenes: dict[str, str], rows: list[tuple[object, dict, list[str]]], cache_root: str, *,
              address: str | None = None, num_cpus: int | None = None, retries: int = 3,
              on_scene: Callable[[str, dict], None], on_row: Callable[[object, dict], None]) -> None:
    """scenes: key -> plan JSON (the distinct plans to render); rows: (handle, job dict for join_row,
    the keys of `scenes` the row needs). Calls on_scene(key, result) and on_row(handle, result) in
    this process as tasks finish. Starts Ray here (num_cpus) unless it is running or `address` is given."""
    ray = _ray()
    started = False
    if not ray.is_initialized():
        kw = {"address": address} if address else {"num_cpus": num_cpus, "object_store_memory": 128 * 2 ** 20}
        try:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False, **kw)
        except Exception as e:
            raise AvatarError(f"cannot start Ray: {' '.join(str(e).split())[:300]}",
                              field="--ray-address" if address else "--ray") from None
        started = True
    try:
        scene = ray.remote(num_cpus=1, max_retries=retries)(_scene_task)
        join = ray.remote(num_cpus=1, max_retries=retries)(_join_task)
        refs = {k: scene.remote(p, cache_root) for k, p in scenes.items()}
        waiting: dict = {ref: ("scene", k) for k, ref in refs.items()}
        for handle, job, needed in rows:
            waiting[join.remote(job, cache_root, *[refs[k] for k in needed])] = ("row", handle)
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1)
            for ref in ready:
                kind, what = waiting.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:   # the task failed after its retries
                    result = _error(e)
                (on_scene if kind == "scene" else on_row)(what, result)
    finally:
        if started:
            ray.shutdown()


__all__ = ["run_batch"]
