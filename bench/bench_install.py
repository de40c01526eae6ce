"""Install weight: venv size and install time of the wheel, and `avatar demo` peak RSS.

    python bench/bench_install.py [--before REF] [--extras train] [--tree DIR] [--overlay DIR] [--no-rss]

For each variant (the working tree's wheel; with --before, the wheel of git commit REF
too, e.g. e5d4095 where torch was a core dependency; with --extras, the working tree's
wheel with those extras): build the wheel (`pip wheel --no-deps`, not timed), make a
fresh venv, time `pip install --no-cache-dir WHEEL` from the package indexes pip is
configured with, `du -s` the venv, then run `avatar demo` (1280x720, empty cache) and
`avatar say --audio ../shared/eval/RD_Radio34_002.wav --motion audio` (the lips network;
--wav gives another recording; skipped, and said so, when there is none) with that venv's
python and packages, and take each one's peak RSS from its rusage. Also says whether
torch ended up in the venv. The commands run the tree's own code (PYTHONPATH=the tree):
the wheels of e5d4095 and its successors ship no templates/ yet, so `avatar demo` cannot
run from the wheel alone; what is imported, and so the memory, is the same.

--overlay DIR: files copied over every tree before its wheel is built (a commit that lacks
a file it needs, e.g. e5d4095 lacks avatar/build/cache.py, which its .gitignore's
`build/` pattern kept out of git). Each venv is deleted once measured.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_WAV = ROOT.parent / "shared" / "eval" / "RD_Radio34_002.wav"


def run(cmd, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(map(str, cmd))}\n{(res.stdout + res.stderr)[-3000:]}")
    return res


def peak_rss_mb(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of cmd, from its rusage (the largest process of its tree)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.decode(errors='replace')[-3000:]}")
    return ru.ru_maxrss / 1024, time.perf_counter() - t0


def source_tree(dest: Path, tree: Path, ref: str | None, overlay: Path | None) -> Path:
    """A clean copy of `tree`'s files (tracked + untracked, not ignored), or of commit `ref`."""
    dest.mkdir(parents=True)
    if ref:
        data = subprocess.run(["git", "-C", str(tree), "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    else:
        files = run(["git", "-C", str(tree), "ls-files", "-co", "--exclude-standard", "-z"]).stdout.split("\0")
        for f in filter(None, files):
            if (tree / f).is_file():
                (dest / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(tree / f, dest / f)
    if overlay:
        shutil.copytree(overlay, dest, dirs_exist_ok=True)
    return dest


def measure(name: str, src: Path, extras: str, tmp: Path, rss: bool, wav: Path | None) -> dict:
    wheels = tmp / f"{name}-wheel"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)])
    wheel = next(wheels.glob("*.whl"))
    venv = tmp / f"{name}-venv"
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    t0 = time.perf_counter()
    run([str(py), "-m", "pip", "install", "--no-cache-dir", "-q", f"{wheel}[{extras}]" if extras else str(wheel)])
    seconds = time.perf_counter() - t0
    kb = int(run(["du", "-sk", str(venv)]).stdout.split()[0])
    has_torch = run([str(py), "-c", "import importlib.util as u; print(u.find_spec('torch') is not None)"]).stdout.strip()
    row = {"variant": name, "wheel": wheel.name, "install_s": seconds, "venv_mb": kb / 1024, "torch": has_torch}
    if rss:
        env = {**os.environ, "PYTHONPATH": str(src), "AVATAR_CACHE": str(tmp / f"{name}-cache")}
        avatar = [str(py), "-m", "avatar.cli"]      # run in tmp: `-m` puts the working folder first on sys.path
        row["demo_rss_mb"], row["demo_s"] = peak_rss_mb([*avatar, "demo", "-o", str(tmp / f"{name}-demo.mp4")], env, tmp)
        if wav is not None:
            row["say_audio_rss_mb"], row["say_audio_s"] = peak_rss_mb(
                [*avatar, "say", "--audio", str(wav), "--motion", "audio", "-o", str(tmp / f"{name}-say.mp4")], env, tmp)
    shutil.rmtree(venv)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REF", help="also measure this git commit's wheel (e.g. e5d4095)")
    ap.add_argument("--extras", default="", help="also measure the working tree's wheel with these extras (e.g. train)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the git working tree to measure")
    ap.add_argument("--overlay", type=Path, default=None, help="files copied over each tree before building")
    ap.add_argument("--wav", type=Path, default=EVAL_WAV, help="recording for the `say --audio` run")
    ap.add_argument("--no-rss", dest="rss", action="store_false", help="skip the demo / say runs")
    args = ap.parse_args()
    pip = run([getattr(sys, "_base_executable", sys.executable), "-m", "pip", "--version"]).stdout.split()[1]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {platform.python_version()}, "
          f"pip {pip} (fresh venvs, --no-cache-dir)")
    wav = args.wav if args.rss and args.wav.is_file() else None
    if args.rss and wav is None:
        print(f"{args.wav} not found (the ../shared/eval folder is missing?): skipping the `say --audio` RSS")
    variants = ([("before", args.before, "")] if args.before else []) + [("after", None, "")]
    if args.extras:
        variants.append((f"after[{args.extras}]", None, args.extras))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        tmp = Path(tmp)
        for name, ref, extras in variants:
            src = source_tree(tmp / f"{name}-src".replace("[", "-").replace("]", ""), args.tree.resolve(), ref,
                              args.overlay)
            row = measure(name.replace("[", "-").replace("]", ""), src, extras, tmp, args.rss, wav)
            row["variant"] = name + (f" ({ref})" if ref else "")
            rows.append(row)
            print("  ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[1]
        print(f"{b['variant']} vs {a['variant']}: venv {b['venv_mb']:.0f} / {a['venv_mb']:.0f} MB "
              f"({b['venv_mb'] / a['venv_mb']:.2f}), install {b['install_s']:.0f} / {a['install_s']:.0f} s "
              f"({b['install_s'] / a['install_s']:.2f})"
              + (f", demo peak RSS {b['demo_rss_mb']:.0f} / {a['demo_rss_mb']:.0f} MB" if "demo_rss_mb" in a else "")
              + (f", say --audio peak RSS {b['say_audio_rss_mb']:.0f} / {a['say_audio_rss_mb']:.0f} MB"
                 if "say_audio_rss_mb" in a else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
