"""Fault injection: a broken cache, a full disk, unwritable and wrong-type paths, signals and
kill -9. Each fault ends in a clean one-line error (exit 2) or a correct video, and never
leaves a temporary file behind."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avatar.cli import main
from media import video_md5  # tests/media.py

DECK = """\
title: Faults
size: 160x96
fps: 8
transition: cut
captions: {burn: false}
avatar: {layout: none}
scenes:
  - narration: "One small scene."
  - narration: "Another small scene."
  - narration: "A third small scene here."
"""
LONG_DECK = DECK.replace("avatar: {layout: none}", "avatar: {layout: pip, motion: phonemes}") + "".join(
    f'  - narration: "Scene {i} goes on for a while, with enough words to take a few seconds to render."\n'
    for i in range(4, 9))


def _same_pictures(a: Path, b: Path) -> None:
    """The same number of frames and the same pictures (within encoder noise)."""
    from avatar.video import read_frames

    fa, fb = list(read_frames(a)), list(read_frames(b))
    assert len(fa) == len(fb), (len(fa), len(fb))
    diff = max(float(np.abs(x.astype(np.int16) - y.astype(np.int16)).mean()) for x, y in zip(fa, fb))
    assert diff < 1.0, diff


def _temps(*folders: Path) -> list[Path]:
    return [p for f in folders if f.is_dir() for p in f.rglob(".*") if p.is_file()]


def _cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The deck rendered once, uninterrupted: (deck file, video stream md5, cache folder)."""
    from avatar.api import render

    tmp = tmp_path_factory.mktemp("faults")
    deck = tmp / "deck.yaml"
    deck.write_text(DECK)
    render(deck, tmp / "ref.mp4", cache_dir=tmp / "cache", jobs=1)
    return deck, video_md5(tmp / "ref.mp4"), tmp / "cache"


def _copy_cache(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _break(seg: Path, side: Path, how: str) -> None:
    data = seg.read_bytes()
    if how == "truncated segment":
        seg.write_bytes(data[: len(data) // 2])
    elif how == "zero-byte segment":
        seg.write_bytes(b"")
    elif how == "corrupt segment":   # same size, bytes flipped in the middle
        mid = len(data) // 2
        seg.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:])
    elif how == "missing segment":
        seg.unlink()
    elif how == "corrupt sidecar":
        side.write_text("{not json")
    elif how == "zero-byte sidecar":
        side.write_text("")
    elif how == "sidecar with wrong frames":   # size and digest right, the facts wrong: the probe sees it
        meta = json.loads(side.read_text())
        meta["info"]["frames"] += 5
        meta["info"]["duration"] += 5 / 8
        side.write_text(json.dumps(meta))
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated segment", "zero-byte segment", "corrupt segment", "missing segment",
                                 "corrupt sidecar", "zero-byte sidecar", "sidecar with wrong frames"])
def test_broken_cache_entry_is_rendered_again(reference, tmp_path, how):
    from avatar.api import render
    from avatar.video import probe

    deck, md5, cache = reference
    cache = _copy_cache(cache, tmp_path / "cache")
    segs = sorted((cache / "scenes").glob("*.mp4"))
    assert len(segs) == 3
    _break(segs[1], segs[1].with_suffix(".json"), how)
    out = tmp_path / "again.mp4"
    with pytest.warns(UserWarning, match="failed its check"):
        result = render(deck, out, cache_dir=cache, jobs=1)
    assert result.rendered == 1 and result.scenes == 3
    assert probe(out)["frames"] == result.frames
    _same_pictures(out, deck.parent / "ref.mp4")      # the same video as the uninterrupted run
    assert not _temps(cache, tmp_path)


def test_stale_temp_files_are_removed_live_ones_kept(reference, tmp_path):
    from avatar.api import render
    from avatar.files import writer_tag

    deck, md5, cache = reference
    cache = _copy_cache(cache, tmp_path / "cache")
    dead = subprocess.run([sys.executable, "-c", "from avatar.files import writer_tag; print(writer_tag())"],
                          capture_output=True, text=True, check=True, env={**os.environ}).stdout.strip()
    key = next((cache / "scenes").glob("*.mp4")).stem
    out = tmp_path / "out" / "talk.mp4"
    out.parent.mkdir()
    stale = [cache / "scenes" / f".{key}.{dead}.abcd1234.mp4", out.parent / f".talk.{dead}.abcd1234.mp4",
             out.parent / f".talk.{dead}.abcd1234.srt"]
    live = cache / "scenes" / f".{key}.{writer_tag()}.abcd1234.mp4"     # this process: alive
    old = out.parent / ".talk.q1w2e3r4.mp4"                             # no writer in the name: by age
    for p in [*stale, live, old]:
        p.write_bytes(b"partial")
    week = time.time() - 7 * 86400
    os.utime(old, (week, week))
    render(deck, out, cache_dir=cache, jobs=1)
    assert not any(p.exists() for p in stale) and not old.exists()
    assert live.exists()
    assert video_md5(out) == md5


# --------------------------------------------------------------------------- disk full
@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root), else None (the write is failed by injection instead)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                            capture_output=True).returncode == 0:
        yield mnt
        subprocess.run(["umount", str(mnt)], check=False)
    else:
        yield None


def _inject_enospc(monkeypatch):
    import avatar.files

    real = avatar.files.os.replace

    def full(src, dst, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(avatar.files.os, "replace", full)
    return real


@pytest.mark.parametrize("target", ["out", "cache"])
def test_disk_full_is_one_line_error(reference, tmp_path, small_disk, monkeypatch, capsys, target):
    deck, _, _ = reference
    place = small_disk or tmp_path / "place"
    if small_disk is None:
        _inject_enospc(monkeypatch)
    out = place / "o.mp4" if target == "out" else tmp_path / "o.mp4"
    cache = tmp_path / "c" if target == "out" else place / "cache"
    if target == "out":   # a cache that holds the scenes already: only the output write fails
        _copy_cache(reference[2], cache)
    code, err = _cli(["render", deck, "-o", out, "--cache-dir", cache, "-q"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "no space left on device" in err and str(place) in err and "--cache-dir" in err, err
    assert not out.exists() and not _temps(place)


def test_disk_full_during_say(tmp_path, small_disk, monkeypatch, capsys):
    place = small_disk or tmp_path
    if small_disk is None:
        _inject_enospc(monkeypatch)
    code, err = _cli(["say", "Hello there, a few words more than fit on this disk.", "-o", place / "hi.mp4",
                      "--size", "256",
                      "--motion", "phonemes", "-q"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no space left on device" in err, err
    assert not (place / "hi.mp4").exists() and not _temps(place)


# --------------------------------------------------------------------------- wrong-type and unwritable paths
def test_wrong_type_and_unwritable_paths(reference, tmp_path, capsys, monkeypatch):
    deck, _, cache = reference
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "folder.mp4").mkdir()
    cases = [
        (["render", deck, "-o", tmp_path / "folder.mp4", "--cache-dir", cache], ["is a folder", "folder.mp4"]),
        (["render", deck, "-o", afile / "x.mp4", "--cache-dir", cache], ["is a file, not a folder", "afile"]),
        (["render", deck, "-o", tmp_path / "o.mp4", "--cache-dir", afile], ["afile", "--cache-dir"]),
        (["say", "hi", "-o", afile / "x.mp4"], ["is a file, not a folder", "afile"]),
        (["speak", "hi", "-o", tmp_path / "folder.mp4" / "x" / "y.wav"], []),   # a missing folder is created
        (["init", "talk", "--dir", afile], ["afile"]),
    ]
    for args, needles in cases:
        code, err = _cli(args + ["-q"], capsys)
        if not needles:
            assert code in (0, None), err
            continue
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert all(n in err for n in needles), (args, err)
    monkeypatch.setenv("AVATAR_CACHE", str(afile / "sub"))
    code, err = _cli(["render", deck, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 2 and "afile" in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.mp4").exists()


def test_read_only_places(reference, tmp_path, capsys):
    deck, _, cache = reference
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                                                   capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root without mount: permissions do not stop root")
        ro.chmod(0o555)
    try:
        for args in (["render", deck, "-o", ro / "o.mp4", "--cache-dir", cache],
                     ["render", deck, "-o", tmp_path / "o.mp4", "--cache-dir", ro / "cache"],
                     ["say", "hi", "-o", ro / "hi.mp4"], ["speak", "hi", "-o", ro / "hi.wav"]):
            code, err = _cli(args + ["-q"], capsys)
            assert code == 2 and err.count("\n") == 1, (args, err)
            assert ("read-only file system" if mounted else "permission denied") in err and str(ro) in err, err
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=False)
        else:
            ro.chmod(0o755)


def test_a_folder_that_takes_no_new_file_fails_before_rendering(tmp_path, capsys, monkeypatch):
    """/proc passes a permission check (root) but refuses new files: the preflight tries one."""
    from avatar.files import check_target

    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc")
    deck = tmp_path / "deck.yaml"
    deck.write_text(DECK)
    rendered = []
    import avatar.build.cache

    monkeypatch.setattr(avatar.build.cache.SceneCache, "put", lambda *a, **k: rendered.append(1) or 1 / 0)
    for args in (["render", deck, "-o", "/proc/x.mp4", "--cache-dir", tmp_path / "c"],
                 ["render", deck, "-o", tmp_path / "o.mp4", "--cache-dir", "/proc/cache"],
                 ["say", "hi", "-o", "/proc/hi.mp4"], ["speak", "hi", "-o", "/proc/hi.wav"]):
        code, err = _cli(args + ["-q"], capsys)
        assert code == 2 and err.count("\n") == 1 and "/proc" in err and "Traceback" not in err, (args, err)
    assert not rendered and not (tmp_path / "c").exists()
    check_target(tmp_path / "new" / "o.mp4")     # a writable place: nothing is left behind
    check_target(tmp_path / "cache", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deck.yaml"]


def test_os_error_message_names_path_and_fix():
    from avatar.errors import os_error_message

    for code, words in [(errno.ENOSPC, "no space"), (errno.EACCES, "permission"), (errno.EROFS, "read-only"),
                        (errno.EISDIR, "folder"), (errno.ENOTDIR, "not a folder"), (errno.ENOENT, "no such")]:
        msg = os_error_message(OSError(code, os.strerror(code), "/some/where.mp4"))
        assert words in msg and "/some/where.mp4" in msg and "(" in msg and "\n" not in msg, msg


# --------------------------------------------------------------------------- signals and kill -9
def _spawn(args: list, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "avatar.cli", *map(str, args), "-q"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"ended early: {proc.returncode} {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _descendants_gone(pgid: int, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_during_say_leaves_nothing(tmp_path, sig, code):
    out = tmp_path / "clip" / "hi.mp4"
    # long enough (about 25 s of speech) that the signal lands while the clip is being written, even on
    # a quiet machine where a short clip is encoded before the signal is delivered
    text = " ".join(["Hello there. This clip is long enough to be stopped while it is written, "
                     "with a few more words."] * 5)
    proc = _spawn(["say", text, "-o", out, "--motion", "phonemes"], tmp_path)
    _wait_for(lambda: bool(_temps(out.parent)), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().startswith("interrupted") and err.count("interrupted") == 1 and "Traceback" not in err, err
    assert not out.exists() and not _temps(out.parent)


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_during_render_leaves_nothing(tmp_path, jobs):
    deck = tmp_path / "long.yaml"
    deck.write_text(LONG_DECK)
    out, cache = tmp_path / "out" / "t.mp4", tmp_path / "cache"
    proc = _spawn(["render", deck, "-o", out, "--cache-dir", cache, "--jobs", jobs], tmp_path)
    _wait_for(lambda: len(_temps(cache / "scenes")) >= jobs, proc)    # every worker is writing a segment
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143 and err.count("interrupted (SIGTERM)") == 1 and "Traceback" not in err, err
    assert _descendants_gone(proc.pid), "worker processes outlived the render"
    assert not out.exists() and not _temps(cache, out.parent)


def _forkserver_importing(pgid: int) -> bool:
    """Whether a multiprocessing forkserver of this process group has begun importing what the scene
    workers need (avatar.build.forkserver_preload: OpenCV's library is mapped, more is to come)."""
    for d in Path("/proc").iterdir():
        try:
            if (d.name.isdigit() and os.getpgid(int(d.name)) == pgid and b"forkserver" in (d / "cmdline").read_bytes()
                    and "/cv2/" in (d / "maps").read_text()):
                return True
        except (OSError, ProcessLookupError):
            pass
    return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux /proc")
def test_ctrl_c_as_the_scene_workers_start_prints_one_line(tmp_path):
    """Ctrl-C (SIGINT to the whole process group) while the forkserver imports what the scene
    workers need: it printed a KeyboardInterrupt traceback of its own, or
    forked a worker after the render had ended that printed a FileNotFoundError traceback."""
    deck = tmp_path / "long.yaml"
    deck.write_text(LONG_DECK)
    out, cache = tmp_path / "out" / "t.mp4", tmp_path / "cache"
    proc = _spawn(["render", deck, "-o", out, "--cache-dir", cache, "--jobs", 2], tmp_path)
    _wait_for(lambda: _forkserver_importing(proc.pid), proc, timeout=60)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert _descendants_gone(proc.pid), "worker processes outlived the render"
    assert proc.returncode == 130 and err.strip() == "interrupted: no new output was written", err
    assert not out.exists() and not _temps(cache, out.parent)


def test_a_signal_a_library_swallows_still_stops_the_command(tmp_path, capsys, monkeypatch):
    """PyAV's error check can swallow the Interrupted a signal raises while an audio frame is
    encoded: the clip went on to the end, was written, and the command still said that no new
    output was written. The next progress event raises it again: nothing is written."""
    import avatar.video.mp4 as mp4

    encode = mp4._AudioTrack._encode
    swallowed = []

    def swallowing(self, block):
        if not swallowed:
            try:
                os.kill(os.getpid(), signal.SIGTERM)   # the handler raises in here ...
                time.sleep(5)
            except KeyboardInterrupt:
                swallowed.append(True)                 # ... and a library lets it go
        return encode(self, block)
    monkeypatch.setattr(mp4._AudioTrack, "_encode", swallowing)
    out = tmp_path / "hi.mp4"
    code, err = _cli(["say", "Hello there, this is long enough for a few frames.", "-o", out, "-q"], capsys)
    assert swallowed and code == 128 + signal.SIGTERM, err
    assert err.strip() == "interrupted (SIGTERM): no new output was written" and not out.exists()
    assert not _temps(tmp_path)


WORKER_SIGNAL = """
import os, signal, sys, time
import avatar.build.run as run
from avatar.api import plan

def converted(*args, **kwargs):
    try:
        os.kill(os.getpid(), signal.SIGTERM)   # lands while a library is busy, e.g. importing onnxruntime
        time.sleep(5)
    except BaseException:
        raise ImportError("initialization failed") from None   # what an extension module's init gives
run.execute = converted
signal.signal(signal.SIGTERM, run._on_signal)
p = plan(sys.argv[1])[0]
try:
    run.render_plan(p.to_json(), sys.argv[2])
except Exception as e:   # the pool hands the error to the parent and takes the next scene
    print("took the next scene after", type(e).__name__)
"""


def test_a_worker_signalled_ends_even_when_a_library_turns_the_signal_into_another_error(tmp_path):
    """A scene worker's signal that some library turns into its own error (onnxruntime's import:
    'initialization failed') still ends the worker once its scene has unwound: it went on with the
    next queued scene, so the render's SIGTERM waited 10 s for it and then killed it mid-scene,
    leaving its temporary segment behind."""
    deck = tmp_path / "d.yaml"
    deck.write_text(DECK)
    p = subprocess.run([sys.executable, "-c", WORKER_SIGNAL, str(deck), str(tmp_path / "cache")], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert p.returncode == 128 + signal.SIGTERM and "took the next scene" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert not _temps(tmp_path / "cache")


def test_sigterm_while_the_next_narration_is_synthesised_exits_cleanly(tmp_path):
    """Serial renders synthesise the next scene's narration in a helper thread: a signal that lands
    while it runs ends the run with 143 and the usual line (finalising the interpreter under it
    aborted the process: 'terminate called without an active exception', exit -6, or a segfault)."""
    deck = tmp_path / "long.yaml"
    deck.write_text(LONG_DECK)
    out, cache = tmp_path / "out" / "t.mp4", tmp_path / "cache"
    proc = _spawn(["render", deck, "-o", out, "--cache-dir", cache, "--jobs", 1], tmp_path)
    # a scene finished and the next one being written: the narration after it is being synthesised
    _wait_for(lambda: bool(list((cache / "scenes").glob("*.json"))) and bool(_temps(cache / "scenes")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143 and err.strip() == "interrupted (SIGTERM): no new output was written", err
    assert not out.exists() and not _temps(cache, out.parent)


def test_kill9_then_rerun_gives_the_same_video(reference, tmp_path):
    from avatar.api import render

    deck, md5, _ = reference
    out, cache = tmp_path / "t.mp4", tmp_path / "cache"
    proc = _spawn(["render", deck, "-o", out, "--cache-dir", cache, "--jobs", 1], tmp_path)
    sidecars = lambda: list((cache / "scenes").glob("*.json")) if (cache / "scenes").is_dir() else []  # noqa: E731
    _wait_for(lambda: len(sidecars()) >= 1 and bool(_temps(cache)), proc)   # one scene done, the next half-written
    proc.kill()
    proc.communicate(timeout=30)
    assert _temps(cache)                       # kill -9 runs no cleanup ...
    result = render(deck, out, cache_dir=cache, jobs=1)
    assert not _temps(cache)                   # ... the next run removes what the dead run left
    assert result.rendered < result.scenes
    assert video_md5(out) == md5


def test_kill9_of_a_parallel_render_prints_nothing_after_it(tmp_path):
    """kill -9 of a render with scene workers: the workers end, and multiprocessing's resource
    tracker removes the pool's locks without its "leaked semaphore objects" warning (two lines of
    Python in the terminal, after the shell's "Killed")."""
    deck = tmp_path / "long.yaml"
    deck.write_text(LONG_DECK)
    cache = tmp_path / "cache"
    proc = _spawn(["render", deck, "-o", tmp_path / "t.mp4", "--cache-dir", cache, "--jobs", 2], tmp_path)
    _wait_for(lambda: len(_temps(cache / "scenes")) >= 1, proc)    # a worker is writing a segment
    proc.kill()
    _, err = proc.communicate(timeout=60)    # until every process that holds its stderr has ended
    assert _descendants_gone(proc.pid), "worker processes outlived the render"
    assert "leaked" not in err and "Traceback" not in err and "Warning" not in err, err


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux /proc")
def test_a_process_that_has_ended_has_no_start_time_even_before_it_is_reaped():
    """A zombie (ended, its parent not waiting yet) runs no code: process_start says it is gone, so
    a scene worker stops once its killed render is a zombie, and its temporary files are stale."""
    from avatar.files import process_start

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    assert process_start(p.pid) is not None
    end = time.monotonic() + 30
    while Path(f"/proc/{p.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
        assert time.monotonic() < end
        time.sleep(0.05)
    assert process_start(p.pid) is None          # a zombie: not reaped, already gone
    p.wait()
    assert process_start(p.pid) is None


def test_stale_rule_pid_reuse_and_other_owners(tmp_path):
    from avatar.files import STALE_AGE, is_stale, process_start, writer_tag

    me = os.getpid()
    tag = writer_tag()
    owner = tag.rsplit("-", 1)[1]
    cases = {f".a.{tag}.x1y2z3w4.mp4": False,                                        # this process
             f".a.tmp{me}-{process_start(me) + 1}-{owner}.x1y2z3w4.mp4": True,       # same pid, another start
             f".a.tmp{me}-{process_start(me)}-00000000.x1y2z3w4.mp4": False}         # another host: by age
    for name, stale in cases.items():
        p = tmp_path / name
        p.write_bytes(b"x")
        assert is_stale(p) is stale, name
    other = tmp_path / f".a.tmp{me}-{process_start(me)}-00000000.x1y2z3w4.mp4"
    old = time.time() - STALE_AGE - 60
    os.utime(other, (old, old))
    assert is_stale(other)


def test_a_signal_as_a_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A signal that lands right after atomic_path made its temporary file, before the writer's block
    began (the moment test_signal_during_say's poll for a temporary file makes likely): the file goes.
    Raised here from the close of the new file's descriptor; with mkstemp that close ran outside the
    clean-up, and the file stayed."""
    from avatar.files import atomic_path

    real_close, calls = os.close, []

    def close(fd):
        real_close(fd)
        if not calls:
            calls.append(fd)
            raise KeyboardInterrupt
    monkeypatch.setattr(os, "close", close)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "out.mp4"):
            pytest.fail("the block ran")
    monkeypatch.setattr(os, "close", real_close)
    assert calls and not list(tmp_path.iterdir())


def test_remove_pending_removes_what_an_abrupt_exit_would_leave(tmp_path):
    """A signal landing inside `with`'s own entry (the file made, the block not begun) skips the
    context manager's exit, and a process that then ends with os._exit runs no `finally`:
    remove_pending (called before every such exit) removes the file. A file already renamed into
    place stays, and so does another writer's temporary file."""
    from avatar.files import atomic_path, remove_pending, writer_tag

    done = tmp_path / "done.txt"
    with atomic_path(done) as tmp:
        tmp.write_text("complete")
    other = tmp_path / f".x.tmp1-1-00000000.abcdefgh.mp4"
    other.write_bytes(b"another writer")
    entered = atomic_path(tmp_path / "cut.mp4")
    tmp = entered.__enter__()            # and never __exit__: what the signal leaves
    assert tmp.exists() and writer_tag() in tmp.name
    assert remove_pending() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([done.name, other.name])
    assert remove_pending() == 0


def test_worker_warnings_are_one_line(tmp_path, astronaut_path):
    """A warning raised in a scene worker (here: a damaged stored photo, measured again) prints as
    one line like the command line's own, not with Python's file name and source line."""
    deck = tmp_path / "t.yaml"
    deck.write_text(DECK.replace("avatar: {layout: none}", f"avatar: {{layout: pip, photo: {astronaut_path}}}"))
    cache = tmp_path / "cache"
    first = _spawn(["render", deck, "-o", tmp_path / "a.mp4", "--cache-dir", cache, "--jobs", 2], tmp_path)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    (entry,) = (cache / "identities").glob("*.npz")
    entry.write_bytes(b"damaged")
    proc = _spawn(["render", deck, "-o", tmp_path / "b.mp4", "--cache-dir", cache, "--jobs", 2, "--no-cache"],
                  tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("failed its check" in line for line in lines), err
    assert all(line.startswith("warning: ") for line in lines), err


def test_a_warning_of_every_worker_is_printed_once(tmp_path, astronaut_path):
    """Each scene worker measures the presenter's photo and each warned about it (a photo lying on
    its side): the render prints the warning once, like a serial render."""
    from PIL import Image

    sideways = tmp_path / "sideways.png"
    Image.open(astronaut_path).convert("RGB").rotate(90, expand=True).save(sideways)
    deck = tmp_path / "t.yaml"
    deck.write_text(DECK.replace("avatar: {layout: none}", f"avatar: {{layout: pip, photo: {sideways}}}"))
    for jobs in (2, 1):
        proc = _spawn(["render", deck, "-o", tmp_path / f"{jobs}.mp4", "--cache-dir", tmp_path / f"cache{jobs}",
                       "--jobs", jobs], tmp_path)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert err.count("leans about") == 1 and err.startswith("warning: ") and "Traceback" not in err, (jobs, err)


def test_a_signal_landing_inside_an_import_is_raised_after_it(tmp_path, monkeypatch):
    """An extension module's import prints the traceback of an exception raised inside it (numpy's
    import_array): the command line's handler does not raise there; it sends the signal again
    50 ms later, and raises it where no import is running."""
    import importlib
    import threading

    import avatar.cli as cli
    from avatar.errors import Interrupted

    sent = threading.Event()
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.set() if (pid, sig) == (os.getpid(), signal.SIGTERM) else None)
    monkeypatch.setattr(cli, "_interrupted", [])
    monkeypatch.setattr(cli, "_deferred", {})
    (tmp_path / "slow_extension_like.py").write_text(
        "import signal, sys, avatar.cli\navatar.cli._on_signal(signal.SIGTERM, sys._getframe())\nDONE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("slow_extension_like")      # the handler ran inside this import
    assert mod.DONE and not cli._interrupted
    assert sent.wait(2)                                       # sent again, once the import was over
    with pytest.raises(Interrupted):
        cli._on_signal(signal.SIGTERM, sys._getframe())       # outside any import: raised
    assert cli._interrupted == [signal.SIGTERM]


def test_a_signal_is_deferred_inside_imports_only_for_a_while(monkeypatch):
    """A command run from inside an import (a script's module calling avatar.cli.main) still stops:
    past DEFER_SECONDS the signal is raised there."""
    import avatar.cli as cli
    from avatar.errors import Interrupted

    monkeypatch.setattr(os, "kill", lambda pid, sig: None)
    monkeypatch.setattr(cli, "_interrupted", [])
    monkeypatch.setattr(cli, "_deferred", {signal.SIGTERM: time.monotonic() - cli.DEFER_SECONDS - 1})

    class Code:
        co_filename = "<frozen importlib._bootstrap>"

    class Frame:
        f_code, f_back = Code(), None

    with pytest.raises(Interrupted):
        cli._on_signal(signal.SIGTERM, Frame())
