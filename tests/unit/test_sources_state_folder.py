"""Where the raw archive and the landing folder are by default: in ArbX's state folder
(``ARBX_HOME``, default ``.arbx`` in the current directory), like the warehouse — not next
to whichever sources.yaml is read. Paths a user writes in their own sources.yaml stay
relative to that file; ``ARBX_ARCHIVE`` / ``ARBX_LANDING`` override the example's."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbx_dagster.resources.sources import resolve_sources

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "sources.example.yaml"


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARBX_HOME", "ARBX_ARCHIVE", "ARBX_LANDING", "ARBX_SOURCES"):
        monkeypatch.delenv(name, raising=False)


def test_the_example_keeps_the_archive_and_landing_folder_in_arbx_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    sources = resolve_sources(EXAMPLE)
    assert sources.archive.root == str(tmp_path / "state" / "archive")
    assert sources.get("exports").path == tmp_path / "state" / "landing"


def test_a_relative_arbx_home_is_the_current_directory_s_as_for_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sources = resolve_sources(EXAMPLE)  # ARBX_HOME unset: .arbx here, not in the repository
    assert sources.archive.root == str(tmp_path / ".arbx" / "archive")
    assert sources.get("exports").path == tmp_path / ".arbx" / "landing"
    monkeypatch.setenv("ARBX_HOME", "state")
    assert resolve_sources(EXAMPLE).archive.root == str(tmp_path / "state" / "archive")


def test_arbx_archive_and_arbx_landing_still_choose_the_example_s_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ARBX_ARCHIVE", "s3://bucket/arbx/archive")
    monkeypatch.setenv("ARBX_LANDING", str(tmp_path / "drops"))
    sources = resolve_sources(EXAMPLE)
    assert sources.archive.root == "s3://bucket/arbx/archive"
    assert sources.get("exports").path == tmp_path / "drops"


def _own_sources(folder: Path, archive: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "sources.yaml"
    path.write_text(
        f"{archive}retailers:\n  - {{name: drops, connector: file_drop, path: incoming}}\n",
        encoding="utf-8",
    )
    return path


def test_relative_paths_in_a_user_s_own_sources_stay_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    sources = resolve_sources(_own_sources(tmp_path / "conf", "archive: {root: raw}\n"))
    assert sources.archive.root == str(tmp_path / "conf" / "raw")
    assert sources.get("drops").path == tmp_path / "conf" / "incoming"


def test_sources_that_name_no_archive_keep_it_in_arbx_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    sources = resolve_sources(_own_sources(tmp_path / "conf", ""))
    assert sources.archive.root == str(tmp_path / "state" / "archive")
