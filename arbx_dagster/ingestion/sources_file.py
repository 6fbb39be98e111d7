"""Reading ``sources.yaml``: where it is, ``${VAR}`` expansion, and validation errors that
say where the problem is (``sources.yaml:14: retailers[1] (ripley).listing.pagination.kind:
must be one of page, cursor, offset, none (got 'pages')``) rather than failing mid-scrape —
adding a retailer is an edit to this file, so it is validated up front.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from arbx_dagster.ingestion.sources import SourcesConfig


class SourcesError(ValueError):
    """``sources.yaml`` is missing or wrong; the message lists every problem with its place."""


def load_sources(path: str | Path, environ: Mapping[str, str] | None = None) -> SourcesConfig:
    """Read and validate ``sources.yaml``; raise :class:`SourcesError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError(f"{path}: cannot read sources file ({exc.strerror or exc})") from None
    return parse_sources(text, origin=str(path), environ=environ)


def parse_sources(
    text: str, origin: str = "sources.yaml", environ: Mapping[str, str] | None = None
) -> SourcesConfig:
    """Validate YAML text. ``${VAR}`` / ``${VAR:-default}`` in values (not comments) expand
    from ``environ`` (default: the process environment); a default may itself hold
    references (``${ARBX_ARCHIVE:-${ARBX_HOME:-.arbx}/archive}``), read only when needed."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise SourcesError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SourcesError(f"{origin}: expected a mapping with a 'retailers' list at the top")
    data = _expand_env(data, (), root, origin, os.environ if environ is None else environ)
    try:
        return SourcesConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(error, data, root, origin) for error in exc.errors()]
        raise SourcesError("\n".join(lines)) from None


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand_env(
    value: Any,
    loc: tuple[Any, ...],
    root: yaml.Node | None,
    origin: str,
    environ: Mapping[str, str],
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*loc, k), root, origin, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*loc, i), root, origin, environ) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def unset(name: str) -> str:
        line = _line_of(root, loc)
        where = f"{origin}:{line}" if line else origin
        raise SourcesError(
            f"{where}: {_loc_text(loc, {})}: environment variable {name} is not set "
            f"(use ${{{name}:-default}} for a default)"
        )

    return _substitute(value, environ, unset)


def _substitute(text: str, environ: Mapping[str, str], unset: Callable[[str], str]) -> str:
    """Expand ``${NAME}`` and ``${NAME:-default}`` (a default is expanded in turn, only when
    used); anything else between ``${`` and ``}`` is kept as written."""
    out: list[str] = []
    done = 0
    while (start := text.find("${", done)) >= 0:
        end = _closing_brace(text, start + 2)
        if end < 0:
            break
        name, has_default, default = text[start + 2 : end].partition(":-")
        out.append(text[done:start])
        if not _ENV_NAME.fullmatch(name):
            out.append(text[start : end + 1])
        elif name in environ:
            out.append(environ[name])
        elif has_default:
            out.append(_substitute(default, environ, unset))
        else:
            out.append(unset(name))
        done = end + 1
    return "".join(out) + text[done:]


def _closing_brace(text: str, position: int) -> int:
    """Where the ``}`` closing a ``${`` opened just before ``position`` is (-1: nowhere)."""
    depth = 1
    while position < len(text):
        if text.startswith("${", position):
            depth += 1
            position += 2
            continue
        if text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return -1


def _describe(error: Any, data: dict[str, Any], root: yaml.Node | None, origin: str) -> str:
    loc = _clean_loc(tuple(error["loc"]))
    if error["type"].startswith("union_tag"):
        loc = (*loc, "connector")
    where = _loc_text(loc, data)
    line = _line_of(root, loc)
    prefix = f"{origin}:{line}" if line else origin
    return f"{prefix}: {where or '(top)'}: {_message(error)}"


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's internal steps (union tags, ``[key]``) from an error location."""
    kinds = {"http_json", "html", "file_drop", "simulator"}
    cleaned: list[Any] = []
    for i, step in enumerate(loc):
        if step in kinds and i > 0 and isinstance(loc[i - 1], int):
            continue
        if step == "[key]" or (isinstance(step, str) and step.startswith("function-")):
            continue
        cleaned.append(step)
    return tuple(cleaned)


def _loc_text(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """``retailers[1] (ripley).listing.pagination.kind`` from pydantic's location tuple."""
    text = ""
    for i, step in enumerate(loc):
        if not isinstance(step, int):
            text += f".{step}" if text else str(step)
            continue
        text += f"[{step}]"
        if i == 1 and loc[0] == "retailers" and step < len(data.get("retailers") or []):
            entry = data["retailers"][step]
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                text += f" ({entry['name']})"
    return text


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node the error location reaches."""
    node, line = root, None
    for step in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
            if node is None:  # a missing key: point at the mapping that lacks it
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            break
    return node.start_mark.line + 1 if node is not None else line


_PATTERN_HINTS = {
    r"^[a-z][a-z0-9_-]*$": "must be lower case letters, digits, '-' or '_', starting with a letter",
    r"^https?://": "must start with http:// or https://",
}


def _message(error: Any) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(expected)} (got {value!r})"
    if kind == "union_tag_invalid":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        return f"must be one of {', '.join(expected)} (got {ctx.get('tag')!r})"
    if kind == "union_tag_not_found":
        return "missing 'connector' (http_json, html, file_drop or simulator)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERN_HINTS.get(pattern, f"must match {pattern}") + f" (got {value!r})"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see sources.example.yaml)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
