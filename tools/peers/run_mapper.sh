#!/usr/bin/env bash
# Runs timeloop-mapper (Timeloop v3.0.3, built outside the project: see ../shared/reference/README.md)
# on the peers bench's layers and stores what it found as bench data under bench/peers/:
# per design and layer, the problem, the mapper's config, its map.yaml and stats.txt, its wall
# time and the machine's load when it ran. `qmap-bench peers` re-evaluates those mappings with
# qmap and proves the optimum of the same layer, constraints and design.
# Usage (from the repository root): tools/peers/run_mapper.sh [TIMELOOP_DIR]
set -euo pipefail
# Timeloop v3.0.3 reads the hyphenated keys (data-spaces, read-write).
TL=${1:-/opt/timeloop}
REF=../shared/reference/timeloop_exercises
[ -d "$REF" ] || { echo "run_mapper.sh: $REF not found" >&2; exit 2; }
[ -x "$TL/build/timeloop-mapper" ] || { echo "run_mapper.sh: no $TL/build/timeloop-mapper" >&2; exit 2; }
OUT=bench/peers
# name C M R S P Q stride
LAYERS="
exercise 3 32 3 3 112 112 2
resnet_3x3 64 64 3 3 56 56 1
resnet_1x1 64 256 1 1 56 56 1
vgg_conv3 128 256 3 3 56 56 1
mbv1_pw 512 512 1 1 14 14 1
"
problem() { # C M R S P Q stride
  cat <<YAML
problem:
  version: '0.4'
  shape:
    name: conv2D
    dimensions: [C, M, R, S, N, P, Q]
    coefficients:
      - {name: Wstride, default: 1}
      - {name: Hstride, default: 1}
      - {name: Wdilation, default: 1}
      - {name: Hdilation, default: 1}
    data-spaces:
      - name: Weights
        projection: [[[C]], [[M]], [[R]], [[S]]]
      - name: Inputs
        projection: [[[N]], [[C]], [[R, Wdilation], [P, Wstride]], [[S, Hdilation], [Q, Hstride]]]
      - name: Outputs
        projection: [[[N]], [[M]], [[Q]], [[P]]]
        read-write: true
  instance: {C: $1, M: $2, R: $3, S: $4, N: 1, P: $5, Q: $6, Wstride: $7, Hstride: $7, Wdilation: 1, Hdilation: 1}
YAML
}
for design in eyeriss_like simba_like; do
  echo "$LAYERS" | while read -r name c m r s p q st; do
    [ -n "$name" ] || continue
    dir=$OUT/$design/$name
    mkdir -p "$dir"
    problem "$c" "$m" "$r" "$s" "$p" "$q" "$st" > "$dir/problem.yaml"
    cat > "$dir/mapper.yaml" <<YAML
mapper:
  optimization-metrics: [energy]
  algorithm: random-pruned
  num-threads: 2
  victory-condition: 500
  timeout: 0
YAML
    work=$(mktemp -d)
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date +%s.%N)
    (cd "$work" && LD_LIBRARY_PATH=$TL/build "$TL/build/timeloop-mapper" \
      "$OLDPWD/$REF/$design/arch.v3-hyphen.yaml" "$OLDPWD/$dir/problem.yaml" \
      "$OLDPWD/$REF/$design/ERT.v3-hyphen.yaml" "$OLDPWD/$REF/$design/constraints.v3-hyphen.yaml" \
      "$OLDPWD/$dir/mapper.yaml" > mapper.log 2>&1)
    end=$(date +%s.%N)
    cp "$work/timeloop-mapper.map.yaml" "$dir/map.yaml"
    cp "$work/timeloop-mapper.stats.txt" "$dir/stats.txt"
    printf 'wall_seconds: %.3f\nload_before: %s\ntimeloop: v3.0.3\n' \
      "$(echo "$end - $start" | bc)" "$load" > "$dir/run.yaml"
    rm -rf "$work"
    echo "$design $name: $(grep wall_seconds "$dir/run.yaml")"
  done
done
