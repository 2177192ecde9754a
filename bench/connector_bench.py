"""Benchmark of the source connectors' extraction (not a test): prints figures, asserts nothing.

For each town size (default: the default town and a 10x town), the town is generated
once per legacy backend and cached under bench/out/conn_<households>_<seed>/<backend>/
(SQLite file; MariaDB database and PostgreSQL database bench_conn_<households>_<seed>).
Then each measurement runs in a fresh child process (spawn), so its peak RSS is its own:

  legacy   LegacyDatabase: every table read in full (``read``, in the connector's 50,000-row
           chunks, as a first sync reads it), then every table's primary keys
           (``keys``, what each sync reads for purge detection) - over ODBC on MariaDB
           (MariaDB Unicode) and PostgreSQL (PostgreSQL Unicode), and on the SQLite file;
  portal   PortalAPI (page size 500, bearer token, TLS verified) against the stand-in
           portal serving the town over HTTPS with a throw-away certificate, in its own
           process; and the JSON Lines export folder;
  drop     SFTPDrop through a real OpenSSH sshd on a loopback port with throw-away keys
           (demo/sshd.py), listing and reading every file with its sha256 sidecar; and
           the local folder.

Chunks, items and files are counted and dropped as they come: what is measured is the
connector itself, not what the sync does with its output.

    python bench/connector_bench.py                       # 3000 and 30000 households
    python bench/connector_bench.py --households 300 --only legacy-mariadb --only portal-https
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from children import CTX, peak_rss_mb, run_child

OUT = ROOT / "bench" / "out"

MARIADB = "mysql+pymysql://root@127.0.0.1:3306/{db}"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
MARIADB_ODBC = "DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT=3306;DATABASE={db};UID=root;PWD=;"
POSTGRES_ODBC = ("DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT=5432;DATABASE={db};"
                 "UID=postgres;PWD=;")
BACKENDS = ("sqlite", "mariadb", "postgresql")
TOKEN = "bench-token"
CONNECTORS = {  # name -> label in the tables
    "legacy-sqlite": "legacy, SQLite file (baseline)",
    "legacy-mariadb": "legacy, MariaDB over ODBC",
    "legacy-postgresql": "legacy, PostgreSQL over ODBC",
    "portal-jsonl": "portal, JSONL folder (baseline)",
    "portal-https": "portal, HTTPS API (stand-in)",
    "drop-local": "drop, local folder (baseline)",
    "drop-sftp": "drop, SFTP (OpenSSH sshd)",
}


# ------------------------------------------------------------------ the towns
def db_name(households: int, seed: int) -> str:
    return f"bench_conn_{households}_{seed}"


def town_dir(households: int, seed: int, backend: str) -> Path:
    return OUT / f"conn_{households}_{seed}" / backend


def legacy_url(households: int, seed: int, backend: str) -> str | None:
    if backend == "sqlite":
        return None  # the generator's default: <town>/legacy.sqlite
    return (MARIADB if backend == "mariadb" else POSTGRES).format(db=db_name(households, seed))


def _row_counts(url: str) -> dict[str, int] | None:
    """Rows per legacy table in the database at ``url`` (None if it or a table is missing)."""
    import sqlalchemy as sa

    from demo.world import TABLE_ORDER

    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return {t: c.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                    for t in TABLE_ORDER}
    except Exception:  # noqa: BLE001 - missing database or table: regenerate
        return None
    finally:
        eng.dispose()


def ensure_town(households: int, seed: int, backend: str, log=print) -> tuple[Path, float]:
    """The cached town of this size for this backend, generated when absent: (dir, seconds).

    The cache is valid when town.json and bench_counts.json exist and, for a server
    backend, its database still holds the row counts recorded after generation."""
    from demo.generate import generate_town

    d = town_dir(households, seed, backend)
    marker = d / "bench_counts.json"
    url = legacy_url(households, seed, backend)
    if (d / "town.json").exists() and marker.exists():
        counts = json.loads(marker.read_text())
        if url is None or _row_counts(url) == counts["legacy"]:
            return d, 0.0
    log(f"  generating the {households:,}-household town, seed {seed}, legacy on {backend} ...",
        flush=True)
    marker.unlink(missing_ok=True)
    t0 = time.perf_counter()
    generate_town(d, households=households, seed=seed, legacy_url=url)  # creates the database
    secs = time.perf_counter() - t0
    info = json.loads((d / "town.json").read_text())
    marker.write_text(json.dumps({"legacy": _row_counts(info["legacy_url"]), "generate_s": secs}))
    log(f"  generated in {secs:.0f} s", flush=True)
    return d, secs


def _generate_child(households: int, seed: int, backend: str, q) -> None:
    d, secs = ensure_town(households, seed, backend)
    q.put({"dir": str(d), "seconds": secs})


# ------------------------------------------------------------ the measurements
def measure_legacy(url: str, q) -> None:
    """Every table in full (as a first sync), then every table's primary keys."""
    from connectors.legacy import LegacyDatabase
    from pipelines.steps import LEGACY_ORDER
    from schemas.legacy import LEGACY_ENTITIES

    rss0 = peak_rss_mb()
    t_all = time.perf_counter()
    db = LegacyDatabase(url)
    parts, keys = {}, {}
    for e in LEGACY_ORDER:
        t0 = time.perf_counter()
        rows = chunks = 0
        for frame in db.read(e, key_columns=LEGACY_ENTITIES[e].primary_key):
            rows += len(frame)
            chunks += 1
        del frame
        parts[e] = {"n": rows, "chunks": chunks, "seconds": time.perf_counter() - t0,
                    "peak_rss_mb": peak_rss_mb()}
    read_s = time.perf_counter() - t_all
    rss_read = peak_rss_mb()
    t1 = time.perf_counter()
    for e in LEGACY_ORDER:
        t0 = time.perf_counter()
        present = db.keys(e, LEGACY_ENTITIES[e].primary_key)
        keys[e] = {"n": len(present), "seconds": time.perf_counter() - t0,
                   "peak_rss_mb": peak_rss_mb()}
        del present
    keys_s = time.perf_counter() - t1
    db.dispose()
    q.put({"unit": "rows", "parts": parts, "keys": keys, "n": sum(p["n"] for p in parts.values()),
           "seconds": read_s, "keys_s": keys_s, "rss_start_mb": rss0, "rss_after_read_mb": rss_read,
           "peak_rss_mb": peak_rss_mb()})


def measure_portal(base: str, token: str | None, ca_file: str | None, q) -> None:
    """Every collection in full through the portal connector, as a first sync reads it."""
    if ca_file:  # requests honours it for verify=True: the connector still verifies TLS
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
    from connectors.portal import open_portal
    from schemas.portal import PORTAL_COLLECTIONS

    rss0 = peak_rss_mb()
    src = open_portal(base, token)
    parts = {}
    t_all = time.perf_counter()
    for c in PORTAL_COLLECTIONS:
        t0 = time.perf_counter()
        n = size = 0
        for raw in src.items(c, None):
            n += 1
            size += len(raw.payload)
        parts[c] = {"n": n, "mb": size / 2**20, "seconds": time.perf_counter() - t0,
                    "peak_rss_mb": peak_rss_mb()}
    secs = time.perf_counter() - t_all
    q.put({"unit": "items", "parts": parts, "n": sum(p["n"] for p in parts.values()),
           "mb": sum(p["mb"] for p in parts.values()), "seconds": secs,
           "rss_start_mb": rss0, "peak_rss_mb": peak_rss_mb()})


def measure_drop(root: str, key_file: str | None, known_hosts: str | None, q) -> None:
    """Every file of the drop listed and read (with its sidecar checked)."""
    from connectors.treasury import open_drop

    rss0 = peak_rss_mb()
    drop = open_drop(root, key_file=key_file, known_hosts=known_hosts)
    t0 = time.perf_counter()
    n = size = largest = 0
    for f in drop.files(None):
        n += 1
        size += len(f.data)
        largest = max(largest, len(f.data))
        f.sidecar_mismatch()
    secs = time.perf_counter() - t0
    q.put({"unit": "files", "n": n, "mb": size / 2**20, "largest_mb": largest / 2**20,
           "seconds": secs, "rss_start_mb": rss0, "peak_rss_mb": peak_rss_mb()})


# --------------------------------------------------------- the portal stand-in
def serve_portal(folder: str, certfile: str, keyfile: str, q, stop) -> None:
    """The stand-in portal over HTTPS, in its own process (its memory is not the client's).

    demo/portal_server.py re-reads, re-parses and re-sorts the whole collection for every
    page and finds the cursor by a linear scan, which makes a full read quadratic in the
    collection size: fine for tests, but it would measure the stand-in, not the connector.
    Here the same items, in the stand-in's own order (its ``_items``), with its cursor
    encoding, are loaded once and served from memory, the cursor found by bisection; the
    response bodies are byte for byte what the stand-in sends. HTTP/1.1 keep-alive (the
    stand-in's handler speaks HTTP/1.0: a new TLS handshake for every page) as a real
    portal behind a reverse proxy would, with TCP_NODELAY (otherwise the headers and the
    body, written separately, meet the client's delayed ACK: 40 ms per page on loopback).
    No fault is injected."""
    import bisect
    import datetime as dt
    import ssl
    from urllib.parse import parse_qs, urlparse

    from demo.portal_server import PortalStandIn, _decode_cursor, _encode_cursor, _key
    from schemas.portal import PORTAL_COLLECTIONS

    class PreloadedStandIn(PortalStandIn):
        def __init__(self, folder, token):
            super().__init__(folder, token)
            handler = self.server.RequestHandlerClass
            handler.protocol_version = "HTTP/1.1"
            handler.disable_nagle_algorithm = True  # headers and body are two writes
            self.collections = {}
            for c in PORTAL_COLLECTIONS:
                items = self._items(c)
                self.collections[c] = ([_key(i) for i in items], [json.dumps(i) for i in items])

        def handle(self, h):
            u = urlparse(h.path)
            if h.headers.get("Authorization") != f"Bearer {self.token}":
                return self._send(h, 401, {"error": "unauthorized"})
            parts = u.path.strip("/").split("/")
            if len(parts) != 3 or parts[:2] != ["api", "v1"] or parts[2] not in self.collections:
                return self._send(h, 404, {"error": "not found"})
            qs = parse_qs(u.query)
            limit = max(1, min(int(qs.get("limit", ["100"])[0]), 1000))
            keys, texts = self.collections[parts[2]]
            start = 0
            if "updated_since" in qs:
                start = bisect.bisect_left(keys, (dt.datetime.fromisoformat(qs["updated_since"][0]),))
            if "cursor" in qs:
                start = bisect.bisect_right(keys, _decode_cursor(qs["cursor"][0]), lo=start)
            page = texts[start:start + limit]
            nxt = _encode_cursor(keys[start + len(page) - 1]) \
                if start + limit < len(keys) and page else None
            body = '{"items": [' + ", ".join(page) + '], "next_cursor": ' + json.dumps(nxt) + "}"
            self._send_bytes(h, 200, body.encode())

    srv = PreloadedStandIn(Path(folder), TOKEN)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    srv.server.socket = ctx.wrap_socket(srv.server.socket, server_side=True)
    with srv:
        q.put(f"https://127.0.0.1:{srv.server.server_address[1]}")
        stop.wait()


def _throwaway_cert(d: Path) -> tuple[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


# ------------------------------------------------------------------- one size
def bench_size(households: int, seed: int, only: set[str]) -> dict:
    from demo.sshd import loopback_sshd

    need = {"sqlite"} | {b for b in ("mariadb", "postgresql") if f"legacy-{b}" in only}
    towns, gen = {}, {}
    for b in BACKENDS:
        if b in need:
            r = run_child(_generate_child, households, seed, b, strict=False)
            if "error" in r:
                raise SystemExit(f"generation on {b} failed: {r['error']}")
            towns[b], gen[b] = Path(r["dir"]), r["seconds"]
    info = json.loads((towns["sqlite"] / "town.json").read_text())
    work = OUT / f"conn_{households}_{seed}" / "run"
    res: dict[str, dict] = {}

    def run(name, target, *args):
        if name in only:
            print(f"  measuring {CONNECTORS[name]} ...", flush=True)
            res[name] = run_child(target, *args, strict=False)

    run("legacy-sqlite", measure_legacy, info["legacy_url"])
    run("legacy-mariadb", measure_legacy, MARIADB_ODBC.format(db=db_name(households, seed)))
    run("legacy-postgresql", measure_legacy, POSTGRES_ODBC.format(db=db_name(households, seed)))
    run("portal-jsonl", measure_portal, info["portal_base"], None, None)
    if "portal-https" in only:
        cert, key = _throwaway_cert(work / "tls")
        ready, stop = CTX.Queue(), CTX.Event()
        server = CTX.Process(target=serve_portal,
                             args=(info["portal_base"].removeprefix("file://"), cert, key,
                                   ready, stop))
        server.start()
        try:
            base = ready.get(timeout=1800)
            run("portal-https", measure_portal, base, TOKEN, cert)
        finally:
            stop.set()
            server.join(timeout=30)
            if server.is_alive():
                server.terminate()
                server.join()
    run("drop-local", measure_drop, info["treasury_root"], None, None)
    if "drop-sftp" in only:
        with loopback_sshd(work / "sshd") as s:
            url = f"sftp://{s['user']}@127.0.0.1:{s['port']}{info['treasury_root']}"
            run("drop-sftp", measure_drop, url, s["key_file"], s["known_hosts"])
    return {"households": households, "generate_s": gen, "results": res}


# ------------------------------------------------------------------ reporting
def _rate(r: dict) -> str:
    return f"{r['n'] / max(r['seconds'], 1e-9):>10,.0f}"


def print_size(b: dict) -> None:
    n = b["households"]
    gen = ", ".join(f"{k} {v:.0f} s" for k, v in b["generate_s"].items())
    print(f"\n== town of {n:,} households (generation: {gen}; 0 s = cached)")
    print(f"  {'connector':<32} {'count':>11} {'unit':<6} {'seconds':>8} {'per s':>10} "
          f"{'MiB/s':>7} {'peak RSS':>9} {'at start':>9}")
    for name, label in CONNECTORS.items():
        r = b["results"].get(name)
        if r is None:
            continue
        if "error" in r:
            print(f"  {label:<32} {r['error']}")
            continue
        mbs = f"{r['mb'] / max(r['seconds'], 1e-9):7.1f}" if "mb" in r else f"{'':>7}"
        print(f"  {label:<32} {r['n']:>11,} {r['unit']:<6} {r['seconds']:8.1f} {_rate(r)} {mbs} "
              f"{r['peak_rss_mb']:>5.0f} MiB {r['rss_start_mb']:>5.0f} MiB")
    print("  (legacy: rows/s of the full read of every table; keys() is timed apart below)")
    for name, r in b["results"].items():
        if "error" in r or "parts" not in r:
            if name.startswith("drop") and "error" not in r:
                print(f"  {CONNECTORS[name]}: {r['mb']:.1f} MiB, largest file {r['largest_mb']:.2f} MiB")
            continue
        print(f"  {CONNECTORS[name]}, per {'table' if r['unit'] == 'rows' else 'collection'} "
              f"({r['unit']}/s, peak RSS after it):")
        for part, p in r["parts"].items():
            print(f"    {part:<16} {p['n']:>10,} {_rate(p)} /s  {p['seconds']:7.2f} s  "
                  f"{p['peak_rss_mb']:6.0f} MiB")
        if "keys" in r:
            nk = sum(k["n"] for k in r["keys"].values())
            big = max(r["keys"], key=lambda e: r["keys"][e]["n"])
            print(f"    then keys() of every table (purge detection): {nk:,} keys in "
                  f"{r['keys_s']:.1f} s; peak RSS {r['rss_after_read_mb']:.0f} MiB after the "
                  f"reads -> {r['peak_rss_mb']:.0f} MiB after keys() ({big}: "
                  f"{r['keys'][big]['n']:,} keys)")


def print_scaling(a: dict, b: dict) -> None:
    k = b["households"] / a["households"]
    print(f"\nscaling {b['households']:,} vs {a['households']:,} households ({k:.0f}x): "
          "time ratio, peak-RSS ratio (and ratio of the RSS above the child's start)")
    for name, label in CONNECTORS.items():
        ra, rb = a["results"].get(name), b["results"].get(name)
        if not ra or not rb or "error" in ra or "error" in rb:
            continue
        grow_a = max(ra["peak_rss_mb"] - ra["rss_start_mb"], 1.0)
        grow_b = max(rb["peak_rss_mb"] - rb["rss_start_mb"], 1.0)
        print(f"  {label:<32} {rb['n'] / max(ra['n'], 1):5.1f}x {ra['unit']:<6} "
              f"time {rb['seconds'] / max(ra['seconds'], 1e-9):5.1f}x  "
              f"peak RSS {rb['peak_rss_mb'] / ra['peak_rss_mb']:5.2f}x "
              f"({ra['peak_rss_mb']:.0f} -> {rb['peak_rss_mb']:.0f} MiB; above start "
              f"{grow_b / grow_a:.1f}x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--households", type=int, action="append",
                    help="town size (repeatable; default 3000 and 30000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", choices=list(CONNECTORS),
                    help="measure only this connector (repeatable; default all)")
    ap.add_argument("--generate-only", choices=BACKENDS,
                    help="only generate (or check the cache of) the towns for this backend")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    sizes = args.households or [3000, 30000]
    OUT.mkdir(parents=True, exist_ok=True)
    if args.generate_only:
        for n in sizes:
            ensure_town(n, args.seed, args.generate_only)
        return 0
    only = set(args.only or CONNECTORS)
    results = []
    for n in sizes:
        print(f"\n-- {n:,} households, seed {args.seed}", flush=True)
        b = bench_size(n, args.seed, only)
        results.append(b)
        print_size(b)
    if len(results) > 1:
        print_scaling(results[0], results[-1])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
