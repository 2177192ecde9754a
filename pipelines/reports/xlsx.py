"""Render a ``Report`` as an Excel workbook the finance team can check and reuse.

Cells hold numbers and dates, not text: euros are numbers with a currency format (the
team sums them), dates are dates (they sort and filter). The number-format codes are
Excel's locale-independent ones (``#,##0.00`` means "thousands, two decimals"): a French
Excel or LibreOffice shows ``1 234,56 €``, ``03/07/2026``, ``12,5 %``; month names carry
the French locale tag so ``juillet 2026`` reads in French whatever the reader's Excel.

Sheets: "Sommaire" (title, town, period, generated at, contents, checks), one sheet per
table (header row in bold, frozen, filterable), then "Définitions" (sheet, column,
definition).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipelines.reports import formatting as fr
from pipelines.reports.model import Column, Report, Sheet

COVER = "Sommaire"
DEFINITIONS = "Définitions"

#: Excel number format of each column kind
NUMBER_FORMATS = {
    "text": "@",
    "int": "#,##0",
    "cents": '#,##0.00\\ "€"',
    "pct": "0.0%",
    "date": "DD/MM/YYYY",
    "month": "[$-40C]mmmm yyyy",  # 40C: French (France) month names
    "week": "@",
    "hours": "#,##0.0",
    "days": "#,##0.0",
}
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")
TITLE_FONT = Font(bold=True, size=14)
MAX_WIDTH = 60
_FORBIDDEN = set('[]:*?/\\')


def cell_value(value, kind: str):
    """What a cell of that column kind holds: a number, a date or text (None if missing)."""
    if fr.missing(value):
        return None
    if kind == "cents":
        return fr.cents_to_euros(value)
    if kind == "int":
        return int(value)
    if kind in ("pct", "hours", "days"):
        return float(value)
    if kind == "date":
        return fr.as_date(value)
    if kind == "month":
        return fr.month_start(value)
    if kind == "week":
        return fr.week_fr(value)
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _put(ws, row: int, col: int, value):
    """Write a cell; text that starts with ``=`` stays text (never a formula: names come
    from the portal, and a formula in a published workbook is an injection)."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    c = ws.cell(row, col, value)
    if isinstance(value, str) and value.startswith("="):
        c.data_type = "s"
    return c


def write_xlsx(report: Report, path: str | Path) -> Path:
    """Write the workbook to ``path`` and return it."""
    _check_names(report)
    wb = Workbook()
    cover = wb.active
    cover.title = COVER
    _cover(cover, report)
    for sheet in report.sheets:
        _table(wb.create_sheet(sheet.name), sheet)
    _definitions(wb.create_sheet(DEFINITIONS), report)
    props = wb.properties
    props.title = report.title
    props.subject = f"{report.title} — {report.town_name} ({report.town}), " \
                    f"{fr.period_fr(report.start, report.end)}"
    props.creator = "guichet"
    props.lastModifiedBy = "guichet"
    props.language = "fr-FR"
    props.keywords = f"guichet {report.kind} {report.town}"
    created = report.generated_at
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    props.created = props.modified = created
    path = Path(path)
    wb.save(path)
    return path


def _check_names(report: Report) -> None:
    seen = {COVER.lower(), DEFINITIONS.lower()}
    for s in report.sheets:
        bad = _FORBIDDEN & set(s.name)
        if bad:
            raise ValueError(f"sheet name {s.name!r} has characters Excel refuses: "
                             f"{''.join(sorted(bad))}")
        if s.name.lower() in seen:
            raise ValueError(f"sheet name {s.name!r} is used twice (or is reserved)")
        seen.add(s.name.lower())


def _cover(ws, report: Report) -> None:
    _put(ws, 1, 1, report.title).font = TITLE_FONT
    rows = [
        ("Commune", f"{report.town_name} ({report.town})"),
        ("Période", fr.period_fr(report.start, report.end)),
        ("Généré le", fr.datetime_fr(report.generated_at) + " (heure de Paris)"),
        ("Produit par", "guichet"),
    ]
    r = 3
    for label, value in rows:
        ws.cell(r, 1, label).font = HEADER_FONT
        _put(ws, r, 2, value)
        r += 1
    r += 1
    ws.cell(r, 1, "Contenu").font = HEADER_FONT
    r += 1
    for s in report.sheets:
        c = ws.cell(r, 1, s.name)
        c.hyperlink = f"#'{s.name}'!A1"
        c.style = "Hyperlink"
        _put(ws, r, 2, s.title)
        r += 1
    c = ws.cell(r, 1, DEFINITIONS)
    c.hyperlink = f"#'{DEFINITIONS}'!A1"
    c.style = "Hyperlink"
    ws.cell(r, 2, "Ce que signifie chaque colonne et comment elle est calculée")
    r += 2
    ws.cell(r, 1, "Contrôles").font = HEADER_FONT
    r += 1
    for check in report.checks or ["Aucun contrôle n'accompagne ce rapport."]:
        ws.cell(r, 1, "✓" if report.checks else "")
        _put(ws, r, 2, check).alignment = Alignment(wrap_text=True, vertical="top")
        r += 1
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 100


def _table(ws, sheet: Sheet) -> None:
    cols = sheet.columns
    for j, col in enumerate(cols, start=1):
        c = _put(ws, 1, j, col.header)
        c.font = HEADER_FONT
        c.fill = HEADER_FILL
        c.alignment = Alignment(wrap_text=True, vertical="top")
    frame = sheet.frame
    for i, values in enumerate(frame[[c.name for c in cols]].itertuples(index=False), start=2):
        for j, (col, value) in enumerate(zip(cols, values), start=1):
            c = _put(ws, i, j, cell_value(value, col.kind))
            c.number_format = NUMBER_FORMATS[col.kind]
    ws.freeze_panes = "A2"
    last = len(frame) + 1
    if cols:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{last}"
    if sheet.note:
        c = _put(ws, last + 2, 1, sheet.note)
        c.font = Font(italic=True)
    for j, col in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(j)].width = _width(col, frame[col.name])


def _width(col: Column, values) -> float:
    """Wide enough for the header's longest word and the longest formatted value."""
    longest = max([len(w) for w in col.header.split()] + [10])
    sample = values.head(500)
    if len(sample):
        longest = max(longest, max(len(fr.cell(v, col.kind)) for v in sample))
    return min(MAX_WIDTH, longest + 3)


def _definitions(ws, report: Report) -> None:
    for j, h in enumerate(("Feuille", "Colonne", "Définition"), start=1):
        c = ws.cell(1, j, h)
        c.font = HEADER_FONT
        c.fill = HEADER_FILL
    r = 2
    for s in report.sheets:
        for col in s.columns:
            _put(ws, r, 1, s.name)
            _put(ws, r, 2, col.header)
            _put(ws, r, 3, col.definition).alignment = Alignment(wrap_text=True, vertical="top")
            r += 1
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:C{max(r - 1, 1)}"
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 32
    ws.column_dimensions["C"].width = 100
