#!/usr/bin/env bash
# Screenshots of the window for reviewers: opens it under Xvfb on the demo
# preset, trains some steps, saves setup.png, monitor.png, memory.png,
# runs.png, compose.png, planner.png and the Compare and Studies
# views at 1280x720 and 1920x1080 (compare-1280x720.png, ...) into OUTDIR (default ./screenshots). Uses a throwaway data folder
# unless LWB_DATA_DIR is set, so the user's store is untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-screenshots}
steps=${2:-150}
[ -x build/app/lora-workbench ] || { echo "build first: ./run.sh or cmake --build build" >&2; exit 1; }
export LWB_DATA_DIR=${LWB_DATA_DIR:-$(mktemp -d)}
mkdir -p "$out"
xvfb-run -a -s "-screen 0 1920x1080x24" build/app/lora-workbench --screenshots "$(realpath "$out")" "$steps"
