#!/usr/bin/env bash
# Prints the bin folder of a Node.js runtime of the given major version, installed from the npm
# registry's `node` package (the registry is the one place CI can fetch runtimes from) into a
# cache folder of its own, outside the project; reused when it is already there.
#
#   .ci/node-runtime.sh 24        → /root/.cache/xray-qc-node/24/node_modules/node/bin
set -euo pipefail
major=${1:?usage: node-runtime.sh MAJOR}
dir=${XRAY_QC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xray-qc-node}/$major
bin=$dir/node_modules/node/bin
if [ ! -x "$bin/node" ] || [ "$("$bin/node" -p 'process.versions.node.split(".")[0]')" != "$major" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock --loglevel=error "node@$major" >&2
fi
echo "$bin"
