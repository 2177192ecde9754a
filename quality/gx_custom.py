"""guichet's own Great Expectations expectations (French identifiers, value types).

Imported only by ``quality.gx`` when it creates the context (importing this
module imports Great Expectations). Each expectation is a column map: GX
counts and lists the failing rows like for its built-in expectations.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    BatchExpectation,
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from quality import formats

# ------------------------------------------------------------------ formats
_FORMATS = {
    "email": formats.is_email,
    "french_phone": formats.is_french_phone,
    "siret": formats.is_siret,
    "iban": formats.is_iban,
}


def _format_ok(kind: str, v) -> bool:
    return isinstance(v, str) and _FORMATS[kind](v)


class ColumnValuesValidEmail(ColumnMapMetricProvider):
    condition_metric_name = "column_values.guichet_valid_email"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: _format_ok("email", v)).astype(bool)


class ExpectColumnValuesToBeValidEmail(ColumnMapExpectation):
    """Expect e-mail addresses: valid syntax, lower case, no well-known mistyped domain."""

    map_metric = "column_values.guichet_valid_email"
    success_keys = ("mostly",)


class ColumnValuesFrenchPhone(ColumnMapMetricProvider):
    condition_metric_name = "column_values.guichet_french_phone"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: _format_ok("french_phone", v)).astype(bool)


class ExpectColumnValuesToBeFrenchPhone(ColumnMapExpectation):
    """Expect phone numbers in a usual French writing (or international form)."""

    map_metric = "column_values.guichet_french_phone"
    success_keys = ("mostly",)


class ColumnValuesValidSiret(ColumnMapMetricProvider):
    condition_metric_name = "column_values.guichet_valid_siret"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: _format_ok("siret", v)).astype(bool)


class ExpectColumnValuesToBeValidSiret(ColumnMapExpectation):
    """Expect SIRET numbers: 14 digits, SIREN and SIRET Luhn keys right."""

    map_metric = "column_values.guichet_valid_siret"
    success_keys = ("mostly",)


class ColumnValuesValidIban(ColumnMapMetricProvider):
    condition_metric_name = "column_values.guichet_valid_iban"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: _format_ok("iban", v)).astype(bool)


class ExpectColumnValuesToBeValidIban(ColumnMapExpectation):
    """Expect IBANs: national length and ISO 13616 check digits (mod 97 = 1)."""

    map_metric = "column_values.guichet_valid_iban"
    success_keys = ("mostly",)


# ------------------------------------------------------- referential integrity
# Reference sets by name, set by ``quality.gx.validate`` for the duration of one validation:
# a parent table's ids can be tens of thousands of values, which GX would copy and hash
# several times per expectation if they were the expectation's arguments.
REFERENCES: dict[str, frozenset] = {}


class ColumnValuesInReference(ColumnMapMetricProvider):
    condition_metric_name = "column_values.guichet_in_reference"
    condition_value_keys = ("reference",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reference, **kwargs):
        return column.isin(REFERENCES[reference])


class ExpectColumnValuesToBeInReference(ColumnMapExpectation):
    """Expect every non-null value to exist in a reference set (a parent table's key
    column), named by ``reference``: referential integrity between entities."""

    reference: str
    map_metric = "column_values.guichet_in_reference"
    success_keys = ("reference", "mostly")


# ------------------------------------------------------------ value types
def _null(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _is_logical(kind: str, v) -> bool:
    """Whether the loader stores ``v`` exactly in a column of this logical type."""
    if hasattr(v, "item") and not isinstance(v, (dt.datetime, pd.Timestamp)):
        v = v.item()  # numpy scalars
    if kind == "integer":  # an integral float (a pandas column with NULLs) is stored exactly
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and v.is_integer())
    if kind == "boolean":
        return isinstance(v, bool)
    if kind == "date":
        return isinstance(v, dt.date) and not isinstance(v, dt.datetime)
    if kind == "datetime":  # naive UTC: an instant with an offset would be stored as wall time
        return isinstance(v, dt.datetime) and v.tzinfo is None
    return isinstance(v, str)  # string, json


def _kind_of(v) -> str:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return f"instant with offset {v.tzinfo}"
    return type(v).__name__


def type_violations(df: pd.DataFrame, types: dict) -> dict:
    """Column -> 'n values (first bad value)' for the values not of the logical type."""
    out = {}
    for col, kind in types.items():
        if col not in df.columns:
            out[col] = "missing column"
            continue
        bad = [v for v in df[col].astype(object) if not _null(v) and not _is_logical(kind, v)]
        if bad:
            out[col] = (f"{len(bad)} values not {kind}: {_kind_of(bad[0])} "
                        f"{str(bad[0])[:40]!r}")
    return out


class TableLogicalTypeViolations(TableMetricProvider):
    metric_name = "table.guichet_logical_type_violations"
    value_keys = ("types",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,
                runtime_configuration):
        df, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs,
                                                       domain_type=MetricDomainTypes.TABLE)
        return type_violations(df, metric_value_kwargs["types"])


class ExpectTableColumnsToHaveLogicalTypes(BatchExpectation):
    """Expect every non-null value of each listed column to be of the warehouse's logical
    type for it (integer, boolean, date, datetime, string, json), whatever the pandas
    dtype: one expectation for a whole table."""

    types: dict
    metric_dependencies = ("table.guichet_logical_type_violations",)
    success_keys = ("types",)

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        bad = metrics.get("table.guichet_logical_type_violations") or {}
        return {"success": not bad, "result": {"observed_value": bad}}


# ------------------------------------------------------------ ages per service
def _age_ok(age, service, ranges) -> bool:
    if _null(age) or _null(service) or service not in ranges:
        return True
    lo, hi = ranges[service]
    return lo <= float(age) <= hi


class MulticolumnAgeSuitsService(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.guichet_age_suits_service"
    condition_domain_keys = ("batch_id", "table", "column_list", "row_condition",
                             "condition_parser", "ignore_row_if")
    condition_value_keys = ("ranges",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, ranges, **kwargs):
        age, service = column_list.columns[0], column_list.columns[1]
        return pd.Series([_age_ok(a, s, ranges) for a, s in zip(column_list[age],
                                                               column_list[service])],
                         index=column_list.index, dtype=bool)


class ExpectAgeToSuitService(MulticolumnMapExpectation):
    """Expect the age (first column, years) to lie in the range of the service (second
    column): ``ranges`` maps a service code to [min, max]; other services pass."""

    ranges: dict
    map_metric = "multicolumn_values.guichet_age_suits_service"
    success_keys = ("ranges", "mostly", "ignore_row_if")
