"""The payment office's drop over a real OpenSSH SFTP server with a pinned host key."""

from __future__ import annotations

import subprocess

import pytest
from helpers import core_digest, count, town_config

from connectors.treasury import LocalDrop
from connectors.treasury_sftp import SFTPDrop, SFTPError
from connectors.warehouse import make_engine
from pipelines.config import parse_config
from pipelines.steps import run_town


def _url(srv, root):
    return f"sftp://{srv['user']}@127.0.0.1:{srv['port']}{root}"


def test_lists_the_same_files_as_the_local_drop(sftp_server, town_dir):
    root = town_dir / "treasury"
    local = {(f.folder_day, f.name, f.sha256, f.sidecar) for f in LocalDrop(root).files(None)}
    drop = SFTPDrop(_url(sftp_server, root), key_file=sftp_server["key_file"],
                    known_hosts=sftp_server["known_hosts"])
    remote = {(f.folder_day, f.name, f.sha256, f.sidecar) for f in drop.files(None)}
    assert remote == local and len(remote) > 5
    assert not any(name.endswith(".part") for _, name, _, _ in remote)


def test_unknown_or_changed_host_key_is_refused(sftp_server, town_dir, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    drop = SFTPDrop(_url(sftp_server, town_dir / "treasury"), key_file=sftp_server["key_file"],
                    known_hosts=str(empty))
    with pytest.raises(SFTPError, match="not pinned"):
        list(drop.files(None))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True)
    pub = (tmp_path / "other.pub").read_text().split()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sftp_server['port']} {pub[0]} {pub[1]}\n")
    drop = SFTPDrop(_url(sftp_server, town_dir / "treasury"), key_file=sftp_server["key_file"],
                    known_hosts=str(wrong))
    with pytest.raises(SFTPError, match="CHANGED"):
        list(drop.files(None))


def test_sync_over_sftp_equals_sync_from_the_folder(sftp_server, warehouse_url, town_dir,
                                                    tmp_path):
    ref_cfg = town_config(f"sqlite:///{tmp_path / 'ref.sqlite'}", {"44190": town_dir},
                          tmp_path / "l1")
    ref = make_engine(ref_cfg.warehouse_url)
    run_town(ref_cfg, "44190", ref)
    t = ref_cfg.towns[0]
    cfg = parse_config({"warehouse": {"url": warehouse_url, "landing_dir": str(tmp_path / "l2")},
                        "towns": {"44190": {
                            "legacy_url": t.legacy_url, "portal_base": t.portal_base,
                            "treasury_root": _url(sftp_server, t.treasury_root),
                            "treasury_key_file": sftp_server["key_file"],
                            "treasury_known_hosts": sftp_server["known_hosts"]}}})
    engine = make_engine(warehouse_url)
    run_town(cfg, "44190", engine)
    got, want = core_digest(engine), core_digest(ref)
    for table in ("payment", "bank_statement", "bank_operation"):
        assert got[table].split(":")[0] == want[table].split(":")[0], table
    files = count(engine, "SELECT COUNT(*) FROM treasury_file")
    run_town(cfg, "44190", engine)  # the same files again: nothing new
    assert count(engine, "SELECT COUNT(*) FROM treasury_file") == files
    engine.dispose()
    ref.dispose()
