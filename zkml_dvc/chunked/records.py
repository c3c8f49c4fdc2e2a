"""What a chunked run records: the plan (chunk_plan's output) and each chunk's manifest entry."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChunkInfo(BaseModel):
    """One chunk as the plan made it: where it was cut, its visibilities, its circuit's size."""

    index: int = Field(ge=0)
    input_tensor: str
    output_tensor: str
    input_visibility: str
    output_visibility: str
    num_rows: int = Field(description="ezkl's row count for the chunk's circuit")
    calibrated_logrows: int = Field(description="the logrows calibration chose for this chunk alone")
    onnx_sha256: str
    settings_sha256: str


class ChunkPlan(BaseModel):
    model: str
    link: str
    scale: int
    logrows: int = Field(description="shared by every chunk (one SRS)")
    boundaries: list[str]
    balanced_by: str
    chunks: list[ChunkInfo]


class LinkCounts(BaseModel):
    """How many link values (commitment points or hashes) a chunk's proof has for its input and
    output boundary tensors; read from its witness, recorded in the manifest."""

    index: int
    link_inputs: int = Field(default=0, ge=0, description="link values (commitment points or "
                                                          "hashes) for the chunk's input")
    link_outputs: int = Field(default=0, ge=0, description="link values for the chunk's output")


class ChunkEntry(ChunkInfo, LinkCounts):
    """One chunk of a chunked run in its manifest: the plan's entry, its link counts, and how long
    its proof took."""

    prove_seconds: float | None = Field(default=None, description="None if DVC had it cached")
