"""Render a ``Report`` as one self-contained HTML page, with its charts in inline SVG.

One file that a service manager opens by double-click, e-mails or prints: inline CSS, charts
drawn here in SVG (no charting library, no script), system fonts, no image, no link to
anything outside the page; a Content-Security-Policy forbids the browser to fetch
anything even if a value looked like a URL. Every text is escaped. Figures are written the
French way through ``formatting`` (``1 234,56 €``, ``03/07/2026``, ``12,5 %``); every bar
and point of a chart carries its exact value in a tooltip, and values are written on the
bars when there is room.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from pipelines.reports import formatting as fr
from pipelines.reports.model import Chart, Report, Sheet

WIDTH, HEIGHT = 760, 340
LEFT, RIGHT, BOTTOM = 86, 16, 74
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#7F7F7F",
           "#000000")  # Okabe-Ito: told apart by colour-blind readers too
LABELS_MAX = 8  # values written on the bars when at most this many bars
NUMERIC = {"int", "cents", "pct", "hours", "days"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1b1b1b; }
header p { margin: .2rem 0; color: #444; }
h1 { font-size: 1.7rem; margin-bottom: .5rem; }
h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 2px solid #0072B2; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #c8cdd3; padding: .25rem .5rem; vertical-align: top; }
thead th { background: #dde5f0; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.note { font-style: italic; color: #444; }
.controles li { margin: .2rem 0; }
figure.graphique { margin: 1.5rem 0; }
figure.graphique figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg.chart .grid { stroke: #e3e6ea; }
svg.chart .baseline { stroke: #555; }
svg.chart .value { font-size: 10px; fill: #222; }
svg.chart .empty { fill: #666; font-style: italic; }
dl.definitions dt { font-weight: 600; margin-top: .6rem; }
dl.definitions dd { margin-left: 1.2rem; }
footer { margin-top: 3rem; color: #666; font-size: .85rem; }
@media print { h2 { break-before: page; } thead th { position: static; } }
"""


def e(value) -> str:
    return escape(str(value), quote=True)


def render_html(report: Report) -> str:
    """The whole page as a string."""
    by_sheet: dict[str, list[Chart]] = {}
    for c in report.charts:
        report.sheet(c.sheet)  # a chart on an unknown sheet is a programming error
        by_sheet.setdefault(c.sheet, []).append(c)
    period = fr.period_fr(report.start, report.end)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="fr"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="guichet">',
        f"<title>{e(report.title)} — {e(report.town_name)} — {e(period)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>{e(report.title)}</h1>",
        f"<p>Commune : <strong>{e(report.town_name)}</strong> ({e(report.town)})</p>",
        f"<p>Période : <strong>{e(period)}</strong></p>",
        (f"<p>Généré le {e(fr.datetime_fr(report.generated_at))} (heure de Paris) "
         "par guichet</p></header>"),
        _contents(report),
        _checks(report),
    ]
    chart_no = 0
    for i, sheet in enumerate(report.sheets, start=1):
        parts.append(f'<section id="feuille-{i}"><h2>{e(sheet.name)}</h2>')
        for chart in by_sheet.get(sheet.name, []):
            chart_no += 1
            parts.append(render_chart(report, chart, f"graphique-{chart_no}"))
        parts.append(_table(sheet))
        parts.append("</section>")
    parts.append(_definitions(report))
    parts.append("<footer>Montants en euros ; dates au format jj/mm/aaaa ; "
                 "semaines ISO (S27 = 27ᵉ semaine). Les définitions de chaque colonne "
                 "figurent en fin de page.</footer></body></html>")
    return "\n".join(parts)


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def _contents(report: Report) -> str:
    items = "".join(f'<li><a href="#feuille-{i}">{e(s.name)}</a> — {e(s.title)}</li>'
                    for i, s in enumerate(report.sheets, start=1))
    return (f'<nav aria-label="Sommaire"><h2>Sommaire</h2><ol>{items}'
            '<li><a href="#controles">Contrôles</a></li>'
            '<li><a href="#definitions">Définitions</a></li></ol></nav>')


def _checks(report: Report) -> str:
    if not report.checks:
        return ('<section id="controles"><h2>Contrôles</h2>'
                "<p>Aucun contrôle n'accompagne ce rapport.</p></section>")
    items = "".join(f"<li>✓ {e(c)}</li>" for c in report.checks)
    return f'<section id="controles"><h2>Contrôles</h2><ul class="controles">{items}</ul></section>'


def _table(sheet: Sheet) -> str:
    cols = sheet.columns
    head = "".join(f'<th scope="col" title="{e(c.definition)}">{e(c.header)}</th>' for c in cols)
    rows = []
    for values in sheet.frame[[c.name for c in cols]].itertuples(index=False):
        cells = []
        for c, v in zip(cols, values):
            cls = ' class="num"' if c.kind in NUMERIC or c.kind == "date" else ""
            cells.append(f"<td{cls}>{e(fr.cell(v, c.kind))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(cols)}">Aucune ligne pour la période.</td></tr>')
    note = f'<p class="note">{e(sheet.note)}</p>' if sheet.note else ""
    return (f"<table><caption>{e(sheet.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}")


def _definitions(report: Report) -> str:
    out = ['<section id="definitions"><h2>Définitions</h2>']
    for s in report.sheets:
        out.append(f"<h3>{e(s.name)}</h3><dl class=\"definitions\">")
        out.extend(f"<dt>{e(c.header)}</dt><dd>{e(c.definition)}</dd>" for c in s.columns)
        out.append("</dl>")
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------ charts
def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (lo <= 0 <= hi), about n of them."""
    if hi == lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def chart_data(report: Report, chart: Chart):
    """(x kind, category labels, series kind, [(header, values)]) of a chart."""
    sheet = report.sheet(chart.sheet)
    cols = {c.name: c for c in sheet.columns}
    for name in (chart.x, *chart.series, *chart.filter):
        if name not in sheet.frame.columns:
            raise ValueError(f"chart {chart.title!r}: sheet {sheet.name} has no column {name!r}")
    frame = sheet.frame
    for k, v in chart.filter.items():
        frame = frame[frame[k] == v]
    xkind = cols[chart.x].kind if chart.x in cols else "text"
    kinds = {cols[s].kind if s in cols else "int" for s in chart.series}
    if len(kinds) > 1:
        raise ValueError(f"chart {chart.title!r}: series of different kinds {sorted(kinds)}")
    skind = kinds.pop() if kinds else "int"
    labels = [fr.axis(v, xkind) for v in frame[chart.x]]
    series = []
    for s in chart.series:
        header = cols[s].header if s in cols else s
        values = [float(v) if fr.is_finite(v) else None for v in frame[s]]
        series.append((header, values))
    return xkind, labels, skind, series


def render_chart(report: Report, chart: Chart, ident: str) -> str:
    """One ``<figure>`` holding the chart's ``<svg>``."""
    _, labels, kind, series = chart_data(report, chart)
    legend, legend_h = _legend([h for h, _ in series])
    top = 16 + legend_h
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM
    parts = [(f'<svg class="chart chart-{e(chart.kind)}" '
              f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
              f'aria-labelledby="{ident}-t" data-kind="{e(chart.kind)}">'),
             f'<title id="{ident}-t">{e(chart.title)}</title>', legend]
    if not labels or all(v is None for _, vs in series for v in vs):
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{top + plot_h / 2}" '
                     'text-anchor="middle">Aucune donnée pour la période.</text></svg>')
        return _figure(chart, "".join(parts))
    lo, hi = _range(chart.kind, series)
    ticks = nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)

    def y(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    parts.append(_axes(ticks, kind, y, top, plot_w, plot_h))
    band = plot_w / len(labels)
    parts.append(_x_labels(labels, band, top + plot_h))
    draw = {"bar": _bars, "stacked": _stacked, "line": _lines}.get(chart.kind)
    if draw is None:
        raise ValueError(f"chart {chart.title!r}: unknown kind {chart.kind!r}")
    parts.append(draw(labels, series, kind, band, y))
    parts.append("</svg>")
    return _figure(chart, "".join(parts))


def _figure(chart: Chart, svg: str) -> str:
    return f'<figure class="graphique"><figcaption>{e(chart.title)}</figcaption>{svg}</figure>'


def _range(kind: str, series) -> tuple[float, float]:
    values = [v for _, vs in series for v in vs if v is not None]
    if kind == "stacked":
        n = len(series[0][1])
        pos = [sum(max(vs[i] or 0, 0) for _, vs in series) for i in range(n)]
        neg = [sum(min(vs[i] or 0, 0) for _, vs in series) for i in range(n)]
        values = pos + neg
    return min([0.0, *values]), max([0.0, *values])


def _legend(headers: list[str]) -> tuple[str, int]:
    """Legend items laid out in rows across the chart's width."""
    out, x, row = ['<g class="legend">'], LEFT, 0
    for i, h in enumerate(headers):
        w = 22 + 7 * len(h) + 18
        if x + w > WIDTH - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        yy = 10 + row * 18
        out.append(f'<g class="legend-item"><rect x="{x}" y="{yy}" width="12" height="12" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/><text x="{x + 17}" y="{yy + 10}">'
                   f'{e(h)}</text></g>')
        x += w
    out.append("</g>")
    return "".join(out), 18 * (row + 1) + 6


def _axes(ticks, kind: str, y, top: float, plot_w: float, plot_h: float) -> str:
    out = ['<g class="axis axis-y">']
    for t in ticks:
        yy = y(t)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" '
                   f'y2="{yy:.1f}"/><text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                   f'{e(fr.axis(t, kind))}</text>')
    out.append(f'<line class="baseline" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" '
               f'y2="{y(0):.1f}"/><line class="baseline" x1="{LEFT}" x2="{LEFT}" y1="{top}" '
               f'y2="{top + plot_h}"/></g>')
    return "".join(out)


def _x_labels(labels: list[str], band: float, base: float) -> str:
    every = max(1, math.ceil(len(labels) / 16))
    rotate = len(labels) > 6
    out = ['<g class="axis axis-x">']
    for i, lab in enumerate(labels):
        if i % every:
            continue
        x = LEFT + band * (i + 0.5)
        if rotate:
            out.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="end" '
                       f'transform="rotate(-35 {x:.1f} {base + 14})">{e(lab)}</text>')
        else:
            out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{e(lab)}</text>')
    out.append("</g>")
    return "".join(out)


def _tip(header: str, label: str, v: float, kind: str) -> str:
    return f"<title>{e(header)} — {e(label)} : {e(fr.cell(_native(v, kind), kind))}</title>"


def _native(v: float, kind: str):
    """A chart value back in its column's unit (cents and counts are whole numbers)."""
    return round(v) if kind in ("cents", "int") else v


def _bars(labels, series, kind, band, y) -> str:
    group = band * 0.8
    width = group / len(series)
    written = len(labels) * len(series) <= LABELS_MAX
    out = ['<g class="series">']
    for s, (header, values) in enumerate(series):
        out.append(f'<g class="bars" data-series="{e(header)}" '
                   f'fill="{PALETTE[s % len(PALETTE)]}">')
        for i, v in enumerate(values):
            if v is None:
                continue
            x = LEFT + band * i + (band - group) / 2 + width * s
            y0, y1 = sorted((y(0), y(v)))
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y0:.1f}" width="{width * 0.92:.1f}" '
                       f'height="{max(y1 - y0, 0.5):.1f}">{_tip(header, labels[i], v, kind)}'
                       '</rect>')
            if written:
                out.append(f'<text class="value" x="{x + width * 0.46:.1f}" y="{y0 - 4:.1f}" '
                           f'text-anchor="middle">{e(fr.cell(_native(v, kind), kind))}</text>')
        out.append("</g>")
    out.append("</g>")
    return "".join(out)


def _stacked(labels, series, kind, band, y) -> str:
    width = band * 0.6
    pos = [0.0] * len(labels)
    neg = [0.0] * len(labels)
    out = ['<g class="series">']
    for s, (header, values) in enumerate(series):
        out.append(f'<g class="bars" data-series="{e(header)}" '
                   f'fill="{PALETTE[s % len(PALETTE)]}">')
        for i, v in enumerate(values):
            if v is None or v == 0:
                continue
            base = pos if v > 0 else neg
            a, b = base[i], base[i] + v
            base[i] = b
            y0, y1 = sorted((y(a), y(b)))
            x = LEFT + band * i + (band - width) / 2
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y0:.1f}" width="{width:.1f}" '
                       f'height="{max(y1 - y0, 0.5):.1f}">{_tip(header, labels[i], v, kind)}'
                       '</rect>')
        out.append("</g>")
    if len(labels) <= LABELS_MAX:
        for i, lab in enumerate(labels):
            total = sum(vs[i] or 0 for _, vs in series)
            x = LEFT + band * (i + 0.5)
            out.append(f'<text class="value total" x="{x:.1f}" y="{y(pos[i]) - 4:.1f}" '
                       f'text-anchor="middle">{e(fr.cell(_native(total, kind), kind))}</text>')
    out.append("</g>")
    return "".join(out)


def _lines(labels, series, kind, band, y) -> str:
    out = ['<g class="series">']
    for s, (header, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        pts = [(LEFT + band * (i + 0.5), y(v), i, v) for i, v in enumerate(values)
               if v is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in pts)
        out.append(f'<g class="line" data-series="{e(header)}"><polyline class="series-line" '
                   f'fill="none" stroke="{colour}" stroke-width="2.5" points="{path}"/>')
        for px, py, i, v in pts:
            out.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3.5" '
                       f'fill="{colour}">{_tip(header, labels[i], v, kind)}</circle>')
        out.append("</g>")
    out.append("</g>")
    return "".join(out)
