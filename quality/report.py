"""The HTML summary of a run's validations, rendered from ``validation_result``.

Written as a self-contained file beside the landing area
(``reports/<town>/validation-<run_id>.html``, linked from the Dagster run's
metadata) and served by the steward web page (``/controles/<run_id>``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from quality import store
from quality.flags import SEVERITY_FR, Filters, count_flags, counts_by, rule_title
from schemas.tables import table

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["fr_number"] = lambda n: f"{n:,}".replace(",", "\u202f") if isinstance(
        n, int) else n
    env.filters["fr_datetime"] = lambda d: d.strftime("%d/%m/%Y %H:%M") if d else ""
    env.globals["severity_fr"] = SEVERITY_FR
    env.globals["rule_title"] = rule_title
    return env


def run_summary(conn: sa.Connection, town: str, run_id: str) -> dict:
    """Every expectation of the run, grouped by suite, with totals."""
    v = table("validation_result")
    rows = conn.execute(sa.select(v).where(v.c.town == town, v.c.run_id == run_id)
                        .order_by(v.c.suite, v.c.check_kind.desc(), v.c.rule)).mappings().all()
    suites: dict[str, dict] = {}
    for r in rows:
        s = suites.setdefault(r["suite"], {"name": r["suite"], "results": [], "failed": 0,
                                           "structural_failed": 0, "rows": 0, "ms": 0})
        item = dict(r)
        item["sample"] = store.loads(r["unexpected_sample"]) or {}
        s["results"].append(item)
        s["rows"] = max(s["rows"], r["element_count"] or 0)
        s["ms"] += r["duration_ms"] or 0
        if not r["success"]:
            s["failed"] += 1
            if r["check_kind"] == "structural":
                s["structural_failed"] += 1
    lr = table("load_run")
    run = conn.execute(sa.select(lr).where(lr.c.town == town, lr.c.run_id == run_id)
                       ).mappings().first()
    ordered = sorted(suites.values(), key=lambda s: (-s["structural_failed"], -s["failed"],
                                                     s["name"]))
    return {
        "town": town, "run_id": run_id, "run": dict(run) if run else None,
        "suites": ordered, "expectations": len(rows),
        "failed": sum(1 for r in rows if not r["success"]),
        "structural_failed": sum(1 for r in rows if not r["success"]
                                 and r["check_kind"] == "structural"),
        "open_flags": count_flags(conn, town, Filters(status="open")),
        "open_by_severity": counts_by(conn, town, "severity", Filters(status="open")),
        "generated_at": store.utcnow(),
    }


def render_run_report(conn: sa.Connection, town: str, run_id: str, *,
                      standalone: bool = True, base: str = "") -> str:
    summary = run_summary(conn, town, run_id)
    css = (STATIC / "style.css").read_text(encoding="utf-8") if standalone else None
    return environment().get_template("validation_report.html").render(
        s=summary, inline_css=css, base=base)


def report_path(report_dir: Path, town: str, run_id: str) -> Path:
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_T")
    return Path(report_dir) / town / f"validation-{safe}.html"


def write_run_report(engine: sa.Engine, town: str, run_id: str, report_dir: Path) -> Path:
    """Write (or rewrite) the run's summary; its path."""
    with engine.connect() as conn:
        html = render_run_report(conn, town, run_id)
    path = report_path(report_dir, town, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
