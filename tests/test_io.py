"""File helpers: atomic writes and staged folders keep the usual permissions, and leave nothing on failure."""

import os
import stat

import pytest

from tinythinker.io import UMASK, staged_dir, write_json


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o666 & ~UMASK
    with staged_dir(tmp_path / "out") as folder:
        (folder / "f.txt").write_text("x")
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o777 & ~UMASK


def test_staged_dir_leaves_nothing_on_failure_and_replaces_on_success(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_dir(tmp_path / "out") as folder:
            (folder / "f.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    for text in ("first", "second"):
        with staged_dir(tmp_path / "out") as folder:
            (folder / "f.txt").write_text(text)
    assert (tmp_path / "out" / "f.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
