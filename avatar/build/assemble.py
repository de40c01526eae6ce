"""Assemble: scene segments -> the output video and its caption files, as one set.

The captions of the whole video are each scene's cues (the same ones burned into it)
shifted to the joined timeline. The .srt/.vtt are written first (to temporary files)
and the .mp4 is renamed into place last, so a failure leaves the previous output set and
no new partial one.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from avatar.build.scene import SceneInfo
from avatar.files import atomic_path


def timeline_cues(infos: list[SceneInfo], spec) -> list:
    """Every scene's caption cues on the joined video's timeline."""
    from avatar.captions import build_cues
    from avatar.types import Word

    cues, offset = [], 0.0
    for info in infos:
        words = [Word(t, s, e) for t, s, e in info.words]
        for c in build_cues(words, spec, text=info.text) if words else []:
            cues.append(replace(c, start=c.start + offset, end=c.end + offset,
                                words=tuple(replace(w, start=w.start + offset, end=w.end + offset)
                                            for w in c.words)))
        offset += info.duration
    return cues


@contextlib.contextmanager
def output_set(out: Path, cues: list):
    """Yield a temporary path for the video; on success write OUT.srt / OUT.vtt (when there are
    cues) and rename the video into place last. A failure leaves the previous set untouched."""
    from avatar.captions import write_srt, write_vtt

    with contextlib.ExitStack() as stack:
        # renamed in reverse order of entering: the video (entered first) lands last
        video = stack.enter_context(atomic_path(out))
        yield video
        if cues:
            write_srt(stack.enter_context(atomic_path(out.with_suffix(".srt"))), cues)
            write_vtt(stack.enter_context(atomic_path(out.with_suffix(".vtt"))), cues)


def assemble(segments: list[Path], infos: list[SceneInfo], out: Path, *, title: str, captions) -> Path:
    """Join `segments` into `out` (+ OUT.srt / OUT.vtt when captions.files)."""
    from avatar.video import concat_mp4
    from avatar.video.tags import metadata

    cues = timeline_cues(infos, captions) if captions.enabled and captions.files else []
    with output_set(Path(out), cues) as video:
        concat_mp4(segments, video, metadata=metadata(title))
    return Path(out)
