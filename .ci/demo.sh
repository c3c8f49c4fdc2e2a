#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded local store (SeaweedFS standing in for O3).
#  1. create a project from the example MLP (build/demo/project, git-ignored)
#  2. start the local store and point the project's DVC remote `o3` at it
#  3. zkml-dvc run: DVC runs the ezkl stages, then manifest, commit, tag, push
#  4. list the store's layout
#  5. clean room: a fresh clone with an empty HOME pulls and verifies the run from the store alone,
#     with ezkl and with the run's Solidity verifier in a local EVM
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEMO=$REPO/build/demo
export ZKML_DVC_CACHE_DIR=${ZKML_DVC_CACHE_DIR:-$REPO/build/cache}
# the demo's own local store (the default is one per user, ~/.local/share/zkml-dvc/store)
export ZKML_DVC_STORE_DIR=${ZKML_DVC_STORE_DIR:-$REPO/build/store}
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-zkml-dvc demo} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-demo@zkml-dvc.invalid}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# start from nothing: the demo's store (a run cache from an earlier demo would be reused) and project
zkml-dvc store down >/dev/null 2>&1 || true
rm -rf "$DEMO" "$ZKML_DVC_STORE_DIR"
mkdir -p "$DEMO"

step "zkml-dvc init: a project for the example MLP"
zkml-dvc init "$DEMO/project" --model models/mlp/network.onnx --input models/mlp/input.json \
  --calibration models/mlp/calibration.json --project zkml-demo --name mlp
cd "$DEMO/project"
# pin one calibration scale, as the repository's params.yaml does (fast, deterministic), and make
# the run's EVM verifier and calldata too (the `evm` stage; docs/evm.md)
sed -i 's/scales: null/scales:\n    - 7/; s/evm: false/evm: true/' params.yaml
git commit -qam "pin calibration scale, EVM verifier on"

step "zkml-dvc store up: the embedded O3 stand-in"
zkml-dvc store up

step "zkml-dvc run: ezkl stages through DVC, manifest, tag, push"
zkml-dvc run
RUN_ID=$(zkml-dvc runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["run_id"])')
zkml-dvc show "$RUN_ID"

step "dvc repro again: nothing to do"
dvc status

step "the store's layout (any S3 client can read the run index)"
zkml-dvc store ls

step "clean room: fresh clone, empty HOME, only the store's endpoint and credentials"
EXPORTS=$(zkml-dvc store env)
mkdir -p "$DEMO/cleanroom-home"
git clone -q "$DEMO/project" "$DEMO/cleanroom"
(
  cd "$DEMO/cleanroom"
  export HOME=$DEMO/cleanroom-home ZKML_DVC_CACHE_DIR=$DEMO/cleanroom-home/cache
  eval "$EXPORTS"
  zkml-dvc pull "$RUN_ID" --for verify
  # a local test SRS: the verdict says UNTRUSTED SRS; --allow-untrusted-srs accepts it knowingly.
  # --evm: the run's Solidity verifier, checked against the vk, runs its calldata in a local EVM
  zkml-dvc verify "$RUN_ID" --allow-untrusted-srs --evm
)
printf '\nThe local store keeps running for you to explore:\n'
printf '  export ZKML_DVC_STORE_DIR=%s; eval "$(zkml-dvc store env)"\n' "$ZKML_DVC_STORE_DIR"
printf 'Stop it with: ZKML_DVC_STORE_DIR=%s zkml-dvc store down\n' "$ZKML_DVC_STORE_DIR"
