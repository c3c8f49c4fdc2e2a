"""Choosing a model's shape (shape.py): the only two places that look at whether a model or a run
is chunked."""

from __future__ import annotations

from .chunked.shape import Chunked
from .manifest import Manifest
from .monolithic import Monolithic
from .params import Params
from .shape import Shape


def shape_for_params(params: Params, model: str | None) -> Shape:
    """The shape of a model declared in params.yaml (default: default_model)."""
    name, mp = params.model(model)
    if name in params.chunked:
        return Chunked(name, params.chunked[name], params)
    return Monolithic(name, mp)


def shape_for_manifest(manifest: Manifest) -> Shape:
    """The shape of a recorded run, from its manifest alone (a verifier may have no params)."""
    if manifest.link is not None:
        return Chunked.from_manifest(manifest)
    return Monolithic(manifest.model)
