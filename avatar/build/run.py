"""Executors: run scene plans whose segments are not cached yet.

    infos, rendered = run(plans, cache, jobs=None)     # None: as many processes as cores and memory allow

Workers receive plans (JSON), never the whole presentation; identical plans run once.
Serial, a local process pool and (avatar.build.ray_executor) Ray tasks execute the same plans.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator

from avatar.build.cache import SceneCache
from avatar.build.plan import ScenePlan
from avatar.build.scene import SceneInfo, execute, plan_narration
from avatar.errors import AvatarError
from avatar.files import remove_pending
from avatar.progress import ProgressCallback, report

SCENE_MEMORY = 950 * 2 ** 20    # peak memory of one scene worker (850-950 MB at 1080p, bench/bench_speed.py)
HEADROOM = 2 ** 30              # memory left to the parent process and everything else


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
    by_memory = max(1, (mem - HEADROOM) // SCENE_MEMORY) if mem else available_cores()
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


NARRATION_THREAD = "avatar-narration"   # NarrationAhead's helper (avatar.cli ends at once while it runs)


class NarrationAhead:
    """Serial rendering: each scene's narration is synthesised one scene ahead, in a helper
    thread, so Piper runs while the previous scene renders and encodes (the cores x264 leaves
    idle) instead of before its own frames. The same Speech as synthesised in execute().

        ahead = NarrationAhead(plans)
        speech = ahead.take(i)     # plans[i]'s narration; starts plans[i + 1]'s
        ahead.close()
    """

    def __init__(self, plans: list[ScenePlan], make=None):
        from avatar.build.scene import plan_narration

        self.plans, self.make = plans, make or plan_narration
        self.futures: dict = {}
        self.closed = False

    def _start(self, i: int) -> None:
        """Synthesise plans[i]'s narration in a daemon thread: an interrupted or failed run exits
        without waiting for a long narration nobody will use."""
        import threading
        from concurrent.futures import Future

        if self.closed or i >= len(self.plans) or i in self.futures:
            return
        fut: Future = Future()

        def work(plan=self.plans[i]) -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(self.make(plan))
                except BaseException as e:   # raised in take(), in the rendering thread
                    fut.set_exception(e)

        self.futures[i] = fut
        threading.Thread(target=work, name=NARRATION_THREAD, daemon=True).start()

    def take(self, i: int):
        """plans[i]'s narration (its errors are raised here); then the next one is started. One not
        started ahead (the first) is made in the calling thread: loading a voice there can store
        it (avatar.speech.model_store writes from the main thread only)."""
        if i not in self.futures:
            try:
                return self.make(self.plans[i])
            finally:
                self._start(i + 1)
        try:
            return self.futures.pop(i).result()
        finally:
            self._start(i + 1)

    def close(self) -> None:
        """Stop: nothing more is started; a narration still running ends unused."""
        self.closed = True
        self.futures.clear()


def render_plan(plan_json: str, cache_root: str) -> dict:
    """Worker entry point: one plan (JSON) -> its segment in the cache. Returns SceneInfo as a dict.
    In a worker_pool(..., queue) worker, the scene's audio track goes on that queue as soon as
    its narration is made: ("audio", key, SceneInfo dict, segment_audio bytes, frames)."""
    plan = ScenePlan.from_json(plan_json)
    cache = SceneCache(cache_root)
    with _worker_task(plan.key):   # an import takes time: it is inside
        publish = _publisher(plan) if _to_parent else None
        return cache.put(plan, lambda tmp: execute(plan, tmp, identities=cache.identities,
                                                   on_narration=publish, voices=cache.voices)).to_dict()


def prepare_plan_voices(plan_jsons: list[str], cache_root: str) -> None:
    """Worker entry point: prepare_voices() for these plans (JSON) into the cache's store, in a
    scene worker's main thread, so the other workers load the voices instead of preparing them
    too; this worker keeps them loaded for its own scenes."""
    with _worker_task("voices"):
        prepare_voices([ScenePlan.from_json(j) for j in plan_jsons], SceneCache(cache_root).voices)


@contextlib.contextmanager
def _worker_task(name: str) -> Iterator[None]:
    """A worker's task: from here on a signal unwinds (the temporary files are removed on the
    way), and then the worker ends, never taking the next queued task."""
    _busy.append(name)
    try:
        yield
    except KeyboardInterrupt as e:   # SIGINT/SIGTERM: the temporary files are gone (finally blocks ran;
        remove_pending()             # remove_pending: those of a writer the signal caught as it began)
        os._exit(getattr(e, "exit_code", 130))
    finally:
        _busy.clear()
        if _signalled:   # a library turned the signal into its own error (an extension module that
            remove_pending()   # was being imported: "initialization failed"): end all the same
            os._exit(128 + _signalled[0])


def _publisher(plan: ScenePlan):
    """execute()'s on_narration in a worker: the scene's audio track onto worker_pool's queue."""
    from avatar.video.mp4 import segment_audio

    def publish(info: SceneInfo, speech) -> None:
        track, frames = segment_audio(speech.audio, speech.sample_rate, info.frames, plan.presentation().fps)
        _to_parent[0].put(("audio", plan.key, info.to_dict(), track, frames))
    return publish


_busy: list[str] = []   # in a worker: the scene it is rendering now
_signalled: list[int] = []   # in a worker: the signals received (it ends after unwinding its scene)
_to_parent: list = []   # in a worker: the queue for its scenes' audio and its warnings (worker_pool's `queue`), if any


def _on_signal(signum, frame) -> None:
    """In a worker: while rendering, unwind (temporary files removed); idle, just end. A second
    signal while it unwinds from the first is ignored (Ctrl-C reaches the workers from the
    terminal, and the render's SIGTERM follows: raised inside the unwinding, e.g. in an import's
    clean-up, it printed a traceback); the render kills a worker that does not end in 10 s."""
    from avatar.errors import Interrupted

    if not _busy:
        remove_pending()
        os._exit(128 + signum)
    if _signalled:
        return
    _signalled.append(signum)
    raise Interrupted(signum)


def _watch_parent(pid: int, start: int | None) -> None:
    """In a worker: SIGTERM to itself once the rendering process is gone (killed with -9), so an
    orphan never goes on rendering the scenes still queued."""
    import signal
    import time

    from avatar.files import process_start

    while process_start(pid) == start and (start is not None or _alive(pid)):
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def configure_worker() -> None:
    """A process that renders one scene beside others: no thread pools fighting over the same cores,
    freed memory kept for the next scene (avatar.build.memory), and its warnings (a stored photo
    rebuilt, several faces in a photo) printed as one line like the command line prints its own,
    not with Python's file name and source line."""
    import sys
    import warnings

    import cv2

    from avatar.build.memory import keep_freed_memory

    cv2.setNumThreads(1)
    keep_freed_memory()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if _to_parent:   # the parent prints it, once for all its workers (each measures the same photo)
            _to_parent[0].put(("warning", text))
        else:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    warnings.showwarning = show


def _init_worker(parent: int, parent_start: int | None, queue=None) -> None:
    import signal
    import threading

    configure_worker()
    if queue is not None:
        _to_parent.append(queue)
    for s in (signal.SIGTERM, signal.SIGINT):   # stopped by the parent or Ctrl-C: unwind, removing temporary files
        signal.signal(s, _on_signal)
    threading.Thread(target=_watch_parent, args=(parent, parent_start), daemon=True).start()


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """SIGTERM to every worker (each removes its temporary files and exits), then wait for them.
    Python 3.11's pool has no public way to stop running tasks, hence the private `_processes`;
    multiprocessing's own list adds a worker being started right now (a signal landing inside
    submit(), between its start and its registration in the pool: left running, it failed with a
    traceback once this process had gone)."""
    import multiprocessing

    procs = set((getattr(ex, "_processes", None) or {}).values()) | set(multiprocessing.active_children())
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():   # not ended by SIGTERM (still starting up, or stuck in native code)
            p.kill()
            p.join(timeout=5)
    _stop_forkserver()   # last: the pool learns that a worker ended through the forkserver


# What a scene imports (avatar.build.scene's lazy imports and the libraries they import inside
# functions), imported once by the forkserver that the scene workers fork from
# (avatar.build.forkserver_preload); the workers share those pages. Not mediapipe (1.1 s more:
# only the worker that measures a new photo needs it). No threads start there:
# OPENBLAS_NUM_THREADS=1 is set before the forkserver imports numpy.
SCENE_MODULES = (
    "numpy", "cv2", "av", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont",
    "scipy.ndimage", "scipy.spatial", "onnxruntime", "piper.voice",
    "avatar.build.scene", "avatar.captions", "avatar.compose", "avatar.motion",
    "avatar.renderers.warp", "avatar.renderers.mouth", "avatar.video.mp4", "avatar.video.tags",
    "avatar.speech.narrate", "avatar.speech.piper_voice", "avatar.face.store", "avatar.face.reenact",
)
# the forkserver's preload: '__main__' is multiprocessing's own default (the parent's script)
WORKER_PRELOAD = ("__main__", "avatar.build.forkserver_preload")


def _stop_forkserver() -> None:
    """SIGTERM to the forkserver (multiprocessing starts a new one when a pool needs it again).
    One still importing its preload (Ctrl-C in a render's first second) served the pool's
    requests for workers after this process had given up and ended: the worker it forked then
    found the pool's lock gone and printed a FileNotFoundError traceback under the command's
    "interrupted" line. Only once the workers have ended: a worker's end reaches the pool through
    the forkserver, and with it gone the pool took its workers for ended while they were still
    removing their temporary files. No public API names the forkserver, hence the private pid."""
    import signal
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


@contextlib.contextmanager
def worker_pool(workers: int, queue=None) -> Iterator[ProcessPoolExecutor]:
    """A forkserver process pool of scene workers; on any failure or interruption every worker is
    stopped (no Future.cancel(): a broken pool then fails on cancelled futures). queue: a
    multiprocessing SimpleQueue of the forkserver context that receives each scene's audio
    track once its narration is made (render_plan) and the workers' warnings (_from_workers);
    without one, workers print their warnings themselves."""
    import multiprocessing

    from avatar.files import process_start

    # numpy's OpenBLAS threads spin between the small per-frame solves (system time, no gain):
    # one thread per worker, set before the forkserver starts and the workers import numpy
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _quiet_resource_tracker()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    me = os.getpid()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(me, process_start(me), queue)) as ex:
        try:
            yield ex
        except BaseException:
            _stop_workers(ex)
            raise


TRACKER_WARNING = "ignore:resource_tracker:UserWarning"   # a -W filter (see _quiet_resource_tracker)


def _quiet_resource_tracker() -> None:
    """multiprocessing's resource tracker (a process of its own, started with the pool's first lock)
    removes the locks of a render killed with -9, and then printed Python's two-line warning about
    "leaked semaphore objects" into the terminal after the shell's "Killed". The tracker takes this
    process's -W options (sys.warnoptions) on its command line: an ignore filter for that message
    alone, added before it starts. The locks are still removed."""
    import sys

    if TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNING)


def prepare_voices(plans: list[ScenePlan], store: Path) -> None:
    """Load, in this process, the voices that the plans' narrations need, preparing them into the
    store of prepared voices (avatar.speech.model_store) where they are not there yet, so the
    other scene workers load them from it instead of each preparing them (Piper: about 0.9 s
    of CPU per worker); those that get there first wait on the store's lock meanwhile. The
    voices stay loaded here (narration's own cache), as a scene's narration loads them. A plan
    whose narration is silent or does not parse needs none (its scene reports the error). A
    voice that cannot be loaded fails here, naming the first scene that speaks with it."""
    from avatar.speech import load_voice, markup
    from avatar.speech.narrate import base_dir_of
    from avatar.speech.presets import resolve

    seen = set()
    for plan in plans:
        deck = plan.presentation()
        scene = deck.scenes[0]
        try:
            spoken = markup.speaks(markup.parse(scene.narration))
        except markup.MarkupError:
            continue
        spec, base = deck.voice_for(scene), base_dir_of(deck)
        key = (spec.model_dump_json(), base)
        if not spoken or key in seen:
            continue
        seen.add(key)
        try:
            if resolve(spec, base).engine == "piper":   # only Piper's voices are stored
                load_voice(spec, base, threads=1, store=store)   # as scene_narration() loads it
        except AvatarError as e:   # named like a worker's error (avatar.build.scene.execute)
            raise AvatarError(f"{plan.name}: {e}") from None


def _estimated_seconds(plan: ScenePlan) -> float:
    """The scene's length from its words and pauses (avatar.script.summary), without speech."""
    from avatar.script.summary import summarize

    return summarize(plan.presentation())["duration"]


def run(plans: list[ScenePlan], cache: SceneCache, *, jobs: int | None = None, use_cache: bool = True,
        on_progress: ProgressCallback | None = None, audio=None) -> tuple[list[SceneInfo], int]:
    """Render what is missing; returns (one SceneInfo per plan, in order; number of scenes rendered).
    audio: an avatar.build.assemble.AudioAhead, given every scene's audio as soon as it is known
    (cached scenes at once; with worker processes, each scene once its narration is made, so
    the joined track is encoded while the last scenes render)."""
    cache.prepare()   # in this process, before any worker starts: a cache that cannot be written fails here
    done, todo = pending(plans, cache, use_cache)
    total = len(done) + len(todo)
    cached = f"{len(done)} cached" if done else ""
    report(on_progress, "scenes", len(done), total, cached)
    workers = default_jobs(len(todo)) if jobs is None else max(1, min(jobs, len(todo)))
    if todo and workers > 1:
        import multiprocessing

        _quiet_resource_tracker()   # before the first lock (the queue's) starts the tracker
        queue = multiprocessing.get_context("forkserver").SimpleQueue()
        if audio is not None:
            for key, info in done.items():
                audio.add(key, info, cache.segment(key))
        with _from_workers(queue, audio), worker_pool(workers, queue) as ex:
            # longest first: the last scene to start is a short one, so the workers finish together
            order = sorted(todo, key=lambda k: -_estimated_seconds(todo[k]))
            jsons = {k: p.to_json() for k, p in todo.items()}
            # first the voices, once (the worker that takes it keeps them loaded), then the scenes,
            # whose first steps (the photo measured) overlap it: they wait for a voice being prepared
            futs = {ex.submit(prepare_plan_voices, list(jsons.values()), str(cache.root)): None}
            futs.update({ex.submit(render_plan, jsons[k], str(cache.root)): k for k in order})
            try:
                for f in as_completed(futs):
                    result = f.result()
                    if futs[f] is not None:
                        done[futs[f]] = SceneInfo.from_dict(result)
                        report(on_progress, "scenes", len(done), total, cached)
            except BrokenProcessPool:
                raise AvatarError("a scene worker process ended abruptly (killed, or out of memory)",
                                  hint="finished scenes are cached: run again, with fewer --jobs if memory "
                                       "is short; from a Python script, call avatar.render() under "
                                       "`if __name__ == '__main__':` (worker processes import the script)") from None
    else:
        with contextlib.closing(NarrationAhead(list(todo.values()),
                                               lambda p: plan_narration(p, cache.voices))) as ahead:
            for i, (key, p) in enumerate(todo.items()):
                def frames(n: int, p=p) -> None:
                    report(on_progress, "frames", n, None, p.name)
                done[key] = cache.put(p, lambda tmp, p=p, cb=frames, i=i:
                                      execute(p, tmp, progress=cb, narration=lambda: ahead.take(i),
                                              identities=cache.identities))
                report(on_progress, "scenes", len(done), total, cached)
    return [done[p.key] for p in plans], len(todo)


@contextlib.contextmanager
def _from_workers(queue, audio) -> Iterator[None]:
    """A thread that reads what the scene workers send on `queue` while the block runs (the
    worker pool inside it: every worker has ended when it stops, and what is still queued is
    read first): their scenes' audio tracks, handed to `audio` (an AudioAhead; None: dropped),
    and their warnings, shown here through this process's warnings.showwarning, each text once
    (every worker measures the same photo, and each warned). It polls: nothing is ever written
    to the queue from here, whose lock a killed worker may hold."""
    import sys
    import threading
    import warnings

    stop = threading.Event()
    shown: set[str] = set()

    def read() -> None:
        while True:
            if queue.empty():
                if stop.is_set():
                    return
                stop.wait(0.05)
                continue
            kind, *item = queue.get()
            if kind == "warning" and item[0] not in shown:
                shown.add(item[0])
                if warnings.showwarning is getattr(warnings, "_showwarning_orig", None):   # Python's own
                    print(f"warning: {item[0]}", file=sys.stderr, flush=True)   # (the API): as workers printed it
                else:   # the command line's (avatar.clikit.setup_logging)
                    warnings.showwarning(item[0], UserWarning, "", 0)
            elif kind == "audio" and audio is not None:
                key, info, track, frames = item
                audio.add(key, SceneInfo.from_dict(info), track, frames)

    t = threading.Thread(target=read, name="avatar-from-workers", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)


__all__ = ["run", "pending", "render_plan", "worker_pool", "default_jobs", "available_cores", "NarrationAhead"]
