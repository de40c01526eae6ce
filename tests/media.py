"""Small helpers the tests share for checking encoded media, and FFmpeg's EBU R128 meter
(PyAV's bundled libavfilter) as the reference our own loudness meter is checked against:

    meta = measure(audio, 48000)      # ebur128: {"I": -16.1, "TP": -1.3, "LRA": 4.2}
"""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np


def video_md5(path: Path) -> str:
    """md5 of the video stream's packets (the container's tags may differ, the pictures may not)."""
    import av

    h = hashlib.md5()
    with av.open(str(path)) as c:
        for pkt in c.demux(video=0):
            if pkt.size:
                h.update(bytes(pkt))
    return h.hexdigest()


def spy_concat(monkeypatch) -> list:
    """Record the `audio` (the joined track made ahead, or None) of every concat_mp4 that
    assembly runs from now on; the join itself runs as usual."""
    import avatar.video.mp4 as mp4

    given: list = []
    concat = mp4.concat_mp4

    def spy(segments, target, **kw):
        given.append(kw.get("audio"))
        return concat(segments, target, **kw)
    monkeypatch.setattr("avatar.video.concat_mp4", spy)
    return given


# --------------------------------------------------------------------------- FFmpeg filters
BLOCK = 4800   # samples per frame pushed into the graph


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def run_filter(audio: np.ndarray, rate: int, name: str, args: str = "") -> tuple[np.ndarray, dict]:
    """(c, n) float32 through the filter `name=args` -> ((c, m) float32, the last frame's metadata)."""
    import av
    import av.filter

    audio = np.ascontiguousarray(audio, np.float32)
    layout = _layout(audio.shape[0])
    graph = av.filter.Graph()
    src = graph.add_abuffer(format="fltp", sample_rate=rate, layout=layout, time_base=Fraction(1, rate))
    node = graph.add(name, args) if args else graph.add(name)
    fmt = graph.add("aformat", f"sample_fmts=fltp:channel_layouts={layout}:sample_rates={rate}")
    sink = graph.add("abuffersink")
    src.link_to(node)
    node.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    out: list[np.ndarray] = []
    meta: dict = {}

    def drain() -> None:
        nonlocal meta
        while True:
            try:
                f = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.append(f.to_ndarray())
            meta = dict(f.metadata) or meta

    for i in range(0, audio.shape[1], BLOCK):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + BLOCK]), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    data = np.concatenate(out, axis=1) if out else np.zeros((audio.shape[0], 0), np.float32)
    return data.astype(np.float32, copy=False), meta


def measure(audio: np.ndarray, rate: int, peak: bool = True) -> dict[str, float]:
    """FFmpeg's EBU R128 meter: integrated loudness I (LUFS), true peak TP (dBTP; with `peak`, which
    oversamples 4x and takes most of the time), loudness range LRA (LU)."""
    _, meta = run_filter(audio, rate, "ebur128", "metadata=1" + (":peak=true" if peak else ""))
    tp = float(meta.get("lavfi.r128.true_peak", 0.0 if peak else "nan"))
    return {"I": float(meta.get("lavfi.r128.I", "-inf")), "LRA": float(meta.get("lavfi.r128.LRA", 0.0)),
            "TP": 20 * np.log10(tp) if tp > 0 else float("-inf")}
