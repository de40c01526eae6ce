"""Coqui TTS voices (optional extra `coqui`): VITS, XTTS (voice cloning from a short
recording), Tacotron... any model the `coqui-tts` package loads from local files.

    voice:
      engine: coqui
      model_path: voices/xtts_v2/        # checkpoint file, or the model folder (XTTS)
      config_path: voices/xtts_v2/config.json
      speaker_wav: me.wav                # XTTS: clone this voice
      language: en

Coqui models give no timings, so word and phoneme times come from forced alignment of
the audio to its text (avatar.speech.align.align_transcript, pocketsphinx).
Nothing is downloaded: the files must be on disk (see docs/gpu.md).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.script.models import VoiceSpec
from avatar.speech import spec_path
from avatar.speech.audio import speak_markup
from avatar.types import Speech

INSTALL_HINT = ("pip install 'avatar-presenter[coqui]' (coqui-tts needs torchaudio and torchcodec "
                "builds that match your torch version); see docs/gpu.md")


class CoquiVoice:
    """A Voice (avatar.types.Voice) speaking with a local Coqui TTS model."""

    def __init__(self, spec: VoiceSpec, base_dir: Path | None = None):
        self.spec = spec
        model, config = model_files(spec, base_dir)
        self.speaker_wav = _resolve(spec.speaker_wav, base_dir, "voice.speaker_wav", "a short WAV of the voice to clone")
        self._tts = load_coqui(str(model), str(config) if config else None, _device())
        self.sample_rate = int(self._tts.synthesizer.output_sample_rate)

    def _say(self, text: str) -> np.ndarray:
        kwargs = {}
        if self.speaker_wav is not None:
            kwargs["speaker_wav"] = str(self.speaker_wav)
        elif getattr(self._tts, "is_multi_speaker", False) and self._tts.speakers:
            kwargs["speaker"] = self._tts.speakers[min(self.spec.speaker or 0, len(self._tts.speakers) - 1)]
        if getattr(self._tts, "is_multi_lingual", False) or self.spec.language:
            kwargs["language"] = self.spec.language or "en"
        if self.spec.speed != 1.0:
            kwargs["speed"] = self.spec.speed
        try:
            wav = self._tts.tts(text=text, **kwargs)
        except (ValueError, KeyError, TypeError) as e:   # e.g. unknown language / speaker for this model
            raise AvatarError(f"Coqui model cannot speak this text: {e}", field="voice",
                              hint="check voice.language and voice.speaker_wav for this model") from e
        return np.clip(np.asarray(wav, np.float32).reshape(-1), -1.0, 1.0)

    def synthesize(self, narration: str) -> Speech:
        """Narration (with [pause ...] / [next] markup) -> Speech with aligned word timings."""
        from avatar.speech.align import align_transcript

        def speak(text: str) -> Speech:
            text = " ".join(text.split())
            return align_transcript(self._say(text), self.sample_rate, text)

        return speak_markup(narration, self.sample_rate, self.spec.sentence_pause, speak)


def _resolve(path: Path | None, base_dir: Path | None, field: str, what: str) -> Path | None:
    if path is None:
        return None
    p = spec_path(path, base_dir)
    if not p.exists():
        raise AvatarError(f"file not found: {p}", field=field, hint=f"give {what}")
    return p


def model_files(spec: VoiceSpec, base_dir: Path | None) -> tuple[Path, Path | None]:
    """(model checkpoint or folder, config.json or None when the folder holds it)."""
    if spec.model_path is None:
        raise AvatarError("the coqui engine needs a model", field="voice.model_path",
                          hint="set voice.model_path to a Coqui checkpoint or model folder and voice.config_path to its config.json")
    model = _resolve(spec.model_path, base_dir, "voice.model_path", "a Coqui checkpoint (.pth) or model folder")
    config = _resolve(spec.config_path, base_dir, "voice.config_path", "the model's config.json")
    if config is None:
        if model.is_dir() and (model / "config.json").is_file():
            config = model / "config.json"
        else:
            raise AvatarError("the coqui engine needs the model's config.json", field="voice.config_path",
                              hint="set voice.config_path, or put config.json in the model folder")
    return model, config


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


@lru_cache(maxsize=2)
def load_coqui(model_path: str, config_path: str | None, device: str):
    """TTS.api.TTS for local files, loaded once per process."""
    try:
        from TTS.api import TTS
    except ImportError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise AvatarError(f"the coqui voice engine cannot load coqui-tts ({first})", field="voice.engine",
                          hint=INSTALL_HINT) from e
    try:
        tts = TTS(model_path=model_path, config_path=config_path, progress_bar=False)
    except AvatarError:
        raise
    except Exception as e:   # wrong or corrupt files: coqui raises many kinds
        raise AvatarError(f"cannot load the Coqui model {model_path}: {type(e).__name__}: {e}", field="voice.model_path",
                          hint="give a checkpoint and the config.json it was trained with") from e
    return tts.to(device)
