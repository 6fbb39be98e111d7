"""The retailers ArbX reads (``sources.yaml``) and the raw-payload archive, as a resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.sources import (
    FileDropSource,
    SourcesConfig,
    default_sources_path,
    load_sources,
)


def _anchor(path: str | Path, base: Path) -> str:
    """Relative local paths in sources.yaml are relative to the file, not to the cwd."""
    text = str(path)
    if "://" in text or Path(text).is_absolute():
        return text
    return str((base / text).resolve())


def resolve_sources(path: str | Path | None = None) -> SourcesConfig:
    """Load and validate sources.yaml, anchoring its relative folders to the file."""
    source_path = Path(path) if path else default_sources_path()
    config = load_sources(source_path)
    base = source_path.resolve().parent
    retailers = [
        s.model_copy(update={"path": Path(_anchor(s.path, base))})
        if isinstance(s, FileDropSource)
        else s
        for s in config.retailers
    ]
    archive = config.archive.model_copy(update={"root": _anchor(config.archive.root, base)})
    return config.model_copy(update={"retailers": retailers, "archive": archive})


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
