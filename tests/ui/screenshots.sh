#!/usr/bin/env bash
# Screenshots of the window for reviewers: opens it under Xvfb on the demo
# preset (pretraining the tiny base first, as a run, when it is not cached),
# trains STEPS steps, stops, runs a short AdaLoRA and a short full
# fine-tuning from the queue, resizes an adapter in the library and composes
# two, and saves every tab at 1280x720 and 1920x1080 into OUTDIR (default
# ./screenshots) as <view>-<w>x<h>.png: setup(-problem, -vera, -clone: after Clone
# into setup of the demo run), monitor(-pretraining, -samples, -adalora,
# -layers), memory(-ended), runs(-time, -samples, -predict: Evaluate &
# Predict on the demo run), queue(-done), library, compose(-seeds: searched
# and evaluated over three seeds), chat (the base and the two adapters
# answering one prompt, the rendered template shown; chat-smollm2 too when
# the data folder holds the SmolLM2 GGUF and an adapter trained on it),
# planner-tiny, planner-llama2-7b,
# and the Compare and Studies views on the newest stored comparison and study.
# Uses a throwaway data folder unless LWB_DATA_DIR is set, so the user's
# store is untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-screenshots}
steps=${2:-150}
[ -x build/app/lora-workbench ] || { echo "build first: ./run.sh or cmake --build build" >&2; exit 1; }
export LWB_DATA_DIR=${LWB_DATA_DIR:-$(mktemp -d)}
mkdir -p "$out"
# The screen is taller than the largest grab: the window's frame and menu fit.
xvfb-run -a -s "-screen 0 1920x1200x24" build/app/lora-workbench --screenshots "$(realpath "$out")" "$steps"
