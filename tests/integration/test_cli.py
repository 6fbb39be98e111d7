"""The `arbx` command: help everywhere, status health and exit codes, audited config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.cli import app

runner = CliRunner()


@pytest.fixture
def embedded_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ARBX_POSTGRES_URL", "ARBX_REDIS_URL", "DAGSTER_HOME", "ARBX_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize(
    "command", [[], ["demo"], ["status"], ["ui"], ["config"], ["config", "set"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of ``arbx``, as the words that invoke it."""
    subcommands = getattr(command, "commands", {})
    return [path] + [p for n, c in subcommands.items() for p in _command_paths(c, (*path, n))]


ALL_COMMANDS = _command_paths(typer.main.get_command(app))


def _help_at_80_columns(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "arbx")
def test_help_reads_at_80_columns(path: tuple[str, ...]) -> None:
    text = _help_at_80_columns(path)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "<bool>" not in text  # a flag takes no value
    for line in text.splitlines():  # an option's names in full, before its help
        names = line.strip().split("  ")[0]
        assert not names.startswith("-") or "…" not in names, line


def test_help_names_flags_in_full_and_dates_as_dates() -> None:
    assert len(ALL_COMMANDS) > 20  # sub-commands included
    serve = _help_at_80_columns(("serve",))
    assert "--proxy-headers / --no-proxy-headers" in serve
    backfill = _help_at_80_columns(("backfill",))
    assert "--from YYYY-MM-DD" in backfill and "--to YYYY-MM-DD" in backfill
    assert "--retailer NAME" in backfill


def test_config_set_takes_a_negative_value_as_the_value(embedded_home: Path) -> None:
    """No `--` needed: the setting's own rule answers (money is never negative)."""
    for args in (["min_margin", "-5"], ["min_margin", "-5", "--actor", "ops"]):
        result = runner.invoke(app, ["config", "set", *args])
        assert result.exit_code == 2, result.output
        assert "min_margin_clp must not be negative, got '-5'" in result.output
        assert "No such option" not in result.output
    typo = runner.invoke(app, ["config", "set", "min_margin", "5000", "--actr", "ops"])
    assert typo.exit_code == 2 and "--actr" in typo.output  # still refused, named


def test_status_on_a_fresh_machine_is_healthy_and_says_what_to_do(embedded_home: Path) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    components = {c["name"]: c for c in payload["components"]}
    assert set(components) == {"warehouse", "cache", "dagster"}
    assert "arbx demo" in components["warehouse"]["detail"]
    assert all(c["ok"] for c in components.values())


def test_status_fails_when_a_configured_component_is_down(
    embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 1
    cache = next(c for c in json.loads(result.stdout)["components"] if c["name"] == "cache")
    assert cache == cache | {"ok": False, "configured": True, "backend": "redis"}


def test_status_with_postgres_unreachable_exits_1_and_says_why(
    embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # status may set it: undone after
    monkeypatch.setenv("ARBX_POSTGRES_URL", "postgresql://postgres:pw-7@127.0.0.1:1/arbx")
    result = runner.invoke(app, ["status"], env={"COLUMNS": "160"})
    assert result.exit_code == 1
    assert "ArbX is not healthy: warehouse (postgres), dagster (PostgresRunStorage) down." in (
        result.output
    )
    assert "Connection refused" in result.output and "127.0.0.1" in result.output
    assert "pw-7" not in result.output  # the URL is shown without its password
    as_json = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    warehouse = next(c for c in as_json["components"] if c["name"] == "warehouse")
    assert warehouse == warehouse | {"ok": False, "configured": True, "backend": "postgres"}


def test_config_set_validates_and_is_audited(embedded_home: Path) -> None:
    ok = runner.invoke(app, ["config", "set", "min_roi_pct", "12.5", "--actor", "ops"])
    assert ok.exit_code == 0, ok.output
    assert "min_roi_pct = 12.5" in ok.output
    bad = runner.invoke(app, ["config", "set", "min_roi_pct", "lots", "--actor", "ops"])
    assert bad.exit_code == 2
    assert "expects float" in bad.output
    shown = runner.invoke(app, ["config", "show"])
    assert "12.5" in shown.output

    from arbx_dagster.storage.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(embedded_home / "warehouse.duckdb") as warehouse:
        outcomes = warehouse.query("SELECT outcome FROM audit_log ORDER BY id")["outcome"]
    assert outcomes[0] == "ok" and outcomes[1].startswith("rejected")


@pytest.mark.services
def test_status_on_postgres_and_redis(
    embedded_home: Path, postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBX_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("ARBX_REDIS_URL", redis_url)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    components = {c["name"]: c for c in json.loads(result.stdout)["components"]}
    assert components["warehouse"]["backend"] == "postgres"
    assert components["cache"]["backend"] == "redis"
    assert components["dagster"]["backend"] == "PostgresRunStorage"
    assert all(c["ok"] and c["configured"] for c in components.values())


def test_watch_rules_can_be_added_listed_and_removed(embedded_home: Path) -> None:
    added = runner.invoke(
        app,
        [
            "watch",
            "add",
            "target_price",
            "--target-price",
            "299990",
            "--id",
            "tv",
            "--retailer",
            "Paris",
            "--first-party-only",
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["watch", "list"])
    assert "tv" in listed.output and "299990" in listed.output and "paris" in listed.output
    invalid = runner.invoke(app, ["watch", "add", "target_price"])
    assert invalid.exit_code == 2 and "positive target_price" in invalid.output
    assert runner.invoke(app, ["watch", "remove", "tv"]).exit_code == 0
    assert runner.invoke(app, ["watch", "remove", "tv"]).exit_code == 1


def _sources_for(folder: Path, retailers: dict[str, bool]) -> Path:
    """A sources.yaml with one file-drop source per retailer (enabled or not)."""
    lines = ["version: 1", f"archive: {{root: {folder / 'archive'}}}", "retailers:"]
    for retailer, enabled in retailers.items():
        lines += [
            f"  - name: {retailer}-exports",
            "    connector: file_drop",
            f"    enabled: {str(enabled).lower()}",
            f"    path: {folder / 'landing'}",
            f"    retailer: {retailer}",
        ]
    path = folder / "sources.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_enabled_retailers_must_be_provided_by_an_enabled_source(
    embedded_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources_for(tmp_path, {"abt": True, "buy": True, "lider": False})
    monkeypatch.setenv("ARBX_SOURCES", str(sources))

    ok = runner.invoke(app, ["config", "set", "enabled_retailers", "abt,buy", "--actor", "ops"])
    assert ok.exit_code == 0, ok.output
    assert 'enabled_retailers = ["abt", "buy"]' in ok.output

    for unknown in ("abt,walmart", "lider"):  # lider's only source is disabled
        bad = runner.invoke(app, ["config", "set", "enabled_retailers", unknown])
        assert bad.exit_code == 2, bad.output
        assert "sources.yaml provides: abt, buy" in bad.output
    shown = runner.invoke(app, ["config", "show"])
    assert "walmart" not in shown.output and "lider" not in shown.output


def test_a_watch_rule_must_say_what_it_watches(embedded_home: Path) -> None:
    unscoped = runner.invoke(app, ["watch", "add", "back_in_stock"])
    assert unscoped.exit_code == 2
    assert "--product, --sku, --retailer or --category" in unscoped.output
    assert "w-" not in runner.invoke(app, ["watch", "list"]).output  # nothing was saved


def test_a_watch_rule_on_a_product_that_does_not_exist_is_refused(embedded_home: Path) -> None:
    missing = runner.invoke(app, ["watch", "add", "back_in_stock", "--product", "cp-nope"])
    assert missing.exit_code == 2
    assert "no product cp-nope" in missing.output

    from arbx_dagster.storage.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(embedded_home / "warehouse.duckdb") as warehouse:
        warehouse.execute(
            "INSERT INTO canonical_products (canonical_id, title, n_listings, n_retailers, "
            "updated_at) VALUES ('cp-tv', 'Smart TV 55', 2, 2, now())"
        )
    known = runner.invoke(app, ["watch", "add", "back_in_stock", "--product", "cp-tv"])
    assert known.exit_code == 0, known.output
