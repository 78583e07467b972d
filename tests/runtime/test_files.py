"""Atomic writes: the whole new content or the old file, never a half-written one; and the file's
permissions are those a plain write would leave, not the temporary file's 0600."""

import os
import stat

import pytest

from runtime import files


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_permissions_the_umask_allows(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_UMASK", 0o022)
    files.write_text_atomic(tmp_path / "results.md", "# results\n")
    assert (tmp_path / "results.md").read_text() == "# results\n"
    assert mode(tmp_path / "results.md") == 0o644
    monkeypatch.setattr(files, "_UMASK", 0o077)
    files.write_text_atomic(tmp_path / "private.json", "{}")
    assert mode(tmp_path / "private.json") == 0o600


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "card.md"
    path.write_text("old")
    os.chmod(path, 0o640)
    files.write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o640


def test_the_umask_read_at_import_is_the_process_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    assert files._current_umask() == mask


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("kept\n")
    with pytest.raises(TypeError):
        files.write_bytes_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_a_staging_folder_sits_beside_its_target_with_mkdirs_permissions(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_UMASK", 0o022)
    staging = files.staging_folder(tmp_path / "bundle")
    assert staging.parent == tmp_path and staging.name.startswith(".bundle.tmp-")
    assert list(staging.iterdir()) == [] and mode(staging) == 0o755


def test_file_lines_split_at_newlines_only():
    # json.dumps(ensure_ascii=False) writes U+2028 and U+0085 raw; str.splitlines would cut a record there
    text = '{"q": "balls.\u2028 The box\u0085"}\r\n{"q": "b\x0c"}\n'
    assert files.file_lines(text) == ['{"q": "balls.\u2028 The box\u0085"}', '{"q": "b\x0c"}']
    assert files.file_lines("") == [] and files.file_lines("a") == ["a"] and files.file_lines("a\n\nb") == ["a", "", "b"]
