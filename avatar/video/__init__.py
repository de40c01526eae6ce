"""Encoding and muxing with PyAV: scene segments, the final MP4, probing (see mp4.py).

Importing this package is cheap: PyAV is imported inside the functions.
"""
from avatar.video.mp4 import AUDIO_RATE, concat_mp4, probe, read_audio, read_frames, write_mp4

__all__ = ["AUDIO_RATE", "write_mp4", "concat_mp4", "probe", "read_frames", "read_audio"]
