"""Records of what ran: one ezkl call, one pipeline stage.

The ezkl adapter records every call it makes (``ezkl_adapter.recording``), so a stage record
cannot drift from the calls that made its outputs. The manifest's per-stage entries extend
``StageRecord`` (manifest.StageRun) rather than copying its fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EzklCall(BaseModel):
    function: str
    args: dict[str, Any]


class StageRecord(BaseModel):
    """What `zkml-dvc stage NAME` wrote to ``reports/stages/<stage>.json``."""

    stage: str
    model: str
    command: str
    ezkl_calls: list[EzklCall]
    started: datetime
    ended: datetime
    duration_s: float
    ezkl_version: str
    peak_rss_bytes: int | None = Field(
        default=None, description="peak resident memory of the stage's own process (keygen, "
                                  "proving): its VmHWM, which counts nothing of the DVC process "
                                  "that started it; empty for a light stage that `zkml-dvc run` "
                                  "ran inside its own process")


class Check(BaseModel):
    """One thing a verification or audit established (or failed to), with its basis."""

    name: str
    ok: bool
    detail: str = ""
