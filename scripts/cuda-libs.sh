#!/usr/bin/env bash
# Makes the CUDA libraries of this machine findable by cudarc, then prints the folder to put
# first on LD_LIBRARY_PATH:
#
#   export LD_LIBRARY_PATH=$(scripts/cuda-libs.sh [FOLDER]):$LD_LIBRARY_PATH
#
# cudarc (built against CUDA 12) asks the loader for libcublas.so / libcublas.so.12 and
# libnvrtc.so / libnvrtc.so.12; CUDA 13 installs such as pip's nvidia wheels ship only
# .so.13, and a toolkit's forward-compatibility libcuda (cuda/compat) fails against an older
# driver ("system has unsupported display driver / cuda driver combination"). This links the
# first of each library found outside stubs/ and compat/ under its plain name in FOLDER
# (default /tmp/mclrec-cuda-libs). Seen needed on an H200 machine with driver 580, CUDA 13.
set -euo pipefail
dir=${1:-/tmp/mclrec-cuda-libs}
mkdir -p "$dir"
for name in libcuda.so libcublas.so libcublasLt.so libnvrtc.so libnvrtc-builtins.so; do
  found=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/ \
    /opt /usr/local/lib -name "$name*" 2>/dev/null | grep -v -e /stubs/ -e /compat/ | head -1 || true)
  echo "$name: ${found:-not found}" >&2
  if [ -n "$found" ]; then
    ln -sf "$found" "$dir/$name"
    ln -sf "$found" "$dir/$(basename "$found")"
  fi
done
echo "$dir"
