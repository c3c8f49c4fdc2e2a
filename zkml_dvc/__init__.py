"""zkml-dvc: reproducible, shareable, auditable ezkl proof pipelines on DVC and Akave O3.

The library never prints or exits; it returns typed objects or raises ``errors.ZkmlError``
subclasses. Heavy dependencies (ezkl, DVC, boto3, onnx) are imported where they are used.

Public entry points::

    from zkml_dvc.runner import run                 # run a pipeline and record it
    from zkml_dvc.run_index import push_run         # push a run and its index
    from zkml_dvc.cleanroom import pull, verify, resume, audit
    from zkml_dvc.artifacts import Artifact, EZKLArtifact, push, pull
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zkml-dvc")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
