"""params.yaml: the pipeline's parameters as a validated pydantic model.

Visibilities are always explicit: ezkl's Python API and CLI have different defaults, so a run that
relied on either would not mean the same thing on another machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError, MissingFileError, NotFoundError
from .fsutil import load_yaml

PARAMS_FILE = "params.yaml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# run ids: also git ref components and O3 object keys (runs.validate_run_id adds the rest)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

Visibility = str  # validated below: ezkl accepts a few forms with suffixes (hashed/private/0)
_VISIBILITY_RE = re.compile(r"^(private|public|fixed|polycommit|hashed(/public|/private(/[0-9,]+)?)?)$")


def check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


class RunArgs(BaseModel):
    """ezkl's PyRunArgs as params.yaml gives them: the three visibilities always explicit, and any
    other field of the installed ezkl's PyRunArgs (num_inner_cols, lookup_range, decomp_base,
    decomp_legs, scale_rebase_multiplier, bounded_log_lookup, check_mode, epsilon, variables, ...),
    checked against ezkl itself: an unknown name or a value ezkl refuses is an error naming it."""

    model_config = ConfigDict(extra="allow")

    input_visibility: Visibility
    output_visibility: Visibility
    param_visibility: Visibility
    logrows: int | None = Field(default=None, ge=1, le=26)
    input_scale: int | None = Field(default=None, ge=0, le=30)
    param_scale: int | None = Field(default=None, ge=0, le=30)

    @field_validator("input_visibility", "output_visibility", "param_visibility")
    @classmethod
    def _visibility(cls, v: str) -> str:
        if not _VISIBILITY_RE.match(v):
            raise ValueError(
                f"unknown visibility {v!r}; use private, public, fixed, polycommit, hashed, "
                "hashed/public or hashed/private"
            )
        return v

    @field_validator("param_visibility")
    @classmethod
    def _param_not_public(cls, v: str) -> str:
        if v == "public":
            raise ValueError("param_visibility 'public' is rejected by ezkl; use fixed or private")
        return v

    @model_validator(mode="after")
    def _ezkl_accepts(self) -> RunArgs:
        if self.model_extra:
            from .ezkl_adapter import py_run_args

            py_run_args(self.model_extra)  # ValueError names the field and what ezkl said
        return self

    def for_ezkl(self) -> dict[str, Any]:
        """The fields to set on ezkl's PyRunArgs (the unset ones keep ezkl's defaults)."""
        return self.model_dump(exclude_none=True)


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    onnx: str
    input: str
    calibration: str
    run_args: RunArgs
    calibration_target: Literal["resources", "accuracy"] = "resources"
    scales: list[int] | None = None
    # keyword options of ezkl's calibrate_settings (max_logrows, lookup_safety_margin,
    # scale_rebase_multiplier with ezkl 23), names checked against the installed ezkl
    calibration_options: dict[str, Any] = Field(default_factory=dict)
    # the `evm` stage renders ezkl's Solidity verifier and the proof's calldata, checked in a local
    # EVM (docs/evm.md); off by default: it adds solc's compile (~2 s) to every changed vk
    evm: bool = False

    @field_validator("calibration_options")
    @classmethod
    def _calibration_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v:
            from .ezkl_adapter import calibration_option_names, version

            known = calibration_option_names()
            unknown = sorted(set(v) - set(known))
            if unknown:
                raise ValueError(f"ezkl {version()}'s calibrate_settings has no option "
                                 f"{unknown[0]!r}; it has: {', '.join(known)}")
        return v


LinkMode = Literal["polycommit", "hashed"]
# The visibility each link mode gives the tensor between two chunks (output of one, input of next).
LINK_VISIBILITY: dict[str, str] = {"polycommit": "polycommit", "hashed": "hashed/public"}


class ChunkedModelParams(ModelParams):
    """A model proved as ``chunks`` consecutive pieces, linked so a verifier knows they fit.

    run_args' input visibility applies to the first chunk, its output visibility to the last; the
    tensors between chunks get the link's visibility. ``scales`` must pin one scale (all chunks use
    it, with scale_rebase_multiplier 1, so an intermediate has the same scale on both sides).
    """

    chunks: int = Field(default=2, ge=1, le=16)
    link: LinkMode = "polycommit"
    boundaries: list[str] = Field(
        default_factory=list,
        description="tensor names to cut after (chunks - 1 of them); empty: balance by rows",
    )

    @field_validator("scales")
    @classmethod
    def _one_scale(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and len(v) != 1:
            raise ValueError("a chunked model pins one scale for all chunks: give exactly one")
        return v

    @field_validator("evm")
    @classmethod
    def _no_evm(cls, v: bool) -> bool:
        if v:
            raise ValueError("a chunked model has no EVM verifier (one proof per chunk): "
                             "set evm: false, or prove it as one model")
        return v


class ChunkStage(BaseModel):
    """One entry of the generated ``chunk_stages`` table that dvc.yaml's per-chunk stages expand."""

    model_config = ConfigDict(extra="forbid")

    model: str
    index: int = Field(ge=0)
    data: str = Field(description="what the chunk's witness reads: the model input for chunk 0, "
                                  "the previous chunk's witness after that")


def chunk_key(model: str, index: int) -> str:
    return f"{model}-c{index}"


def chunk_stage_table(chunked: dict[str, ChunkedModelParams]) -> dict[str, ChunkStage]:
    from .layout import ModelLayout

    table: dict[str, ChunkStage] = {}
    for name, cp in sorted(chunked.items()):
        for i in range(cp.chunks):
            data = cp.input if i == 0 else str(ModelLayout(name, i - 1).witness)
            table[chunk_key(name, i)] = ChunkStage(model=name, index=i, data=data)
    return table


class SrsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # local: ezkl.gen_srs, a random test SRS (insecure: whoever made it can forge proofs).
    # public: ezkl.get_srs, the perpetual-powers-of-tau SRS (needs the internet once).
    source: Literal["local", "public"] = "local"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str
    default_model: str
    srs: SrsPolicy = SrsPolicy()
    models: dict[str, ModelParams] = Field(default_factory=dict)
    chunked: dict[str, ChunkedModelParams] = Field(default_factory=dict)
    # Generated from `chunked` by zkml-dvc (`zkml-dvc run` and `zkml-dvc chunks sync` rewrite it).
    chunk_stages: dict[str, ChunkStage] = Field(default_factory=dict)

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_name(v, "project id")

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict[str, ModelParams]) -> dict[str, ModelParams]:
        for name in v:
            check_name(name, "model name")
        return v

    @field_validator("chunked")
    @classmethod
    def _chunked(cls, v: dict[str, ChunkedModelParams]) -> dict[str, ChunkedModelParams]:
        for name, cp in v.items():
            check_name(name, "model name")
            if cp.boundaries and len(cp.boundaries) != cp.chunks - 1:
                raise ValueError(f"model {name}: {cp.chunks} chunks need {cp.chunks - 1} "
                                 f"boundaries, got {len(cp.boundaries)}")
        return v

    def model(self, name: str | None) -> tuple[str, ModelParams]:
        """The named model (or the default one), monolithic or chunked; NotFoundError names the
        known ones."""
        chosen = name or self.default_model
        if chosen in self.models:
            return chosen, self.models[chosen]
        if chosen in self.chunked:
            return chosen, self.chunked[chosen]
        known = ", ".join(sorted({*self.models, *self.chunked}))
        raise NotFoundError(
            f"unknown model {chosen!r} in {PARAMS_FILE}",
            f"Use one of: {known} (or add it under `models:` in {PARAMS_FILE}).",
        )

    def chunked_model(self, name: str) -> ChunkedModelParams:
        """The chunked model ``name``; InputError if it is missing or not chunked."""
        if name not in self.chunked:
            raise InputError(
                f"model {name!r} is not a chunked model in {PARAMS_FILE}",
                f"Declare it under `chunked:` in {PARAMS_FILE} (see docs/chunked.md).",
            )
        return self.chunked[name]


def load_params(root: Path) -> Params:
    """Read and validate ``root/params.yaml``; errors name the file and the key."""
    path = root / PARAMS_FILE
    if not path.exists():
        raise MissingFileError(
            path, "params file", "Run this inside a zkml-dvc project (see `zkml-dvc init`)."
        )
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML ({exc})", f"Fix {path}.") from None
    return parse_params(raw, str(path))


def parse_params(raw: object, source: str) -> Params:
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"{source}: {loc}: {err['msg']}", f"Fix `{loc}` in {source}."
        ) from None
    if not params.models and not params.chunked:
        raise InputError(f"{source}: no model: `models:` and `chunked:` are both empty",
                         f"Declare at least one model in {source} (see docs/pipeline.md).")
    if params.default_model not in params.models and params.default_model not in params.chunked:
        raise InputError(
            f"{source}: default_model {params.default_model!r} is not under `models:` or "
            "`chunked:`",
            f"Set default_model to one of: {', '.join(sorted({*params.models, *params.chunked}))}.",
        )
    both = sorted(set(params.models) & set(params.chunked))
    if both:
        raise InputError(
            f"{source}: model {both[0]!r} is under both `models:` and `chunked:`",
            "Give the chunked variant its own name (its artifacts live under artifacts/<name>/).",
        )
    return params


def sync_chunk_stages(root: Path, overrides: dict[str, dict[str, object]] | None = None) -> bool:
    """Rewrite params.yaml's generated ``chunk_stages`` table from ``chunked`` (after applying
    ``overrides``: {model: {field: value}}), keeping comments; True if the file changed."""
    from dvc.utils.serialize import modify_yaml

    path = root / PARAMS_FILE
    params = load_params(root)
    before = path.read_bytes()
    with modify_yaml(path) as data:
        for model, fields in (overrides or {}).items():
            params.chunked_model(model)
            for key, value in fields.items():
                data["chunked"][model][key] = value
        merged = parse_params(_plain(data), str(path))
        data["chunk_stages"] = {
            k: v.model_dump() for k, v in chunk_stage_table(merged.chunked).items()
        }
    del params
    return path.read_bytes() != before


def _plain(data: object) -> object:
    """ruamel's commented maps as plain dicts/lists (for validation)."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data
