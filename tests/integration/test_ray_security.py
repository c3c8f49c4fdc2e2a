"""The local Ray instance of chunked runs: loopback only, token-authenticated (issue 14, item 1).

Runs in a child process so that Ray is imported fresh, as in the CLI (Ray reads its network
settings when it is imported)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# The child starts the instance exactly as `prove_all` does, lists every TCP port that Ray's
# processes listen on, and tries to join the instance from a process that lacks the token.
CHILD = textwrap.dedent("""
    import json, os, subprocess, sys
    import psutil
    from zkml_dvc.raywork import local_ray

    before = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    with local_ray(num_cpus=1):
        import ray
        gcs = ray.get_runtime_context().gcs_address
        scratch = os.environ["TMPDIR"]
        scratch_mode = oct(os.stat(scratch).st_mode & 0o777)
        worker_tmp = ray.get(ray.remote(lambda: __import__("tempfile").gettempdir()).remote())
        session_dir = ray._private.worker._global_node.get_session_dir_path()
        me = psutil.Process()
        listening = []
        for proc in [me, *me.children(recursive=True)]:
            try:
                conns = proc.net_connections(kind="tcp")
            except psutil.Error:
                continue
            listening += [(proc.name(), c.laddr.ip, c.laddr.port)
                          for c in conns if c.status == psutil.CONN_LISTEN]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        intruder = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address={gcs!r}); print('JOINED')"],
            env=env, capture_output=True, text=True, timeout=180)
    after = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    print(json.dumps({"listening": listening, "gcs": gcs, "intruder_rc": intruder.returncode,
                      "intruder_out": intruder.stdout, "intruder_err": intruder.stderr[-2000:],
                      "env_restored": before == after, "scratch": scratch,
                      "scratch_mode": scratch_mode, "worker_tmp": worker_tmp,
                      "session_dir": session_dir, "scratch_left": os.path.exists(scratch)}))
""")


def test_local_ray_listens_on_loopback_only_and_requires_its_token(isolated_env) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    listening = report["listening"]
    # GCS, raylet and workers at least; every one of them on a loopback address.
    assert len(listening) >= 3, listening
    exposed = [entry for entry in listening
               if entry[1] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    assert exposed == [], f"Ray ports reachable from other hosts: {exposed}"
    assert report["gcs"].startswith("127.0.0.1:")
    # A process on the same machine without the token cannot join (and so cannot submit code).
    assert report["intruder_rc"] != 0 and "JOINED" not in report["intruder_out"]
    assert "auth" in report["intruder_err"].lower(), report["intruder_err"]
    assert report["env_restored"]
    # Ray's session files and the workers' scratch live in one private directory, removed after.
    assert report["scratch_mode"] == "0o700"
    assert report["session_dir"].startswith(report["scratch"] + "/ray/")
    assert report["worker_tmp"] == report["scratch"]
    assert not report["scratch_left"]


def test_joining_a_cluster_without_token_auth_warns(monkeypatch) -> None:
    from zkml_dvc.raywork import unauthenticated_warning

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    warning = unauthenticated_warning("10.0.0.5:6379")
    assert warning is not None and "10.0.0.5:6379" in warning and "RAY_AUTH_MODE=token" in warning
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert unauthenticated_warning("10.0.0.5:6379") is None


TWICE = textwrap.dedent("""
    from zkml_dvc.raywork import local_ray

    for i in range(2):
        with local_ray(num_cpus=1):
            import ray
            print("session", i, ray.get(ray.remote(lambda: 40 + 2).remote()), flush=True)
""")


def test_one_process_can_start_the_local_instance_again(isolated_env) -> None:
    # Python API users (and the chunked benchmark) prove twice in one process. Ray's driver keeps
    # the first token it read, so each instance must be started with the same per-process token.
    proc = subprocess.run([sys.executable, "-c", TWICE], capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:2] == ["session 0 42", "session 1 42"], proc.stdout
