"""Speech: narration text -> Speech (audio + exact phoneme and word timings).

    from avatar.speech import load_voice
    speech = load_voice(VoiceSpec()).synthesize("Hello there. [pause 0.5s] Next point.")

Engines: "piper" (default, bundled voice), "recorded" (your own audio), "coqui" (optional).
Heavy libraries load inside the functions that need them.
"""
from __future__ import annotations

from pathlib import Path

from avatar.script.models import VoiceSpec
from avatar.types import Voice


def spec_path(path: str | Path, base_dir: Path | None) -> Path:
    """A path from a VoiceSpec: ~ expanded, a relative one taken relative to base_dir (when given)."""
    p = Path(path).expanduser()
    return Path(base_dir) / p if not p.is_absolute() and base_dir is not None else p


def load_voice(spec: VoiceSpec, base_dir: Path | None = None, threads: int = 0,
               store: Path | None = None) -> Voice:
    """Resolve the spec's preset and build the voice its engine names.

    base_dir: folder that relative paths in the spec are relative to (the script's folder).
    threads: the synthesiser's threads (Piper's onnxruntime; 0: its own choice); 1 where the
    narration runs beside a render that keeps the other cores busy.
    store: a folder of prepared Piper voices (avatar.speech.model_store), e.g. the cache's.
    """
    from avatar.speech.presets import resolve

    spec = resolve(spec, base_dir)
    if spec.engine == "piper":
        from avatar.speech.piper_voice import PiperVoice

        return PiperVoice(spec, base_dir, threads=threads, store=store)
    if spec.engine == "recorded":
        from avatar.speech.recorded import RecordedVoice

        return RecordedVoice(spec, base_dir)
    if spec.engine == "coqui":
        from avatar.speech.coqui import CoquiVoice

        return CoquiVoice(spec, base_dir)
    raise ValueError(f"unknown voice engine {spec.engine!r}")  # unreachable: VoiceSpec validates it


__all__ = ["load_voice", "spec_path"]
