"""LibreOffice headless as a converter: `soffice --headless --convert-to FORMAT`.

Every run gets its own throw-away user profile (-env:UserInstallation), so parallel
conversions never share a profile or hand the job to a LibreOffice window the user has
open, and a run that takes too long is killed with its whole process group.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from avatar.errors import AvatarError

APT_PACKAGE = "libreoffice-impress"
INSTALL_HINT = (f"install LibreOffice: apt-get install {APT_PACKAGE} (Debian/Ubuntu), "
                "dnf install libreoffice-impress (Fedora), brew install --cask libreoffice (macOS); "
                "or set AVATAR_SOFFICE to the soffice program")
_MAC_APP = "/Applications/LibreOffice.app/Contents/MacOS/soffice"


def find_soffice() -> str:
    """The soffice program: $AVATAR_SOFFICE, else `soffice` / `libreoffice` on PATH, else the macOS app."""
    env = os.environ.get("AVATAR_SOFFICE")
    if env:
        if shutil.which(env):
            return shutil.which(env)
        raise AvatarError(f"AVATAR_SOFFICE={env}: no such program", hint=INSTALL_HINT)
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    if Path(_MAC_APP).is_file():
        return _MAC_APP
    raise AvatarError("LibreOffice is not installed: it renders the slides of .pptx/.odp/.ppt decks",
                      hint=INSTALL_HINT)


def convert(inputs: list[Path], fmt: str, outdir: Path, *, timeout: float, what: str) -> list[Path]:
    """Convert every file in `inputs` to `fmt` ("pdf", "pptx") in ONE soffice run; the outputs
    land in `outdir` as <stem>.<fmt> (stems must differ). `what` names the deck in errors."""
    exe = find_soffice()
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="avatar-lo-profile-") as profile:
        cmd = [exe, f"-env:UserInstallation={Path(profile).resolve().as_uri()}", "--headless", "--invisible",
               "--norestore", "--nolockcheck", "--nodefault", "--nologo",
               "--convert-to", fmt, "--outdir", str(outdir), *map(str, inputs)]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, text=True, errors="replace")
        except OSError as e:
            raise AvatarError(f"cannot start LibreOffice ({exe}): {e.strerror or e}", hint=INSTALL_HINT) from None
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise AvatarError(f"{what}: LibreOffice did not finish converting it in {timeout:.0f} s",
                              hint="is the deck very large or damaged? try opening and saving it again") from None
        except BaseException:     # Ctrl-C: never leave soffice running
            _kill(proc)
            raise
    outputs = [outdir / f"{Path(p).stem}.{fmt}" for p in inputs]
    if proc.returncode != 0 or not all(o.is_file() and o.stat().st_size > 0 for o in outputs):
        said = [line.strip() for line in (log or "").splitlines()
                if line.strip() and "javaldx" not in line and not line.startswith("convert ")]
        detail = f" ({said[-1]})" if said else ""
        raise AvatarError(f"{what}: LibreOffice could not convert it{detail}",
                          hint="is it a damaged or password-protected deck? open it in PowerPoint or "
                               "LibreOffice Impress and save it again")
    return outputs


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()
