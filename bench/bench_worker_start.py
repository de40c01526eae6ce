"""What starting the scene workers of a parallel render costs, with and without the forkserver's preload.

    python bench/bench_worker_start.py [--rounds 5] [--workers 2]

Each case in a fresh process of its own, the cases alternated --rounds times: a worker pool of
avatar.build.run.worker_pool (the one a render uses), one task per worker that imports what a
scene imports (avatar.build.run.SCENE_MODULES). "none": the forkserver preloads only
'__main__' (multiprocessing's default, what the render did before), so each worker imports them
itself; "preload": avatar.build.run.WORKER_PRELOAD (avatar.build.forkserver_preload imports them
once in the forkserver), the workers forked from it. Prints the CPU seconds (user + system) of the parent, the forkserver and the workers, their
sum, and the workers' minor page faults. Prints the machine and its load average.
"""
from __future__ import annotations

import argparse
import statistics

from bench_fresh_memory import machine, run   # each case in a fresh process; the machine line

CHILD = r"""
import json, multiprocessing.forkserver as fs, os, resource, sys
import avatar.build.run as run

CODE = ("(lambda r: [__import__('os').getpid(), r.ru_utime + r.ru_stime, r.ru_minflt])"
        "(([__import__(m) for m in %r], __import__('time').sleep(0.3),"
        " __import__('resource').getrusage(__import__('resource').RUSAGE_SELF))[2])")

def cpu_of(pid):   # user + system seconds of a live process
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

if __name__ == "__main__":
    mods = list(run.SCENE_MODULES)
    if sys.argv[1] == "none":
        run.WORKER_PRELOAD = ("__main__",)
    n = int(sys.argv[2])
    with run.worker_pool(n) as ex:
        got = [f.result() for f in [ex.submit(eval, CODE % (mods,)) for _ in range(n)]]
        server = cpu_of(fs._forkserver._forkserver_pid)
    assert len({g[0] for g in got}) == n, "a worker ran two tasks: raise the sleep"
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"parent": me.ru_utime + me.ru_stime, "forkserver": server,
                      "workers": [g[1] for g in got], "faults": [g[2] for g in got]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(machine())
    print(f"{args.workers} scene workers started, each importing what a scene imports (CPU s, user + system)")
    totals: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for case in ("none", "preload"):
            d = run(CHILD, case, str(args.workers))
            total = d["parent"] + d["forkserver"] + sum(d["workers"])
            totals.setdefault(case, []).append(total)
            print(f"  round {r + 1} {case:8s} parent {d['parent']:.2f}  forkserver {d['forkserver']:.2f}  "
                  f"workers {' '.join(f'{w:.2f}' for w in d['workers'])}  total {total:.2f}  "
                  f"worker faults {' '.join(str(f) for f in d['faults'])}")
    for case, t in totals.items():
        print(f"  {case:8s} total CPU s: median {statistics.median(t):.2f} (min {min(t):.2f}, max {max(t):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
