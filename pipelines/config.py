"""Configuration: one TOML file plus environment variables.

The file names the warehouse and, per town (its INSEE code), the three
sources. Secrets never go in the file: a source whose URL carries a password
or a token names the environment variable that holds it (``*_env`` keys).

Lookup order for the file: ``$GUICHET_CONFIG``, ``./guichet.toml``,
``var/guichet.toml`` (written by ``guichet demo``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WAREHOUSE = "sqlite:///var/warehouse.sqlite"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class TownConfig:
    code: str
    name: str
    legacy_url: str
    portal_base: str
    treasury_root: str
    portal_token: str | None = field(default=None, repr=False)
    treasury_key_file: str | None = None  # SFTP private key (path), for sftp:// roots
    treasury_known_hosts: str | None = None  # known_hosts file pinning the SFTP host key
    siret: str | None = None  # the town's SIRET (the attributing body of the SCDL export)
    #: procedure code -> service level in days (overrides guichet's defaults)
    service_levels: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Config:
    warehouse_url: str
    landing_dir: Path
    towns: tuple[TownConfig, ...]
    path: Path | None = None

    def town(self, code: str) -> TownConfig:
        for t in self.towns:
            if t.code == code:
                return t
        raise ConfigError(f"town {code} is not configured (configured: "
                          f"{', '.join(t.code for t in self.towns) or 'none'})")


def config_path() -> Path | None:
    env = os.environ.get("GUICHET_CONFIG")
    if env:
        return Path(env)
    for p in (Path("guichet.toml"), Path("var/guichet.toml")):
        if p.exists():
            return p
    return None


def _value(section: dict, key: str, where: str, required: bool = True) -> str | None:
    env_key = section.get(f"{key}_env")
    if env_key:
        if env_key not in os.environ:
            raise ConfigError(f"{where}: environment variable {env_key} (for {key}) is not set")
        return os.environ[env_key]
    if key in section:
        return str(section[key])
    if required:
        raise ConfigError(f"{where}: missing '{key}' (or '{key}_env')")
    return None


def parse_config(data: dict, path: Path | None = None) -> Config:
    wh = data.get("warehouse", {})
    url = os.environ.get("GUICHET_WAREHOUSE_URL") or _value(wh, "url", "[warehouse]", False) \
        or DEFAULT_WAREHOUSE
    landing = Path(os.environ.get("GUICHET_LANDING_DIR") or wh.get("landing_dir") or "var/landing")
    towns = []
    for code, t in sorted(data.get("towns", {}).items()):
        where = f"[towns.{code}]"
        if not (isinstance(code, str) and code.isalnum() and len(code) == 5):
            raise ConfigError(f"{where}: a town is keyed by its 5-character INSEE code")
        towns.append(TownConfig(
            code=code, name=t.get("name", code),
            legacy_url=_value(t, "legacy_url", where),
            portal_base=_value(t, "portal_base", where),
            treasury_root=_value(t, "treasury_root", where),
            portal_token=_value(t, "portal_token", where, required=False),
            treasury_key_file=_value(t, "treasury_key_file", where, required=False),
            treasury_known_hosts=_value(t, "treasury_known_hosts", where, required=False),
            siret=_value(t, "siret", where, required=False),
            service_levels=_service_levels(t.get("service_levels", {}), where),
        ))
    return Config(url, landing, tuple(towns), path)


def _service_levels(section, where: str) -> dict:
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: service_levels must be a table (procedure = days)")
    for proc, days in section.items():
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ConfigError(f"{where}.service_levels: {proc} must be a whole number of days")
    return dict(section)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """The configuration in force; an empty one (no town) when there is no file."""
    p = Path(path) if path else config_path()
    if p is None:
        return parse_config({})
    if not p.exists():
        raise ConfigError(f"configuration file {p} does not exist")
    with p.open("rb") as fh:
        return parse_config(tomllib.load(fh), p)


def town_section(code: str, name: str, legacy_url: str, portal_base: str,
                 treasury_root: str, siret: str | None = None) -> str:
    """The TOML text configuring one town (used by the demo)."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return (f"[towns.{code}]\nname = {q(name)}\nlegacy_url = {q(legacy_url)}\n"
            f"portal_base = {q(portal_base)}\ntreasury_root = {q(treasury_root)}\n"
            + (f"siret = {q(siret)}\n" if siret else ""))
