"""Fault injection for the tests: mitmproxy (mitmdump, reverse-proxy mode, from .venv-tools) with
the addon in faultproxy_addon.py, placed in front of the O3 guard so faulted traffic is still
checked against O3's documented surface. `make test` installs .venv-tools."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MITMDUMP = REPO / ".venv-tools" / "bin" / "mitmdump"
ADDON = Path(__file__).with_name("faultproxy_addon.py")


class FaultProxy:
    def __init__(self, upstream: str, tls_dir: Path | None = None) -> None:
        """Reverse proxy to ``upstream``; with ``tls_dir`` (zkml_dvc.tls files) it serves HTTPS
        with the store's server certificate and verifies the upstream against the store's CA."""
        if not MITMDUMP.exists():
            raise RuntimeError(f"{MITMDUMP} is missing: run `make test` (it installs mitmproxy "
                               "into .venv-tools)")
        self.dir = Path(tempfile.mkdtemp(prefix="faultproxy-"))
        self.set(every=0)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        tls_args: list[str] = []
        scheme = "http"
        if tls_dir is not None:
            combined = self.dir / "server-with-key.pem"  # what mitmproxy's --certs wants
            fd = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write((tls_dir / "server.key").read_bytes() + (tls_dir / "server.pem").read_bytes())
            tls_args = ["--certs", f"*={combined}",
                        "--set", f"ssl_verify_upstream_trusted_ca={tls_dir / 'ca.pem'}"]
            scheme = "https"
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}"
        self._log = open(self.dir / "mitmdump.log", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [str(MITMDUMP), "-q", "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1",
             "--listen-port", str(self.port), "--set", "keep_host_header=true",
             "--set", "connection_strategy=lazy", "-s", str(ADDON),
             "--set", f"faultdir={self.dir}", "--set", f"confdir={self.dir / 'conf'}",
             *tls_args],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mitmdump did not start: {(self.dir / 'mitmdump.log').read_text()}")

    def set(self, every: int = 0, stall_key: str | None = None) -> None:
        """Fault every Nth request (0: none); stall downloads whose key contains stall_key."""
        (self.dir / "stalled").unlink(missing_ok=True)
        tmp = self.dir / "control.json.tmp"
        tmp.write_text(json.dumps({"every": every, "stall_key": stall_key}))
        os.replace(tmp, self.dir / "control.json")

    def faults(self) -> Counter[str]:
        try:
            return Counter(json.loads((self.dir / "counts.json").read_text()))
        except (OSError, ValueError):
            return Counter()

    def wait_stalled(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.dir / "stalled").exists():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
