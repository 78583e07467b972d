"""Writing files so that a crash or a kill never leaves a half-written one behind."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import: reading the umask means setting it, which is not safe while other threads
# create files.
_UMASK = _current_umask()


def file_lines(text: str) -> list[str]:
    """The lines of a file's text, split at "\n" (a "\r" before it dropped) and nowhere else.

    `str.splitlines` also splits at U+2028, U+0085, form feeds and other characters that JSON leaves
    raw under `ensure_ascii=False` (GSM8K has questions with U+2028): a JSON Lines record holding one
    would be cut in two and lost on reading."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over `path`.
    The file keeps the permissions of the one it replaces, or gets those `open()` would give a new
    one (mkstemp's own 0600 would hide results and data from the rest of the user's group)."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def staging_folder(target: Path) -> Path:
    """An empty folder beside `target` to build it in, then rename into place. Like the files above,
    it gets the permissions `mkdir` would give, not mkdtemp's 0700."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(staging, 0o777 & ~_UMASK)
    return staging


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class RunFolderError(ValueError):
    """A folder holds something else than the resumable run asked for."""


def claim_run_folder(out: Path, settings_file: str, settings: dict, *, ignore: tuple[str, ...] = (),
                     what: str = "run") -> None:
    """Start a resumable run in `out`, or check that the run already there has these settings
    (keys in `ignore` may differ, keys an older version did not store are not compared); then
    store them. Never takes over a foreign folder."""
    out = Path(out)
    path = out / settings_file
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{path} is not a {what} ({exc}); choose another --out") from None
        differ = [k for k in settings if k not in ignore and k in stored and stored[k] != settings[k]]
        if differ:
            raise RunFolderError(f"{out} holds a {what} with other settings ({', '.join(differ)}); "
                                 "choose another --out, or rerun with the same settings to resume")
    elif out.exists() and any(out.iterdir()):
        raise RunFolderError(f"{out} exists and is not a {what}; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(settings, indent=2) + "\n")
