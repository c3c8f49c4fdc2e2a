"""mitmproxy addon (run by mitmdump from .venv-tools): injects S3 faults for the fault tests.

Controlled through files in the directory given by ``--set faultdir=DIR``: ``control.json``
({"every": N, "stall_key": "..."}) is re-read on every request; ``counts.json`` gets the number of
faults injected per kind; ``stalled`` appears when a stalled download has sent half its body.

Every Nth request gets the next fault of the cycle: 503 SlowDown, 500, a reset before any answer,
a GetObject body cut in half (after promising it whole), 300 ms of latency, and a "drop" (an upload
the server has received and stored, whose answer is lost). A GetObject whose path contains
``stall_key`` sends half its body and then nothing (for killing a client mid-download).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

from mitmproxy import ctx, http

FAULTS = ("slowdown", "error500", "reset", "truncate", "latency", "drop")
UPLOADS = ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload")
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")


def operation(flow: http.HTTPFlow) -> str:
    q = flow.request.query
    m = flow.request.method
    has_key = flow.request.path.split("?")[0].strip("/").count("/") >= 1
    if m == "GET":
        return "GetObject" if has_key else "ListObjects"
    if m == "HEAD":
        return "HeadObject"
    if m == "PUT":
        return "UploadPart" if "partNumber" in q else "PutObject"
    if m == "POST":
        return "CompleteMultipartUpload" if "uploadId" in q else "CreateMultipartUpload"
    return m


class Faults:
    def __init__(self) -> None:
        self.seen = 0
        self.counts: Counter[str] = Counter()

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("faultdir", str, "", "directory with control.json and counts.json")

    def _dir(self) -> Path:
        return Path(ctx.options.faultdir)

    def _control(self) -> dict:  # type: ignore[type-arg]
        try:
            return dict(json.loads((self._dir() / "control.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _record(self, kind: str) -> None:
        self.counts[kind] += 1
        tmp = self._dir() / "counts.json.tmp"
        tmp.write_text(json.dumps(self.counts))
        os.replace(tmp, self._dir() / "counts.json")

    def _next(self, op: str, every: int) -> str | None:
        if not every:
            return None
        self.seen += 1
        if self.seen % every:
            return None
        kind = FAULTS[(self.seen // every) % len(FAULTS)]
        if op == "GetObject" and self.counts["truncate"] <= self.counts["latency"]:
            kind = "truncate"  # make sure downloads meet cut-short bodies too
        elif kind == "truncate" and op != "GetObject":
            kind = "latency"  # only a response body can be cut short
        elif kind == "reset" and op in UPLOADS and self.counts["drop"] < self.counts["reset"]:
            kind = "drop"  # make sure uploads meet lost answers too
        elif kind == "drop" and op not in UPLOADS:
            kind = "reset"  # only a write can be done by the server and lost on the way back
        return kind

    async def request(self, flow: http.HTTPFlow) -> None:
        control = self._control()
        op = operation(flow)
        stall = control.get("stall_key")
        if stall and op == "GetObject" and stall in flow.request.path:
            flow.metadata["fault"] = "stall"
            return
        kind = self._next(op, int(control.get("every", 0)))
        flow.metadata["fault"] = kind
        if kind is None:
            return
        self._record(kind)
        if kind in ("slowdown", "error500"):
            code = 503 if kind == "slowdown" else 500
            body = SLOWDOWN if code == 503 else SLOWDOWN.replace(b"SlowDown", b"InternalError")
            flow.response = http.Response.make(code, body if flow.request.method != "HEAD" else b"",
                                               {"Content-Type": "application/xml"})
        elif kind == "reset":
            flow.kill()
        elif kind == "latency":
            await asyncio.sleep(0.3)

    def response(self, flow: http.HTTPFlow) -> None:
        kind = flow.metadata.get("fault")
        if kind == "drop":
            flow.kill()  # the upstream has done the write; the client never hears so
        elif kind in ("truncate", "stall") and flow.response is not None:
            full = flow.response.raw_content or b""
            flow.response.raw_content = full[: len(full) // 2]
            flow.response.headers["content-length"] = str(len(full))
            if kind == "truncate":
                flow.response.headers["connection"] = "close"  # hang up after half
            else:
                (self._dir() / "stalled").write_text("1")  # half sent, the rest never comes


addons = [Faults()]
