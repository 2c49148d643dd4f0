#!/usr/bin/env bash
# Quick start 1: install what is missing (Debian 12 packages), build Release,
# and open LoRA Workbench with its built-in defaults. Extra arguments go to the
# program, e.g. `./run.sh train --preset demo` runs headless.
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target lora-workbench
if [ $# -eq 0 ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}${QT_QPA_PLATFORM:-}" ]; then
  cat <<'TXT'
Built build/app/lora-workbench, but there is no display to open the window on.
Run it headless instead, for example:
  ./run.sh train --preset demo        # fine-tune the tiny model with LoRA, with a progress bar
  ./run.sh presets                    # what is built in
or open the window on a virtual display:
  xvfb-run -a ./build/app/lora-workbench
TXT
  exit 0
fi
exec ./build/app/lora-workbench "$@"
