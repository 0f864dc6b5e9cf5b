#!/usr/bin/env bash
# Set up the environment (if needed), write the demo capture (if missing) and carve it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
DATA=${DATA:-data/demo}
if [ ! -f "$DATA/intri.yml" ]; then
    .venv/bin/fourk4d-demo-scene --output "$DATA" --preset demo
fi
.venv/bin/fourk4d-carve --data "$DATA"
