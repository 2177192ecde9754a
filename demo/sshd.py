"""A stand-in of the payment office's SFTP server: a throw-away OpenSSH sshd on a loopback
port, used by the tests' ``sftp_server`` fixture and by the connector benchmark: fresh
ed25519 host and user keys, key authentication only, ``internal-sftp``, and a known_hosts
file pinning the host key.

    with loopback_sshd(Path("/tmp/work")) as s:
        SFTPDrop(f"sftp://{s['user']}@127.0.0.1:{s['port']}/srv/drop",
                 key_file=s["key_file"], known_hosts=s["known_hosts"])
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class SSHDError(RuntimeError):
    pass


@contextlib.contextmanager
def loopback_sshd(workdir: Path) -> Iterator[dict]:
    """Start sshd -D on 127.0.0.1:<free port>; yields port, user, key_file, known_hosts, dir."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise SSHDError(f"OpenSSH server not found ({sshd}): install openssh-server")
    d = Path(workdir)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
    proc = subprocess.Popen([sshd, "-D", "-f", str(d / "sshd_config"),
                             "-E", str(d / "sshd.log")])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            raise SSHDError("sshd did not listen: " + (d / "sshd.log").read_text())
        if proc.poll() is not None:
            raise SSHDError("sshd exited: " + (d / "sshd.log").read_text())
        host_pub = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield {"port": port, "user": getpass.getuser(), "key_file": str(d / "user_key"),
               "known_hosts": str(d / "known_hosts"), "dir": d}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
