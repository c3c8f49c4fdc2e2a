"""params.yaml: the pipeline's parameters as a validated pydantic model.

Visibilities are always explicit: ezkl's Python API and CLI have different defaults, so a run that
relied on either would not mean the same thing on another machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError, MissingFileError, NotFoundError

PARAMS_FILE = "params.yaml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

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
    """The subset of ezkl's PyRunArgs we set, every visibility explicit."""

    model_config = ConfigDict(extra="forbid")

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


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    onnx: str
    input: str
    calibration: str
    run_args: RunArgs
    calibration_target: Literal["resources", "accuracy"] = "resources"
    scales: list[int] | None = None


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
    models: dict[str, ModelParams]

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_name(v, "project id")

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict[str, ModelParams]) -> dict[str, ModelParams]:
        if not v:
            raise ValueError("at least one model is required")
        for name in v:
            check_name(name, "model name")
        return v

    def model(self, name: str | None) -> tuple[str, ModelParams]:
        """The named model (or the default one); NotFoundError names the known ones."""
        chosen = name or self.default_model
        if chosen not in self.models:
            known = ", ".join(sorted(self.models))
            raise NotFoundError(
                f"unknown model {chosen!r} in {PARAMS_FILE}",
                f"Use one of: {known} (or add it under `models:` in {PARAMS_FILE}).",
            )
        return chosen, self.models[chosen]


def load_params(root: Path) -> Params:
    """Read and validate ``root/params.yaml``; errors name the file and the key."""
    path = root / PARAMS_FILE
    if not path.exists():
        raise MissingFileError(
            path, "params file", "Run this inside a zkml-dvc project (see `zkml-dvc init`)."
        )
    try:
        raw = yaml.safe_load(path.read_text())
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
    if params.default_model not in params.models:
        raise InputError(
            f"{source}: default_model {params.default_model!r} is not under `models:`",
            f"Set default_model to one of: {', '.join(sorted(params.models))}.",
        )
    return params
