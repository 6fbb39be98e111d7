"""Pulling values out of payloads: JMESPath over JSON, CSS over HTML, JSON embedded in HTML.

Stores change markup often, so every extractor returns ``None`` for "not found" and lets the
caller count it; nothing here guesses or substitutes a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import jmespath
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

_SPEC = re.compile(
    r"^(?P<selector>.*?)(?:::(?P<what>attrs?\((?P<attr>[^)]+)\)|text|texts))?$", re.S
)
_PROBE = LexborHTMLParser("<html><body><div></div></body></html>")


class PayloadError(ValueError):
    """A payload is not the format its source promised (bad JSON, no HTML)."""


@dataclass(frozen=True)
class CssSpec:
    """``selector``, ``selector::attr(name)``, ``selector::text``, ``selector::texts`` or
    ``selector::attrs(name)``.

    An empty selector means the item node itself (``::attr(data-sku)``); ``::texts`` and
    ``::attrs(name)`` return the text or attribute of every match (breadcrumbs, galleries).
    """

    selector: str
    what: Literal["text", "texts", "attr", "attrs"] = "text"
    attr: str | None = None

    @classmethod
    def parse(cls, spec: str) -> CssSpec:
        match = _SPEC.match(spec.strip())
        if match is None:  # pragma: no cover - the pattern matches any string
            raise ValueError(f"invalid CSS field spec {spec!r}")
        selector = match["selector"].strip()
        what = match["what"] or "text"
        if not selector and not match["what"]:
            raise ValueError("empty CSS selector")
        if not selector and what.startswith(("texts", "attrs")):
            raise ValueError(f"{spec!r}: ::{what.split('(')[0]} needs a selector")
        if selector:
            try:
                _PROBE.css(selector)
            except SelectolaxError as exc:
                raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
        if what.startswith("attr"):
            return cls(selector, what.split("(")[0], match["attr"].strip())  # type: ignore[arg-type]
        return cls(selector, what)  # type: ignore[arg-type]

    def extract(self, node: LexborNode) -> str | list[str] | None:
        if self.what == "texts":
            texts = [_text(n) for n in node.css(self.selector)]
            return [t for t in texts if t] or None
        if self.what == "attrs":
            values = [n.attributes.get(self.attr or "") for n in node.css(self.selector)]
            return [v.strip() for v in values if v and v.strip()] or None
        target = node.css_first(self.selector) if self.selector else node
        if target is None:
            return None
        if self.what == "attr":
            value = target.attributes.get(self.attr or "")
            return value.strip() if value else None
        return _text(target) or None


def _text(node: LexborNode) -> str:
    return " ".join(node.text(separator=" ").split())


def parse_html(content: bytes) -> LexborHTMLParser:
    return LexborHTMLParser(content.decode("utf-8", errors="replace"))


def load_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"response is not JSON: {exc}") from None


def json_value(data: Any, expression: str, **template: str) -> Any:
    """JMESPath search; ``{sku}``/``{product_id}`` in the expression pick one variant."""
    if template and "{" in expression:
        for key, value in template.items():
            expression = expression.replace(f"{{{key}}}", value.replace("'", "\\'"))
    return jmespath.search(expression, data)


def embedded_json(
    tree: LexborHTMLParser, kind: str, variable: str | None = None
) -> tuple[Any, str | None]:
    """The JSON a product page embeds, and why it could not be read (``None`` when fine)."""
    if kind == "next_data":
        node = tree.css_first("script#__NEXT_DATA__")
        if node is None:
            return None, "no <script id=__NEXT_DATA__>"
        return _loads(node.text(), "__NEXT_DATA__")
    if kind == "json_ld":
        return _json_ld_product(tree)
    if kind == "script_var":
        return _script_variable(tree, variable or "")
    return None, None


def _loads(text: str, what: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{what} is not valid JSON: {exc}"


def _json_ld_product(tree: LexborHTMLParser) -> tuple[Any, str | None]:
    """The schema.org Product node among the page's JSON-LD blocks (top level or @graph)."""
    errors = []
    for script in tree.css('script[type="application/ld+json"]'):
        data, error = _loads(script.text(), "JSON-LD")
        if error:
            errors.append(error)
            continue
        nodes = data if isinstance(data, list) else [data]
        for node in list(nodes):
            if isinstance(node, dict) and isinstance(node.get("@graph"), list):
                nodes.extend(node["@graph"])
        for node in nodes:
            kinds = node.get("@type") if isinstance(node, dict) else None
            if kinds == "Product" or (isinstance(kinds, list) and "Product" in kinds):
                return node, None
    return None, errors[0] if errors else "no JSON-LD Product"


def _script_variable(tree: LexborHTMLParser, variable: str) -> tuple[Any, str | None]:
    """``window.productJSON = {...};`` read with a JSON decoder, not a greedy regex."""
    pattern = re.compile(rf"(?:window\.)?{re.escape(variable)}\s*=\s*")
    decoder = json.JSONDecoder()
    for script in tree.css("script"):
        text = script.text()
        match = pattern.search(text)
        if match is None:
            continue
        try:
            value, _ = decoder.raw_decode(text, match.end())
        except json.JSONDecodeError as exc:
            return None, f"window.{variable} is not valid JSON: {exc}"
        return value, None
    return None, f"no window.{variable} on the page"
