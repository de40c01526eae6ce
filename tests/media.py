"""Small helpers the tests share for checking encoded media."""
from __future__ import annotations

import hashlib
from pathlib import Path


def video_md5(path: Path) -> str:
    """md5 of the video stream's packets (the container's tags may differ, the pictures may not)."""
    import av

    h = hashlib.md5()
    with av.open(str(path)) as c:
        for pkt in c.demux(video=0):
            if pkt.size:
                h.update(bytes(pkt))
    return h.hexdigest()
