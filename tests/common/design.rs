//! A small Timeloop design of the tests' own, in every Timeloop file kind qmap reads: a 2x2
//! PE array (`buf`, 16 words) under a DRAM with a dummy `column` level, a matrix-vector problem
//! (K = 8, N = 4), an ERT, a mapping (map.yaml, and as Timeloop prints it in map.txt and in a
//! stats.txt), and constraints.

#![allow(dead_code)]

pub const ARCH: &str = "
architecture:
  version: 0.3
  subtree:
    - name: chip
      attributes: {word-bits: 8}
      local:
        - name: DRAM
          class: DRAM
          attributes: {width: 64, block-size: 8, vector-access-energy: 100}
        - name: column[0..1]
          class: dummy_storage
          attributes: {meshX: 2}
      subtree:
        - name: PE[0..3]
          local:
            - name: buf
              class: storage
              subclass: regfile
              attributes: {depth: 16, width: 16, meshX: 2, vector-access-energy: 1}
            - name: mac
              class: compute
              subclass: intmac
              attributes: {meshX: 2, vector-access-energy: 0.5}
";

pub const ERT: &str = "ERT:
  tables:
    - name: chip.DRAM
      actions:
        - {name: read, arguments: null, energy: 100}
        - {name: write, arguments: null, energy: 90}
    - name: chip.PE[0..3].buf
      actions:
        - {name: read, arguments: {address_delta: 0}, energy: 1.0}
        - {name: write, arguments: null, energy: 2.0}
        - {name: update, arguments: null, energy: 2.5}
    - name: chip.PE[0..3].mac
      actions:
        - {name: mac_random, arguments: null, energy: 0.5}
";

pub const PROBLEM: &str = "
problem:
  shape:
    name: MatVec
    dimensions: [K, N]
    data-spaces:
      - name: A
        projection: [[[K]], [[N]]]
      - name: x
        projection: [[[K]]]
      - name: y
        projection: [[[N]]]
        read-write: true
  instance: {K: 8, N: 4}
";

pub const MAP_YAML: &str = "mapping:
  - target: buf
    type: temporal
    factors: K2 N2
    permutation: KN
  - target: column
    type: spatial
    factors: K2 N1
    permutation: KN
    split: 0
  - target: DRAM
    type: temporal
    factors: K2 N1
    permutation: KN
  - target: DRAM
    type: spatial
    factors: K1 N2
    permutation: NK
    split: 1
";

/// As Timeloop prints it: DRAM (fanout 2 along X to `column`) spreads N; `column` (a dummy
/// level, fanout 2 along Y to buf) spreads K; buf has no fanout.
pub const MAP_TXT: &str = "
DRAM [ A:32 (32) x:8 (8) y:4 (4) ] 
-----------------------------------
| for K in [0:2)
|   for N in [0:2) (Spatial-X)

column [ ] 
----------
|     for K in [0:2) (Spatial-Y)

buf [ y:2 (2) ] 
---------------
|       for K in [0:2)
|         for N in [0:2)
|           << Compute >>
";

pub const STATS_TXT: &str = "Buffer and Arithmetic Levels
----------------------------
Level 0
-------
=== mac ===

    SPECS
    -----
    Word bits             : 8

Level 1
-------
=== buf ===

    MAPPING
    -------
    Loop nest:
      for K in [0:2)
        for N in [0:2)

    STATS
    -----
    Cycles               : 4
    y:
        Partition size                           : 2

Level 3
-------
=== DRAM ===

    MAPPING
    -------
    Loop nest:
      for K in [0:2)
        for N in [0:2) (Spatial-X)

    STATS
    -----
    A:
        Partition size                           : 32
    x:
        Partition size                           : 8
    y:
        Partition size                           : 4

Networks
--------
=== buf ===
    Nonsense:
";

pub const CONSTRAINTS: &str = "constraints:
  targets:
    - {target: buf, type: temporal, factors: N=1, permutation: KN}
    - {target: DRAM, type: spatial, factors: K=1, split: 999}
";
