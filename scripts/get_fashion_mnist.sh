#!/usr/bin/env bash
# The demo's data: Debian's dataset-fashion-mnist (IDX files in /usr/share/datasets/fashion-mnist).
# Installs it with apt where it can (as root, or with sudo), and says what it did either way.
set -u
target=/usr/share/datasets/fashion-mnist
if [ -d "$target" ]; then
  echo "setup: Fashion-MNIST is in $target (Debian's dataset-fashion-mnist)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: no apt-get here: put the four Fashion-MNIST IDX files in ./data/fashion-mnist (or \$DIFFREP_DATA)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup: not root and no sudo: run 'apt-get install dataset-fashion-mnist' as root for the demo" >&2
    exit 0
  fi
fi
echo "setup: installing Debian's dataset-fashion-mnist into $target (apt-get)"
$sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null \
  && echo "setup: Fashion-MNIST is in $target" \
  || echo "setup: apt-get could not install dataset-fashion-mnist; install it by hand for the demo" >&2
