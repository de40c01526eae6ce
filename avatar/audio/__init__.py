"""The final mix of a video, made at assembly: music beds with ducking, loudness to a target.

Nothing here runs inside a scene: a changed bed or loudness target re-encodes only the
joined audio track, never a scene's video (see avatar.build.assemble).
"""
