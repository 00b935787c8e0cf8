#!/usr/bin/env bash
# Builds rollgen's environment on Debian/Ubuntu and runs the whole pipeline on the default data:
#   FluidSynth + a General MIDI SoundFont (apt, when root or sudo is available),
#   a virtual environment in .venv with rollgen installed in editable mode, then `dvc repro`.
# Usage: bash scripts/setup.sh [--no-repro]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SOUNDFONT_PACKAGE="${ROLLGEN_SOUNDFONT_PACKAGE:-fluid-soundfont-gm}"  # timgm6mb-soundfont is 6 MB instead of 145
run_repro=1
[ "${1:-}" = "--no-repro" ] && run_repro=0

have_soundfont() { compgen -G "/usr/share/sounds/sf2/*.sf2" >/dev/null || compgen -G "/usr/share/soundfonts/*.sf2" >/dev/null; }

if ! command -v fluidsynth >/dev/null || ! have_soundfont || ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
  if command -v apt-get >/dev/null && [ "$sudo" != "none" ]; then
    echo "==> installing fluidsynth, $SOUNDFONT_PACKAGE and python3-venv with apt"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      fluidsynth "$SOUNDFONT_PACKAGE" python3-venv
  else
    echo "!! cannot install FluidSynth here (no apt-get, or neither root nor sudo)." >&2
    echo "!! The generate stage needs it: install fluidsynth and a General MIDI SoundFont yourself." >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> installing rollgen and its dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

if [ "$run_repro" -eq 1 ]; then
  echo "==> dvc repro (about 6 minutes on 2 cores)"
  # shellcheck disable=SC1091
  source .venv/bin/activate  # dvc.yaml runs `python`: it must be this environment's
  dvc repro
  echo "==> done: see generated/, metrics/ and 'mlflow ui --backend-store-uri sqlite:///mlflow.db'"
fi
