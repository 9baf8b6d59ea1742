#!/usr/bin/env bash
# Builds ONNX Runtime with CUDA + TensorRT and its Node.js binding on a Jetson (JetPack 6), then
# installs it into an xray-qc checkout in place of the CPU-only npm package.
#
#   deploy/jetson/build-onnxruntime.sh /opt/xray-qc [ORT_SOURCE_DIR]
#
# ORT_SOURCE_DIR: an onnxruntime checkout at the tag matching package.json (v1.30.0), with
# submodules; cloned from ORT_GIT_URL when absent. Takes 1–3 hours on an Orin; needs ~40 GB of
# disk and, on 8–16 GB boards, extra swap (see README.md).
set -euo pipefail

XRAY_QC_DIR=${1:?usage: build-onnxruntime.sh XRAY_QC_DIR [ORT_SOURCE_DIR]}
ORT_DIR=${2:-$HOME/onnxruntime}
ORT_TAG=${ORT_TAG:-v1.30.0}
ORT_GIT_URL=${ORT_GIT_URL:-https://github.com/microsoft/onnxruntime.git}
# 87 = Orin, 72 = Xavier; a build without the board's SM fails only at run time.
CUDA_ARCH=${CUDA_ARCH:-87}
JOBS=${JOBS:-$(( $(nproc) > 4 ? 4 : $(nproc) ))}

if [ ! -e /etc/nv_tegra_release ]; then
  echo "warning: /etc/nv_tegra_release not found: this does not look like a Jetson" >&2
fi
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
command -v nvcc >/dev/null || { echo "nvcc not found: install JetPack's CUDA toolkit" >&2; exit 1; }

if [ ! -d "$ORT_DIR/.git" ]; then
  git clone --recursive --branch "$ORT_TAG" --depth 1 "$ORT_GIT_URL" "$ORT_DIR"
fi

cd "$ORT_DIR"
./build.sh --config Release --update --build --parallel "$JOBS" --skip_tests \
  --build_shared_lib --build_nodejs \
  --use_cuda --cuda_home /usr/local/cuda --cudnn_home /usr/lib/aarch64-linux-gnu \
  --use_tensorrt --tensorrt_home /usr/lib/aarch64-linux-gnu \
  --cmake_extra_defines "CMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH" onnxruntime_BUILD_UNIT_TESTS=OFF

cd "$XRAY_QC_DIR"
npm install --no-save "$ORT_DIR/js/node"
node -e "const ort = require('onnxruntime-node'); console.log('onnxruntime-node', ort.env.versions ?? '')"
echo "done: score a capture with: npx xray-qc score --providers tensorrt,cuda,cpu FILE.tif"
