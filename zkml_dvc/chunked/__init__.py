"""Chunked models: split a model into consecutive chunks, prove them in parallel on Ray, and link
them so a verifier knows they fit together (docs/chunked.md).

- ``plan``: splitting and calibration (the `chunk_plan` stage);
- ``stages``: the chunk_* pipeline stages;
- ``reproduce`` and ``ray_prove``: `zkml-dvc run` for a chunked model, proofs as Ray tasks;
- ``links``: the link checks between chunk proofs (stage and clean-room verifier alike);
- ``shape``: the chunked implementation of ``shapes.Shape``;
- ``records``: the plan and the manifest's chunk entries.
"""
