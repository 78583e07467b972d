"""Model bundles: a folder with `student.json` beside the weights. The runtime loads bundles only.

    bundles/smollm2-etd/
      student.json          manifest: base, thoughts, format version, quantizations, files + sha256
      model-q8_0.gguf       llama.cpp weights (one file per GGUF type)
      ct2-int8/             CTranslate2 model folder
      tokenizer.json        for engines that need a tokenizer outside the weights

`load_manifest` checks the format version; `verify` checks every file's size and sha256, so a
corrupted or truncated bundle is refused with a message naming the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .files import sha256_file
from .thoughts import FormatVersionError, check_format_version

MANIFEST = "student.json"
MANIFEST_VERSION = 1


class BundleError(Exception):
    """A bundle is missing, malformed, corrupted, or made for another format."""


@dataclass
class BundleFile:
    path: str          # relative to the bundle folder
    size: int
    sha256: str


@dataclass
class Weights:
    engine: str        # "llama.cpp" or "ctranslate2"
    quantization: str  # "q8_0", "q4_k_m", "f16", "int8", ...
    path: str          # a .gguf file or a CTranslate2 folder, relative to the bundle
    note: str | None = None  # e.g. what llama.cpp made of a K-quant for these shapes


@dataclass
class Manifest:
    name: str
    base: str
    architecture: str
    thoughts: list[str]
    format_version: str
    weights: list[Weights]
    files: list[BundleFile]
    source: dict = field(default_factory=dict)     # checkpoint path and hash, training data hash
    accuracy: dict = field(default_factory=dict)   # measured accuracy, when known
    fidelity: dict = field(default_factory=dict)   # quantized vs source agreement
    encoder_decoder: bool = False
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def find(self, engine: str, quantization: str | None = None) -> Weights:
        for weights in self.weights:
            if weights.engine == engine and (quantization is None or weights.quantization == quantization):
                return weights
        have = ", ".join(f"{w.engine}:{w.quantization}" for w in self.weights) or "none"
        raise BundleError(f"bundle {self.name!r} has no {engine}{':' + quantization if quantization else ''} weights (it has {have})")




def describe_files(folder: Path) -> list[BundleFile]:
    """Every file under `folder` (the manifest excepted) with its size and hash, sorted."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        files.append(BundleFile(str(path.relative_to(folder)), path.stat().st_size, sha256_file(path)))
    return files


def load_manifest(folder: str | Path) -> Manifest:
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(f"{folder} is not a model bundle (no {MANIFEST})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["weights"] = [Weights(**w) for w in data["weights"]]
        data["files"] = [BundleFile(**f) for f in data["files"]]
        manifest = Manifest(**data)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BundleError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None
    try:
        check_format_version(manifest.format_version, what=f"bundle {manifest.name!r}")
    except FormatVersionError as exc:
        raise BundleError(str(exc)) from None
    return manifest


def verify(folder: str | Path, manifest: Manifest | None = None, *, hashes: bool = True) -> list[str]:
    """Problems found (empty when the bundle is intact): missing, resized or altered files."""
    folder = Path(folder)
    manifest = manifest or load_manifest(folder)
    problems = []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: size {path.stat().st_size}, expected {entry.size} (truncated or replaced)")
        elif hashes and sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs (corrupted)")
    return problems


def open_bundle(folder: str | Path, *, hashes: bool = True) -> Manifest:
    """The manifest of an intact bundle, or BundleError naming what is wrong."""
    manifest = load_manifest(folder)
    problems = verify(folder, manifest, hashes=hashes)
    if problems:
        raise BundleError(f"bundle {folder} is damaged: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    return manifest
