"""Training and evaluation of the audio-to-lips model (`avatar lips train|eval`).

Never imported at run time: the runtime model lives in avatar.motion.audio_model."""
