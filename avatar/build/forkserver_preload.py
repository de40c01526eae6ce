"""Imported by the forkserver that the scene workers fork from (avatar.build.run.worker_pool, its
only user: importing it anywhere else makes that process ignore Ctrl-C).

It imports once what a scene imports (avatar.build.run.SCENE_MODULES), and each worker forked
from the forkserver starts with them instead of importing them itself (about 0.5 CPU s and
16,000 page faults a worker, bench/bench_worker_start.py).

SIGINT is ignored first: the forkserver is in the command's process group, so a Ctrl-C reaches
it too, and multiprocessing makes it ignore SIGINT only after its preload; one landing during
these imports printed a KeyboardInterrupt traceback under the command's own "interrupted" line.
The workers inherit the ignored SIGINT until they install their own handler
(avatar.build.run._init_worker); the command stops them itself. A module that fails to import
is skipped: the worker that needs it imports it again and reports the error as it did before.
"""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)


def _preload() -> None:
    import importlib

    from avatar.build.run import SCENE_MODULES

    for name in SCENE_MODULES:
        try:
            importlib.import_module(name)
        except Exception:   # noqa: BLE001 -- see the module's docstring
            pass


_preload()
