"""The one error root of zkml-dvc and its subclasses.

Every error carries a one-line ``message`` (what went wrong, naming the file, run or stage) and a
``remedy`` (what to do). The CLI maps each class to an exit code through ``EXIT_CODES``; the library
only raises. Subclasses also inherit a stdlib base where one fits, so callers of the Python API can
catch ``FileNotFoundError`` or ``ValueError`` without knowing our types.
"""

from __future__ import annotations


class ZkmlError(Exception):
    """Root of every error zkml-dvc raises on purpose."""

    exit_code_name = "error"

    def __init__(self, message: str, remedy: str = "") -> None:
        self.message = message
        self.remedy = remedy
        super().__init__(self.one_line())

    def one_line(self) -> str:
        if self.remedy:
            sep = " " if self.message.endswith(".") else ". "
            return f"{self.message}{sep}{self.remedy}"
        return self.message


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): what a one-line
    error quotes of a library's multi-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class InputError(ZkmlError, ValueError):
    """Bad user input: a missing or corrupt file, a wrong shape, an unknown name."""


class MissingFileError(InputError, FileNotFoundError):
    def __init__(self, path: object, what: str, remedy: str = "") -> None:
        self.path = str(path)
        super().__init__(f"{what} not found: {path}", remedy)


class NotFoundError(ZkmlError, LookupError):
    """A run, model, stage or stored object that does not exist."""


class ConfigError(ZkmlError):
    """Project, remote or environment configuration that cannot work."""


class VersionMismatchError(ConfigError):
    def __init__(self, what: str, recorded: str, installed: str) -> None:
        self.recorded = recorded
        self.installed = installed
        super().__init__(
            f"{what} was made with ezkl {recorded} but ezkl {installed} is installed; "
            "artifacts are not portable across ezkl versions",
            f"Install it with `pip install ezkl=={recorded}` to use this run.",
        )


class LocalWriteError(ConfigError):
    """The local disk refused a write (full, over quota, file-size limit)."""


class StoreError(ZkmlError):
    """The object store refused or could not be reached."""


class IntegrityError(ZkmlError):
    """Something does not match what was recorded or pinned for it (a hash, a size, a name)."""

    DEFAULT_REMEDY = "The stored copy is corrupt or was tampered with; do not use it."

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message, remedy or self.DEFAULT_REMEDY)


class HashMismatchError(IntegrityError):
    """A file's bytes do not hash to the sha256 recorded for them."""

    def __init__(self, what: str, expected: str, actual: str, remedy: str = "") -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"integrity check failed for {what}: its sha256 is {actual[:12]}..., "
            f"not the recorded {expected[:12]}...",
            remedy,
        )


class UnauthenticatedError(ZkmlError):
    """Nothing the verifier trusts authenticates a manifest (no anchor, or a signature that does not
    verify or comes from an unlisted key)."""


class UntrustedSrsError(ZkmlError):
    """A proof verified, but with an SRS that is not the public ceremony one: whoever made the SRS
    could have forged it."""


class ProofInvalidError(ZkmlError):
    """ezkl rejected a proof (or a link between chunk proofs)."""


class PipelineError(ZkmlError):
    """A pipeline stage (an ezkl step, or DVC itself) failed."""


class EzklError(PipelineError):
    """An ezkl call raised; names the step and the files it was given."""

    def __init__(self, step: str, files: dict[str, str], detail: str) -> None:
        self.step = step
        self.files = files
        shown = ", ".join(f"{k}={v}" for k, v in files.items())
        super().__init__(
            f"ezkl {step} failed ({shown}): {detail}",
            "Check the files named above; run with -v for the full ezkl log.",
        )


class CircuitUnsatisfiedError(PipelineError):
    """ezkl's mock found constraints or lookups the witness does not satisfy (before keygen)."""


class InsufficientMemoryError(ZkmlError):
    """The cost estimate says keygen or proving would exceed this machine's available memory."""


# The one table of exit codes (documented in docs/errors.md and in `zkml-dvc --help`).
EXIT_CODES: dict[type[ZkmlError], int] = {
    InputError: 2,
    ProofInvalidError: 3,
    IntegrityError: 4,
    StoreError: 5,
    ConfigError: 6,
    PipelineError: 7,
    NotFoundError: 8,
    UntrustedSrsError: 9,
    UnauthenticatedError: 10,
    InsufficientMemoryError: 11,
}
EXIT_INTERNAL = 1


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error: the most specific class in ``EXIT_CODES`` wins."""
    for klass in type(exc).__mro__:
        if klass in EXIT_CODES:
            return EXIT_CODES[klass]  # type: ignore[index]
    return EXIT_INTERNAL
