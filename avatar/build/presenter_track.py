"""`avatar render --presenter-track presenter.webm`: every scene's presenter as one alpha video.

The track lasts as long as the main video, scene by scene (each scene's frame count from
its SceneInfo), with the person cut out (avatar.video.alpha) and the narration as its
sound, so an editor can lay it over the main MP4 (made with `layout: none`, say) or over
other footage. The presenter is the whole photo, animated as in the scene (same voice,
motion and seed: both are deterministic), scaled to the first scene's photo size. It is
rendered after the main video and not cached.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.progress import ProgressCallback, report

RATE = 48000


def write_presenter_track(plans, infos, out: str | Path, *, on_progress: ProgressCallback | None = None) -> Path:
    import cv2

    from avatar.build.scene import scene_narration
    from avatar.face import load_identity
    from avatar.motion import make_motion
    from avatar.renderers import get_renderer
    from avatar.speech.audio import resample
    from avatar.video.alpha import check_alpha_path, cut_out, write_alpha_video
    from avatar.video.mp4 import _fit_audio
    from avatar.video.tags import metadata

    out = Path(out)
    check_alpha_path(out, "--presenter-track")
    decks = [p.presentation() for p in plans]
    speeches = [scene_narration(d, d.scenes[0]) for d in decks]
    audio = np.concatenate([_fit_audio(resample(np.asarray(sp.audio, np.float32), sp.sample_rate, RATE)[None],
                                       int(round(info.duration * RATE)))[0]   # each scene's narration, its length
                            for sp, info in zip(speeches, infos)])
    total = sum(i.frames for i in infos)

    def frames() -> Iterator[np.ndarray]:
        size, done = None, 0
        for deck, speech, info in zip(decks, speeches, infos):
            spec = deck.avatar
            identity = load_identity(spec.photo, face_index=spec.face_index, detector=spec.detector)
            motion = make_motion(speech, deck.fps, spec, info.frames)
            for f in get_renderer(spec.renderer).frames(identity, motion, crop=False):
                size = size or (f.shape[1] & ~1, f.shape[0] & ~1)
                yield f if (f.shape[1], f.shape[0]) == size else cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                done += 1
                report(on_progress, "frames", done, total, "presenter track")

    return write_alpha_video(out, cut_out(frames()), fps=decks[0].fps, audio=audio, sample_rate=RATE,
                             metadata=metadata(out.stem))
