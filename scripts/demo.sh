#!/usr/bin/env bash
# The main job: set up the environment (if needed), write the demo capture (if missing), carve it,
# train fourk4d, evaluate it on the held-out cameras and render an orbit video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/run_demo.py "$@"
