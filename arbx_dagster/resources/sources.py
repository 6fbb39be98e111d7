"""The retailers ArbX reads (``sources.yaml``) and the raw-payload archive, as a resource."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.sources import FileDropSource, SourcesConfig
from arbx_dagster.ingestion.sources_file import load_sources
from arbx_dagster.settings import Settings

DEFAULT_FILE = "sources.example.yaml"
DEFAULT_FILE_IN_HOME = "sources.yaml"  # in ARBX_HOME: what `arbx import` writes


def default_sources_path(settings: Settings | None = None) -> Path:
    """``ARBX_SOURCES``, else the state folder's ``sources.yaml`` (what ``arbx import``
    writes), else the documented example: the working folder's, else the one shipped in
    the package (the repository's top-level file, linked), so an installed ArbX runs."""
    settings = settings or Settings.from_env()
    if settings.sources:
        return settings.sources
    # An installed package is a folder on disk, so its data files are plain paths.
    shipped = Path(str(resources.files("arbx_dagster") / DEFAULT_FILE))
    for candidate in (
        settings.home / DEFAULT_FILE_IN_HOME,
        Path.cwd() / DEFAULT_FILE,
        shipped,
    ):
        if candidate.exists():
            return candidate
    return Path(DEFAULT_FILE)


def _anchor(path: str | Path, base: Path) -> str:
    """Relative local paths in sources.yaml are relative to the file, not to the cwd."""
    text = str(path)
    if "://" in text or Path(text).is_absolute():
        return text
    return str((base / text).resolve())


def resolve_sources(path: str | Path | None = None) -> SourcesConfig:
    """Load and validate sources.yaml, anchoring its relative folders to the file.

    ``${ARBX_HOME}`` in it is ArbX's state folder as the rest of ArbX resolves it (absolute;
    default ``.arbx`` in the current directory), so the example's archive and landing
    folders (``${ARBX_ARCHIVE:-${ARBX_HOME:-.arbx}/archive}``) live there; so does the
    archive of a file that names no ``archive.root``."""
    source_path = Path(path) if path else default_sources_path()
    home = Settings.from_env().home
    config = load_sources(source_path, environ={**os.environ, "ARBX_HOME": str(home)})
    base = source_path.resolve().parent
    retailers = [
        s.model_copy(update={"path": Path(_anchor(s.path, base))})
        if isinstance(s, FileDropSource)
        else s
        for s in config.retailers
    ]
    given = "root" in config.archive.model_fields_set
    root = config.archive.root if given else str(home / "archive")
    archive = config.archive.model_copy(update={"root": _anchor(root, base)})
    return config.model_copy(update={"retailers": retailers, "archive": archive})


def configured_retailers() -> list[str]:
    """Every retailer an enabled source of the configured sources.yaml provides now."""
    return resolve_sources().provided_retailers()


class SourcesResource(dg.ConfigurableResource):
    """Where prices come from: connectors per retailer, and the archive they write to."""

    path: str | None = Field(
        default=None, description="sources.yaml (ARBX_SOURCES); default: sources.example.yaml"
    )
    _config: SourcesConfig | None = PrivateAttr(default=None)

    @property
    def config(self) -> SourcesConfig:
        if self._config is None:
            self._config = resolve_sources(self.path)
        return self._config

    @property
    def archive(self) -> Archive:
        return Archive.from_config(self.config.archive)
