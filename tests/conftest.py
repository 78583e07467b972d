import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data: $ETD_DATA_DIR, else ../shared/data beside the repository."""
    path = Path(os.environ.get("ETD_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (path / "gsm8k" / "train.jsonl").is_file():
        pytest.fail(f"benchmark data not found at {path}: set ETD_DATA_DIR")
    return path
