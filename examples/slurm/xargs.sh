#!/usr/bin/env bash
# The same on one machine without a scheduler: SHARDS processes, then the front.
#   examples/slurm/xargs.sh INSTANCE CACHE [SHARDS]
# (each process already uses every core for the layer shapes of its shard; more shards than
# cores only help when the shards' work is uneven.)
set -euo pipefail
instance="$1"; cache="$2"; shards="${3:-4}"
seq 0 $((shards - 1)) | xargs -P "$shards" -I{} "${QMAP:-qmap}" table "$instance" --shard "{}/$shards" --cache "$cache" --quiet
"${QMAP:-qmap}" front "$instance" --cache "$cache"
