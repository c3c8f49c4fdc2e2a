"""A loopback reverse proxy in front of SeaweedFS that enforces Akave O3's documented S3 surface.

Every request from every client (DVC/s3fs, boto3, the aws CLI) is classified into an S3 operation
from its method, path and query. Operations O3 does not document, headers it rejects (SDK checksum
headers, conditional writes) and object keys outside its safe character set are recorded as
violations; tests fail if any occurred. It also counts the request body bytes per operation, which
is how the dedup tests measure what was uploaded.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from zkml_dvc.o3names import SAFE_KEY_RE

O3_OPERATIONS = frozenset({
    "ListBuckets", "CreateBucket", "DeleteBucket", "HeadBucket", "PutBucketVersioning",
    "PutObject", "GetObject", "HeadObject", "DeleteObject", "DeleteObjects", "ListObjects",
    "ListObjectsV2", "ListObjectVersions", "CopyObject", "CreateMultipartUpload", "UploadPart",
    "CompleteMultipartUpload", "AbortMultipartUpload", "ListMultipartUploads",
    "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging",
})
FORBIDDEN_HEADER_PREFIXES = ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def classify(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    parts = [p for p in path.split("/") if p]
    q = set(query)
    if not parts:
        return "ListBuckets" if method == "GET" else f"Unknown:{method} /"
    if len(parts) == 1:  # bucket-level
        if method == "HEAD":
            return "HeadBucket"
        if method == "PUT":
            return "PutBucketVersioning" if "versioning" in q else (
                "CreateBucket" if not q else f"PutBucket?{','.join(sorted(q))}")
        if method == "DELETE":
            return "DeleteBucket" if not q else f"DeleteBucket?{','.join(sorted(q))}"
        if method == "POST" and "delete" in q:
            return "DeleteObjects"
        if method == "GET":
            if "versions" in q:
                return "ListObjectVersions"
            if "uploads" in q:
                return "ListMultipartUploads"
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if q - {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}:
                return f"GetBucket?{','.join(sorted(q))}"
            return "ListObjects"
        return f"Unknown:{method} bucket"
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        if "uploadId" in q:
            return "ListParts"
        if "tagging" in q:
            return "GetObjectTagging"
        if "attributes" in q:
            return "GetObjectAttributes"
        return "GetObject"
    if method == "PUT":
        if "partNumber" in q and "uploadId" in q:
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        if "tagging" in q:
            return "PutObjectTagging"
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        return "Unknown:POST object"
    if method == "DELETE":
        if "uploadId" in q:
            return "AbortMultipartUpload"
        if "tagging" in q:
            return "DeleteObjectTagging"
        return "DeleteObject"
    return f"Unknown:{method} object"


@dataclass
class GuardLog:
    operations: Counter[str] = field(default_factory=Counter)
    body_bytes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    # every violation of the session, never reset: what the per-test teardown check reads
    every_violation: list[str] = field(default_factory=list)
    put_keys: list[str] = field(default_factory=list)
    put_clients: list[str] = field(default_factory=list)  # beside put_keys: "s3fs" or "zkml-dvc"
    get_keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.operations.clear()
            self.body_bytes.clear()
            self.violations.clear()
            self.put_keys.clear()
            self.put_clients.clear()
            self.get_keys.clear()

    @property
    def uploaded_bytes(self) -> int:
        return self.body_bytes["PutObject"] + self.body_bytes["UploadPart"]

    @property
    def downloaded_bytes(self) -> int:
        return self.body_bytes["GetObject:response"]




class S3Guard:
    """Run with ``start()``; point clients at ``endpoint``; read ``log``.

    Fault injection is not here: tests/faultproxy.py puts mitmproxy in front of this guard.
    """

    def __init__(self, upstream: str, cert: str | None = None, key: str | None = None,
                 ca: str | None = None) -> None:
        """``upstream``: SeaweedFS's S3 endpoint (http or https, verified against ``ca``). With
        ``cert``/``key`` the guard itself serves HTTPS, as O3 does."""
        up = urlsplit(upstream)
        self.upstream_host, self.upstream_port = up.hostname or "127.0.0.1", up.port or 80
        self.upstream_tls = ssl.create_default_context(cafile=ca) if up.scheme == "https" else None
        self.log = GuardLog()
        guard = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                query = parse_qs(split.query, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                op = classify(self.command, split.path, query, headers)
                length = int(headers.get("content-length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    # The client died mid-body: drop the request as a server would, never
                    # forward a truncated body under the original Content-Length.
                    self.close_connection = True
                    return
                problems = []
                if op not in O3_OPERATIONS:
                    problems.append(f"operation {op} is not documented by O3")
                for h in headers:
                    if h.startswith(FORBIDDEN_HEADER_PREFIXES):
                        problems.append(f"{op} sent header {h} (O3 rejects SDK checksum headers)")
                if op == "PutObject" and ("if-none-match" in headers or "if-match" in headers):
                    problems.append("PutObject with a conditional header (not supported by O3)")
                parts = split.path.split("/", 2)
                if len(parts) == 3 and parts[2]:
                    key = unquote(parts[2])
                    if not SAFE_KEY_RE.match(key):
                        problems.append(f"object key {key!r} outside O3's safe characters")
                    if op in ("PutObject", "CreateMultipartUpload", "GetObject"):
                        with guard.log.lock:
                            keys = guard.log.get_keys if op == "GetObject" else guard.log.put_keys
                            keys.append(key)
                            if op != "GetObject":  # s3fs (DVC's) or zkml-dvc's (boto3, obstore)
                                agent = headers.get("user-agent", "").lower()
                                guard.log.put_clients.append(
                                    "s3fs" if "aiobotocore" in agent else "zkml-dvc")
                with guard.log.lock:
                    guard.log.operations[op] += 1
                    guard.log.body_bytes[op] += len(body)
                    guard.log.violations.extend(problems)
                    guard.log.every_violation.extend(problems)
                conn: http.client.HTTPConnection
                if guard.upstream_tls is not None:
                    conn = http.client.HTTPSConnection(guard.upstream_host, guard.upstream_port,
                                                       timeout=120, context=guard.upstream_tls)
                else:
                    conn = http.client.HTTPConnection(guard.upstream_host, guard.upstream_port,
                                                      timeout=120)
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body or None, headers=fwd)
                resp = conn.getresponse()
                data = resp.read()
                if op == "GetObject":
                    with guard.log.lock:
                        guard.log.body_bytes["GetObject:response"] += len(data)
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                # A HEAD answer has no body but must carry the object's real length.
                length_header = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length_header or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if cert and key:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            # the handshake happens in each request's thread, not in the accepting one
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            scheme = "https"
        self.endpoint = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> S3Guard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
