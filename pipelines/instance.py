"""The Dagster instance: SQLite under var/dagster, or PostgreSQL when configured.

``dagster.yaml`` at the top of the project is the template; its relative
SQLite path is made absolute, and its storage switched to PostgreSQL when
``GUICHET_DAGSTER_PG_URL`` is set. The result is written to ``$DAGSTER_HOME``
(default ``var/dagster``) so ``dagster dev`` and ``guichet`` share one instance.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "GUICHET_DAGSTER_PG_URL"


def instance_config(template: Path | None = None, root: Path | None = None) -> dict:
    root = root or Path.cwd()
    template = template or PROJECT_ROOT / "dagster.yaml"
    cfg = yaml.safe_load(template.read_text()) or {}
    if os.environ.get(PG_ENV):
        cfg["storage"] = {"postgres": {"postgres_url": {"env": PG_ENV}}}
    else:
        base = Path(cfg.get("storage", {}).get("sqlite", {}).get("base_dir", "var/dagster/storage"))
        if not base.is_absolute():
            base = root / base
        cfg["storage"] = {"sqlite": {"base_dir": str(base)}}
    return cfg


def prepare_home(home: Path | None = None) -> Path:
    """Write the instance's dagster.yaml into DAGSTER_HOME and export DAGSTER_HOME."""
    home = Path(home or os.environ.get("DAGSTER_HOME") or Path.cwd() / "var" / "dagster")
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(instance_config(), sort_keys=False)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def get_instance():
    from dagster import DagsterInstance

    prepare_home()
    return DagsterInstance.get()
