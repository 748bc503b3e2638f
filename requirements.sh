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

# The demo's built-in 2D pose detector: mediapipe 0.10.14, whose wheel carries the pose detection and landmark
# models (it works offline). It needs protobuf < 5, tensorboard needs protobuf >= 6, so it lives in its own folder
# with its own protobuf, without its other dependencies (jax, opencv-contrib-python, sounddevice: not used), and
# demo/mediapipe_pose.py runs it in a subprocess. SEFD_MEDIAPIPE_DIR moves the folder.
MP_DIR=${SEFD_MEDIAPIPE_DIR:-$HOME/.cache/sefd/mediapipe-0.10.14}
if [ -f "$MP_DIR/.installed" ]; then
    echo "mediapipe 0.10.14 (demo pose detector) already installed in $MP_DIR"
else
    "$PY" -m pip install --disable-pip-version-check --no-deps --upgrade --target "$MP_DIR" \
        mediapipe==0.10.14 'protobuf>=4.25.3,<5' 'absl-py>=2,<3' 'attrs>=19.1' 'flatbuffers>=2,<26' certifi \
        && touch "$MP_DIR/.installed"
fi

cat <<'MSG'
Setup done.
On a GPU machine, first install the CUDA build of the same version (torch==2.13.0, as PyTorch's
install page gives it for your CUDA), then run this script again: it keeps an installed torch 2.13.0.
MSG
