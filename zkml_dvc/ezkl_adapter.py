"""The one place that calls ezkl.

Every function takes explicit paths (ezkl's defaults are relative to the working directory), returns
plain values, and turns ezkl's RuntimeError/IOError into ``EzklError`` naming the step and files.
Inside ``recording()`` every call is also recorded (function and arguments, with the paths a user
knows), which is what stage records and manifests list. ezkl is imported inside the functions so
that `zkml-dvc --help` stays fast.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import env
from .errors import CircuitUnsatisfiedError, EzklError, ProofInvalidError, first_line
from .records import EzklCall

_RECORDER: contextvars.ContextVar[list[EzklCall] | None] = contextvars.ContextVar(
    "zkml_dvc_ezkl_recorder", default=None)

SETTINGS_TIMESTAMP = 0  # ezkl needs an integer; a fixed one makes settings.json byte-stable


def version() -> str:
    from importlib.metadata import version as _v

    return _v("ezkl")


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.incomplete$")


def _shown(path: Path | str) -> str:
    """The path a user knows: outputs are written under a temp name (fsutil.atomic_path)."""
    p = Path(path)
    m = _TEMP_NAME.match(p.name)
    shown = p.with_name(m.group("name")) if m else p
    try:
        return str(shown.relative_to(Path.cwd()))
    except ValueError:
        return str(shown)


@contextlib.contextmanager
def recording() -> Iterator[list[EzklCall]]:
    """Record every ezkl call made inside the block into the yielded list."""
    calls: list[EzklCall] = []
    token = _RECORDER.set(calls)
    try:
        yield calls
    finally:
        _RECORDER.reset(token)


def _record(function: str, files: Mapping[str, Path | str], **extra: Any) -> None:
    calls = _RECORDER.get()
    if calls is None:
        return
    # The SRS lives in the user's cache: record it by its content name, not the machine's path.
    args: dict[str, Any] = {k: (f"srs:{Path(v).name}" if k == "srs" else _shown(v))
                            for k, v in files.items()}
    args.update(extra)
    calls.append(EzklCall(function=function, args=args))


@contextlib.contextmanager
def _ezkl_lock() -> Iterator[None]:
    """Exclusive lock on ezkl's directory for the length of one ezkl call.

    ezkl caches lookup tables in $EZKL_REPO_PATH/cache (default ~/.ezkl/cache) with no locking of
    its own: two processes filling it at once fail with "[tensor] load error: No such file or
    directory". Runs on one machine therefore take turns per ezkl step (one step already uses
    every core); processes with different EZKL_REPO_PATHs do not wait for each other.
    """
    import fcntl

    repo = Path(env.get(env.EZKL_REPO_PATH) or Path.home() / ".ezkl")
    repo.mkdir(parents=True, exist_ok=True)
    with open(repo / ".zkml-dvc.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _call(step: str, files: Mapping[str, Path | str], fn: Any, *args: Any,
          _extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    try:
        # Only calls that touch ezkl's directory need the lock; pure conversions (no files) do not,
        # and must not create ~/.ezkl on a verifier's machine.
        with _ezkl_lock() if files else contextlib.nullcontext():
            result = fn(*args, **kwargs)
        if files:
            _record(step, files, **(_extra or {}))
        return result
    except (RuntimeError, OSError, ValueError) as exc:
        detail = first_line(exc)
        raise EzklError(step, {k: _shown(v) for k, v in files.items()}, detail) from exc


def _require_true(step: str, files: Mapping[str, Path | str], result: Any) -> None:
    if result is False:
        raise EzklError(step, {k: _shown(v) for k, v in files.items()}, "ezkl returned False")


def run_arg_defaults() -> dict[str, Any]:
    """Every field of the installed ezkl's PyRunArgs with its default: what params.yaml's
    run_args may set (read from ezkl itself, so a new ezkl field needs no code change)."""
    import ezkl

    args = ezkl.PyRunArgs()
    return {name: getattr(args, name) for name in sorted(dir(args))
            if not name.startswith("_") and not callable(getattr(args, name))}


def _as_ezkl_value(value: Any, default: Any) -> Any:
    """YAML has lists where ezkl wants tuples (lookup_range, each of `variables`' pairs)."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(default, list) and isinstance(value, list) and default and \
            isinstance(default[0], tuple):
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return value


def py_run_args(run_args: Mapping[str, Any]) -> Any:
    """An ezkl PyRunArgs with ``run_args`` set; ValueError names a field ezkl refuses and why."""
    import ezkl

    defaults = run_arg_defaults()
    py_args = ezkl.PyRunArgs()
    for field, value in run_args.items():
        if field not in defaults:
            raise ValueError(f"ezkl {version()} has no run arg {field!r}; it has: "
                             f"{', '.join(defaults)}")
        try:
            setattr(py_args, field, _as_ezkl_value(value, defaults[field]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"ezkl refuses run arg {field}={value!r}: "
                             f"{str(exc).splitlines()[0]}") from None
    return py_args


def gen_settings(model: Path, settings: Path, run_args: Mapping[str, Any]) -> None:
    """``run_args``: params.yaml's run_args (``RunArgs.for_ezkl()``), every field a PyRunArgs one."""
    import ezkl

    py_args = py_run_args(run_args)
    files = {"model": model, "settings": settings}
    _require_true(
        "gen_settings",
        files,
        _call("gen_settings", files, ezkl.gen_settings, str(model), str(settings), py_run_args=py_args,
              _extra={"py_run_args": dict(run_args)}),
    )
    canonicalize_settings(settings)


# calibrate_settings' own arguments; every other keyword of the installed ezkl's function is a
# calibration option params.yaml may set (`calibration_options`)
_CALIBRATE_POSITIONAL = ("data", "model", "settings", "target", "scales")


def calibration_option_names() -> list[str]:
    """The keyword options of the installed ezkl's calibrate_settings, read from its signature
    (ezkl 23.0.5: lookup_safety_margin, scale_rebase_multiplier, max_logrows)."""
    import inspect

    import ezkl

    try:
        names = list(inspect.signature(ezkl.calibrate_settings).parameters)
    except (TypeError, ValueError):  # no text signature: the options ezkl 23 documents
        names = ["lookup_safety_margin", "scale_rebase_multiplier", "max_logrows"]
    return [n for n in names if n not in _CALIBRATE_POSITIONAL]


def calibrate_settings(
    data: Path, model: Path, settings: Path, target: str, scales: list[int] | None,
    scale_rebase_multiplier: list[int] | None = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """``options``: params.yaml's calibration_options (names from calibration_option_names);
    ``scale_rebase_multiplier`` overrides the option of that name (chunked models pin it)."""
    import ezkl

    files = {"data": data, "model": model, "settings": settings}
    extra: dict[str, Any] = dict(options or {})
    if scale_rebase_multiplier is not None:
        extra["scale_rebase_multiplier"] = scale_rebase_multiplier
    _require_true(
        "calibrate_settings",
        files,
        _call(
            "calibrate_settings",
            files,
            ezkl.calibrate_settings,
            str(data),
            str(model),
            str(settings),
            target,
            scales=scales,
            _extra={"target": target, "scales": scales, **extra},
            **extra,
        ),
    )
    canonicalize_settings(settings)


# Lists ezkl fills from hash sets: their order changes from run to run, their meaning does not.
_SET_LIKE_FIELDS = ("required_range_checks", "required_lookups")


def canonicalize_settings(settings: Path) -> None:
    """Write settings so that equal settings have equal bytes (and equal DVC hashes).

    ezkl's settings.json varies between runs on the same inputs in three ways: the ``timestamp``,
    the key order of its hash maps, and the order of set-like lists. We pin the first, sort the
    keys, and sort the set-like lists; ezkl reads all three back the same.
    """
    from .fsutil import atomic_write_text

    data = json.loads(settings.read_text())
    data["timestamp"] = SETTINGS_TIMESTAMP
    for name in _SET_LIKE_FIELDS:
        if isinstance(data.get(name), list):
            data[name] = sorted(data[name], key=lambda v: json.dumps(v, sort_keys=True))
    atomic_write_text(settings, json.dumps(data, indent=2, sort_keys=True) + "\n")


def compile_circuit(model: Path, compiled: Path, settings: Path) -> None:
    import ezkl

    files = {"model": model, "compiled": compiled, "settings": settings}
    _require_true(
        "compile_circuit",
        files,
        _call("compile_circuit", files, ezkl.compile_circuit, str(model), str(compiled), str(settings)),
    )


def gen_srs(srs: Path, logrows: int) -> None:
    import ezkl

    _call("gen_srs", {"srs": srs}, ezkl.gen_srs, str(srs), logrows, _extra={"logrows": logrows})


def get_srs(srs: Path, logrows: int) -> None:
    import ezkl

    files = {"srs": srs}
    _require_true(
        "get_srs", files, _call("get_srs", files, ezkl.get_srs, logrows=logrows, srs_path=str(srs),
                               _extra={"logrows": logrows})
    )


def gen_witness(
    data: Path, compiled: Path, witness: Path, vk: Path | None = None, srs: Path | None = None
) -> dict[str, Any]:
    import ezkl

    files: dict[str, Path | str] = {"data": data, "compiled": compiled, "witness": witness}
    kwargs: dict[str, Any] = {}
    if vk is not None and srs is not None:
        files.update(vk=vk, srs=srs)
        kwargs = {"vk_path": str(vk), "srs_path": str(srs)}
    result = _call(
        "gen_witness", files, ezkl.gen_witness, str(data), str(compiled), str(witness), **kwargs
    )
    return dict(result) if isinstance(result, dict) else {}


_UNSATISFIED_RE = re.compile(r"^(Lookup|Constraint|Equality constraint|Cell|Shuffle|Permutation)"
                             r"\b.*\bnot satisfied", re.MULTILINE)


def mock(witness: Path, compiled: Path) -> None:
    """ezkl's mock prover: check that ``witness`` satisfies the circuit, without keys or SRS.

    Raises CircuitUnsatisfiedError naming how many lookups and constraints failed.
    """
    import ezkl

    files = {"witness": witness, "compiled": compiled}
    try:
        with _ezkl_lock():
            ok = ezkl.mock(str(witness), str(compiled))
    except (RuntimeError, OSError) as exc:
        kinds = Counter(m.group(1).lower() for m in _UNSATISFIED_RE.finditer(str(exc)))
        found = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(kinds.items()))
        raise CircuitUnsatisfiedError(
            f"ezkl mock: the witness does not satisfy the circuit {_shown(compiled)} "
            f"({found + ' not satisfied' if found else first_line(exc)})", "") from exc
    if ok is not True:
        raise CircuitUnsatisfiedError(f"ezkl mock returned {ok!r} for {_shown(compiled)}", "")
    _record("mock", files)


def setup(compiled: Path, vk: Path, pk: Path, srs: Path) -> None:
    import ezkl

    files = {"compiled": compiled, "vk": vk, "pk": pk, "srs": srs}
    _require_true(
        "setup",
        files,
        _call("setup", files, ezkl.setup, str(compiled), str(vk), str(pk), srs_path=str(srs)),
    )


def prove(witness: Path, compiled: Path, pk: Path, proof: Path, srs: Path) -> None:
    import ezkl

    files = {"witness": witness, "compiled": compiled, "pk": pk, "proof": proof, "srs": srs}
    _call("prove", files, ezkl.prove, str(witness), str(compiled), str(pk), str(proof), srs_path=str(srs))


def verify(proof: Path, settings: Path, vk: Path, srs: Path) -> None:
    """Return if ezkl accepts the proof; raise ProofInvalidError if it rejects it.

    ezkl's verify never returns False: a bad proof raises RuntimeError.
    """
    import ezkl

    files = {"proof": proof, "settings": settings, "vk": vk, "srs": srs}
    try:
        with _ezkl_lock():
            ok = ezkl.verify(str(proof), str(settings), str(vk), srs_path=str(srs),
                             reduced_srs=False)
    except (RuntimeError, OSError) as exc:
        detail = first_line(exc)
        raise ProofInvalidError(
            f"proof {proof} did not verify against {vk}: {detail}",
            "The proof, verification key, settings or SRS do not belong together.",
        ) from exc
    if ok is not True:
        raise ProofInvalidError(f"proof {proof} did not verify against {vk}", "")
    _record("verify", files)


def float_to_felt(values: list[float], scale: int) -> list[str]:
    """ezkl's quantisation of each value at ``scale``, as the field elements proofs carry."""
    import ezkl

    return [str(_call("float_to_felt", {}, ezkl.float_to_felt, float(v), scale, ezkl.PyInputType.F32))
            for v in values]


def poseidon_hash(felts: list[str]) -> list[str]:
    import ezkl

    return [str(h) for h in _call("poseidon_hash", {}, ezkl.poseidon_hash, felts)]


def felt_to_float(felt: str, scale: int) -> float:
    """ezkl's decoding of one field element (as proofs carry it) at ``scale``."""
    import ezkl

    return float(_call("felt_to_float", {}, ezkl.felt_to_float, felt, scale))


def create_evm_verifier(vk: Path, settings: Path, srs: Path, sol: Path) -> None:
    """ezkl's Solidity verifier for ``vk`` written to ``sol`` (byte-stable: the same vk, settings
    and SRS give the same bytes).

    ezkl 23 renders the contract, then asks svm for a solc binary to write the ABI: offline that
    download fails *after* the contract is complete. That one failure is accepted when the contract
    ends with its closing brace; the ABI is made by our own compiler step (evm.py). Any other
    failure is an EzklError.
    """
    import asyncio

    import ezkl

    files = {"vk": vk, "settings": settings, "srs": srs, "sol": sol}
    abi = sol.with_name(f".{sol.name}.abi.unused")

    async def render() -> Any:
        return await ezkl.create_evm_verifier(str(vk), str(settings), str(sol), str(abi),
                                              srs_path=str(srs), reusable=False)

    try:
        with _ezkl_lock():
            asyncio.run(render())
    except RuntimeError as exc:
        text = str(exc)
        if not ("svm" in text and sol.exists() and sol.read_bytes().rstrip().endswith(b"}")):
            raise EzklError("create_evm_verifier", {k: _shown(v) for k, v in files.items()},
                            first_line(exc)) from exc
    finally:
        abi.unlink(missing_ok=True)
    if not sol.exists():
        raise EzklError("create_evm_verifier", {k: _shown(v) for k, v in files.items()},
                        "ezkl wrote no verifier")
    _record("create_evm_verifier", files)


def encode_evm_calldata(proof: Path, calldata: Path) -> None:
    """The EVM calldata of ``proof`` (verifyProof(bytes,uint256[]) with its instances)."""
    import ezkl

    files = {"proof": proof, "calldata": calldata}
    _call("encode_evm_calldata", files, ezkl.encode_evm_calldata, str(proof), str(calldata))
