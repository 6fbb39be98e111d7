"""Catalogue exports a user imports (``arbx import``): each retailer's file goes to its own
landing folder, and the state folder's ``sources.yaml`` gets one file-drop source per
retailer (its currency, whether stock is assumed). The file stays plain YAML the user can
read and edit; importing again updates the retailer's entry, never duplicates it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from arbx_dagster.domain.schema import RETAILER_NAME
from arbx_dagster.ingestion.connectors.file_drop import SUFFIXES
from arbx_dagster.ingestion.sources_file import load_sources

HEADER = (
    "# ArbX sources written by `arbx import` (edit freely; importing again updates the\n"
    "# retailer's entry). Reference for every key: sources.example.yaml.\n"
)


class CatalogueImportError(ValueError):
    """An import that cannot be done (bad retailer name, missing or unknown file)."""


@dataclass(frozen=True)
class CatalogueFile:
    retailer: str
    path: Path


def parse_pairs(pairs: list[str]) -> list[CatalogueFile]:
    """``walmart=exports/walmart.csv`` arguments, checked."""
    found = []
    for pair in pairs:
        retailer, sep, path = pair.partition("=")
        retailer = retailer.strip().lower()
        if not sep or not path:
            raise CatalogueImportError(f"expected RETAILER=FILE, got {pair!r}")
        if not RETAILER_NAME.match(retailer):
            raise CatalogueImportError(
                f"{retailer!r} cannot name a retailer: lower-case letters, digits, - and _, "
                "starting with a letter (e.g. walmart)"
            )
        file = Path(path).expanduser()
        if not file.is_file():
            raise CatalogueImportError(f"no such file: {file}")
        if file.suffix.lower() not in SUFFIXES:
            raise CatalogueImportError(f"{file}: expected one of {', '.join(sorted(SUFFIXES))}")
        found.append(CatalogueFile(retailer, file))
    retailers = [f.retailer for f in found]
    if len(set(retailers)) != len(retailers):
        raise CatalogueImportError("each retailer once: one export per retailer")
    return found


def land(file: CatalogueFile, landing: Path) -> Path:
    """Copy the export into its retailer's landing folder, written now: its prices are
    today's (a file's rows are observed when it was written)."""
    folder = landing / file.retailer
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file.path.name
    shutil.copyfile(file.path, target)
    return target


def write_sources(
    path: Path, files: list[CatalogueFile], *, currency: str, assume_in_stock: bool
) -> None:
    """Add (or update) one file-drop source per retailer in ``path`` (created if missing),
    then validate the result as ArbX will load it."""
    document: dict[str, Any] = {"version": 1, "archive": {"root": "archive"}, "retailers": []}
    if path.exists():
        document = yaml.safe_load(path.read_text()) or document
    entries = [e for e in document.get("retailers", []) if isinstance(e, dict)]
    for file in files:
        entry = {
            "name": file.retailer,
            "connector": "file_drop",
            "path": f"landing/{file.retailer}",
            "retailer": file.retailer,
            "currency": currency,
            "assume_in_stock": assume_in_stock,
        }
        entries = [e for e in entries if e.get("name") != file.retailer] + [entry]
    document["retailers"] = entries
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    scratch = path.with_suffix(".yaml.tmp")
    scratch.write_text(text)
    load_sources(scratch)  # a broken file is never left in place
    scratch.replace(path)
