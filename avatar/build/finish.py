"""What assembly adds to the joined scenes: the final mix (music beds, loudness) and chapters.

    assemble(segments, infos, out, ..., **finishing(deck, infos, cache_root))

Everything here is made from the presentation and the scenes' facts (durations, word
times), never from inside a segment, and none of it is in a scene plan's key: a changed
bed, loudness target or slide title re-renders no scene.
"""
from __future__ import annotations

from pathlib import Path

from avatar.errors import AvatarError


def music_of(deck, scene):
    """The MusicSpec that plays under `scene` (None for none)."""
    return (scene.music or None) if scene.music is not None else deck.music


def _base(deck) -> Path:
    from avatar.speech.narrate import base_dir_of

    return base_dir_of(deck) or Path.cwd()


def _file(spec, base: Path) -> Path:
    p = Path(spec.file).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def music_runs(deck, infos) -> list:
    """One Run per stretch of consecutive scenes with the same bed setting (file paths absolute)."""
    from avatar.audio.music import Run

    runs: list[Run] = []
    t, prev, base = 0.0, None, _base(deck)
    for scene, info in zip(deck.scenes, infos):
        spec = music_of(deck, scene)
        spec = spec.model_copy(update={"file": _file(spec, base)}) if spec is not None else None
        words = [(t + s, t + e) for _, s, e in info.words]
        if spec is not None and spec == prev:
            runs[-1].end += info.duration
            runs[-1].words += words
        elif spec is not None:
            runs.append(Run(spec, t, t + info.duration, words))
        prev, t = spec, t + info.duration
    return runs


def final_mix(deck, infos, cache_dir: Path | None):
    """The audio filter of the joined track (music, then loudness), or None when there is nothing to do.

    mix(narration) -> mixed blocks: `narration()` gives the joined narration's blocks and is
    called twice with loudness on (a meter pass, then the mix), once without. Blocks of one
    second go through: memory does not grow with the video's length (only the decoded beds
    and the meter's 12 bytes per 5 ms are held)."""
    from avatar.audio.blocks import blocks_of
    from avatar.audio.loudness import loudness_stream
    from avatar.audio.music import music_beds, music_stream
    from avatar.video.mp4 import AUDIO_RATE

    runs = music_runs(deck, infos)
    if not runs and deck.loudness is None:
        return None

    def mix(narration):
        beds = music_beds(runs, cache_dir, AUDIO_RATE)   # once, for both passes

        def mixed():
            return music_stream(blocks_of(narration(), AUDIO_RATE), runs, cache_dir, AUDIO_RATE, beds)
        if deck.loudness is None:
            return mixed()
        return loudness_stream(mixed, AUDIO_RATE, deck.loudness, deck.true_peak)
    return mix


def finishing(deck, infos, cache_dir: Path | None) -> dict:
    """assemble()'s keyword arguments for the final mix and the chapters of `deck`."""
    from avatar.video.chapters import scene_chapters

    chapters = scene_chapters(deck, [i.duration for i in infos]) if deck.chapters else None
    return {"mix": final_mix(deck, infos, cache_dir), "chapters": chapters}


def music_files(deck) -> dict[Path, str]:
    """Every music bed `deck` plays (absolute path) -> the first field that names it."""
    base, files = _base(deck), {}
    for field, spec in [("music", deck.music)] + [(f"scenes[{i}].music", s.music) for i, s in enumerate(deck.scenes)]:
        if spec:
            files.setdefault(_file(spec, base), field)
    return files


def check_music(deck) -> None:
    """Preflight: every music bed exists and holds decodable audio (raises AvatarError naming the field)."""
    import av

    for p, field in music_files(deck).items():
        if not p.is_file():
            raise AvatarError(f"music file not found: {p}", field=f"{field}.file",
                              hint="paths are relative to the script's folder")
        try:
            with av.open(str(p)) as c:
                if not c.streams.audio or next(c.decode(c.streams.audio[0]), None) is None:
                    raise AvatarError(f"{p}: holds no audio", field=f"{field}.file")
        except (av.FFmpegError, UnicodeDecodeError) as e:
            raise AvatarError(f"{p}: not an audio file PyAV can decode ({getattr(e, 'strerror', None) or e})",
                              field=f"{field}.file", hint="use mp3, wav, flac, m4a or ogg") from None
