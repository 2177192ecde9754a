"""Dagster assets: raw → stg → core for every source entity, partitioned by town.

Thin wiring around ``pipelines.steps``; the conservation checks sit next to
the staging assets they check and block the core load when a row is lost.
"""

from __future__ import annotations

import contextlib
import warnings

import dagster as dg
import sqlalchemy as sa

from pipelines import loading, spool, steps
from pipelines.progress import announce
from pipelines.resources import GuichetResource
from pipelines.steps import LEGACY, PORTAL, TREASURY, StagedBatch


@contextlib.contextmanager
def partitioned_checks():
    """Define partitioned asset checks without Dagster 1.13's "preview" warning for them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
        yield


def raw_key(source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{source}_{entity.lower()}")


def stg_key(source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(f"stg_{source}_{entity.lower()}")


#: The in-process executor runs the ready step of highest ``dagster/priority`` first.
#: Extracts rank below everything downstream of them, in source order: each entity then
#: goes raw -> stg -> check -> core before the next is read, as in ``steps.run_town``,
#: instead of every table being extracted (and held) first.
DOWNSTREAM = {"dagster/priority": "10000"}


def extract_priority(rank: int) -> dict:
    return {"dagster/priority": str(5000 - rank)}


def conservation(batch: StagedBatch) -> dg.AssetCheckResult:
    """Rows read = rows loaded + rows quarantined, for one source entity."""
    ok = batch.rows_read == batch.rows_loaded + batch.rows_quarantined
    return dg.AssetCheckResult(
        passed=ok,
        metadata={"rows_read": batch.rows_read, "rows_loaded": batch.rows_loaded,
                  "rows_quarantined": batch.rows_quarantined},
        description=None if ok else (
            f"{batch.rows_read - batch.rows_loaded - batch.rows_quarantined} rows of "
            f"{batch.source}.{batch.entity} were neither loaded nor quarantined"),
    )


def _entity_assets(source: str, entity: str, partitions, extract, rank: int, extra_ins=None):
    rk, sk = raw_key(source, entity), stg_key(source, entity)

    @dg.asset(key=rk, group_name=source, partitions_def=partitions, ins=extra_ins or {},
              op_tags=extract_priority(rank),
              description=f"{source}.{entity} rows changed since the watermark, kept in raw_record.")
    def _raw(context, guichet: GuichetResource, **upstream):
        announce(rk.to_user_string())
        ext = extract(guichet.town(context), **upstream)
        context.add_output_metadata({"rows_read": ext.rows_read, "new_versions": ext.new_versions,
                                     "watermark": ext.watermark or ""})
        return ext

    @dg.asset(key=sk, group_name=source, partitions_def=partitions, ins={"ext": dg.AssetIn(rk)},
              op_tags=DOWNSTREAM,
              description=f"{source}.{entity} parsed and validated; rejects in quarantine.")
    def _stg(context, guichet: GuichetResource, ext):
        announce(sk.to_user_string())
        batch = steps.stage(guichet.town(context), ext)
        ext.release()  # the run keeps its outputs in memory to the end: drop the rows now
        context.add_output_metadata({"rows_loaded": batch.rows_loaded,
                                     "rows_quarantined": batch.rows_quarantined})
        return batch

    with partitioned_checks():

        @dg.asset_check(asset=sk, name="rows_conserved", blocking=True,
                        partitions_def=partitions, op_tags=DOWNSTREAM,
                        description="rows read = rows loaded + rows quarantined")
        def _check(batch):
            return conservation(batch)

    return [_raw, _stg, _check]


def _core_asset(table: str, feeds: list[tuple[str, str]], partitions):
    ins = {f"b{i}": dg.AssetIn(stg_key(s, e)) for i, (s, e) in enumerate(feeds)}

    @dg.asset(key=dg.AssetKey(f"core_{table}"), group_name="core", partitions_def=partitions,
              ins=ins, op_tags=DOWNSTREAM, description=f"Canonical {table} rows of the town (only changes written).")
    def _core(context, guichet: GuichetResource, **batches):
        announce(f"core_{table}")
        fed = [batches[k] for k in sorted(batches, key=lambda k: int(k[1:]))]
        counts = steps.load_core(guichet.town(context), table, fed)
        steps.mark_loaded(table, fed)
        context.add_output_metadata({k: v for k, v in counts.items()})
        return counts

    return _core


def build_assets(partitions) -> list:
    out = []
    rank = iter(range(1000))
    for e in steps.LEGACY_ORDER:
        if e == "LIGNE_FACTURE":
            out += _entity_assets(
                LEGACY, e, partitions,
                lambda town, invoices: steps.extract_legacy(town, "LIGNE_FACTURE", invoices),
                next(rank), {"invoices": dg.AssetIn(raw_key(LEGACY, "FACTURE"))})
        else:
            out += _entity_assets(LEGACY, e, partitions,
                                  lambda town, _e=e: steps.extract_legacy(town, _e), next(rank))
    from schemas.portal import PORTAL_COLLECTIONS

    for c in PORTAL_COLLECTIONS:
        out += _entity_assets(PORTAL, c, partitions,
                              lambda town, _c=c: steps.extract_portal(town, _c), next(rank))
    out += _entity_assets(TREASURY, "files", partitions, steps.extract_treasury, next(rank))
    cores = steps.core_sources()
    for table, feeds in cores.items():
        out.append(_core_asset(table, feeds, partitions))

    @dg.asset(key=dg.AssetKey("sync_report"), group_name="core", partitions_def=partitions,
              deps=[dg.AssetKey(f"core_{t}") for t in cores],
              description="Closes the town's load run and summarises it.")
    def sync_report(context, guichet: GuichetResource):
        announce("sync_report")
        town = guichet.town(context)
        loading.finish_run(town.engine, town.code, town.run_id, "success")
        spool.clear(town.spool_dir)
        with town.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT source, entity, rows_read, rows_loaded, rows_quarantined FROM load_stat "
                "WHERE town = :t AND run_id = :r"), {"t": town.code, "r": town.run_id}).all()
        md = {f"{s}.{e}": f"read {r}, loaded {ld}, quarantined {q}" for s, e, r, ld, q in rows}
        context.add_output_metadata(md)

    out.append(sync_report)
    return out
