#!/usr/bin/env bash
# Create .venv and install the project with its test extras. Idempotent: skips the install when
# pyproject.toml has not changed since the last successful one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.fourk4d-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --upgrade pip
    .venv/bin/python -m pip install -e ".[dev]"
    echo "$wanted" > "$stamp"
fi
# nerfstudio's ns-render looks for an `ffmpeg` program; imageio-ffmpeg ships one.
if [ ! -e .venv/bin/ffmpeg ]; then
    ln -s "$(.venv/bin/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" .venv/bin/ffmpeg
fi
