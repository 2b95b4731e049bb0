#!/usr/bin/env bash
# Submits a table array of SHARDS tasks and the dependent front job; prints both job ids.
#   examples/slurm/submit.sh INSTANCE CACHE [SHARDS] [OUT]
# CACHE must be a directory every node sees (NFS is fine: entries are written to a temporary
# file beside their place and renamed). QMAP (default `qmap` on the PATH) is the binary.
set -euo pipefail
instance="$(realpath "$1")"; cache="$(realpath -m "$2")"; shards="${3:-4}"; out="$(realpath -m "${4:-front.json}")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export INSTANCE="$instance" CACHE="$cache" OUT="$out" QMAP="${QMAP:-qmap}"
array=$(sbatch --parsable --array="0-$((shards - 1))" --export=ALL "$here/table-array.sbatch")
front=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes --export=ALL "$here/front.sbatch")
echo "table array: $array ($shards tasks); front: $front (after the array) -> $out"
