#!/usr/bin/env bash
# Builds rollgen's environment on Debian/Ubuntu and runs the whole pipeline on the default data:
#   FluidSynth + a General MIDI SoundFont (apt, when root or sudo is available),
#   a virtual environment in .venv with the locked dependencies (requirements-lock.txt, every file checked
#   against its hash) and rollgen itself in editable mode, then `dvc repro`.
#   Chromium too (apt), which the browser tests drive headless: --no-browser skips it; --browser (CI) makes
#   a failed install fail the setup instead of leaving those tests to skip.
# Usage: bash scripts/setup.sh [--no-repro] [--browser | --no-browser]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SOUNDFONT_PACKAGE="${ROLLGEN_SOUNDFONT_PACKAGE:-fluid-soundfont-gm}"  # timgm6mb-soundfont is 6 MB instead of 145
run_repro=1
with_browser=1
browser_required=0
for arg in "$@"; do
  case "$arg" in
    --no-repro) run_repro=0 ;;
    --browser) browser_required=1 ;;
    --no-browser) with_browser=0 ;;
    *) echo "usage: bash scripts/setup.sh [--no-repro] [--browser | --no-browser]" >&2; exit 2 ;;
  esac
done

have_soundfont() { compgen -G "/usr/share/sounds/sf2/*.sf2" >/dev/null || compgen -G "/usr/share/soundfonts/*.sf2" >/dev/null; }

# apt_install WHAT PACKAGE...: installs with apt as root or with sudo; returns 1 where it cannot.
apt_updated=0
apt_install() {
  local what="$1"; shift
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then if command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi; fi
  if ! command -v apt-get >/dev/null || [ "$sudo" = "none" ]; then
    echo "!! cannot install $what here (no apt-get, or neither root nor sudo)." >&2
    return 1
  fi
  echo "==> installing $what with apt"
  if [ "$apt_updated" -eq 0 ]; then $sudo apt-get update -q; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v fluidsynth >/dev/null || ! have_soundfont || ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
  apt_install "fluidsynth, $SOUNDFONT_PACKAGE and python3-venv" fluidsynth "$SOUNDFONT_PACKAGE" python3-venv ||
    echo "!! The generate stage needs it: install fluidsynth and a General MIDI SoundFont yourself." >&2
fi
if [ "$with_browser" -eq 1 ] && ! command -v chromium >/dev/null; then
  if ! apt_install "Chromium (for the browser tests)" chromium fonts-liberation; then
    [ "$browser_required" -eq 1 ] && exit 1
    echo "!! without Chromium the browser tests skip (apt-get install chromium)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> installing rollgen and its locked dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --require-hashes -r requirements-lock.txt
.venv/bin/python -m pip install -q --no-deps -e .  # its dependencies are all in the lock

if [ "$run_repro" -eq 1 ]; then
  echo "==> dvc repro (7 min 11 s on a 2-core machine on 2026-12-06, most of it training: docs/results.md)"
  # shellcheck disable=SC1091
  source .venv/bin/activate  # dvc.yaml runs `python`: it must be this environment's
  dvc repro
  echo "==> done: see generated/, metrics/ and 'mlflow ui --backend-store-uri sqlite:///mlflow.db'"
fi
