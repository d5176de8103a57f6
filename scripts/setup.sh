#!/usr/bin/env bash
# Installs what krea2 needs to build and test on Debian 12 (run as root, or with sudo available).
set -euo pipefail
packages=(build-essential cmake pkg-config libopenblas-openmp-dev nlohmann-json3-dev libgtest-dev libgmock-dev
          libbenchmark-dev libpcre2-dev libutf8proc-dev libpng-dev libdnnl-dev
          ocl-icd-opencl-dev pybind11-dev python3-dev python3-numpy python3-pytest python3-pil)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
