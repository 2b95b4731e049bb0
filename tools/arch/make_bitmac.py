#!/usr/bin/env python3
"""Writes models/arch/{eyeriss,simba}_bitmac.yaml: each shipped design with a MAC energy that
depends on the operand bit-widths (`mac.energy_table`), everything else unchanged.

Scaling law (documented, not measured on these designs): a MAC is a multiplier plus an
accumulator and its registers. The multiplier's energy grows with the product of its operand
widths (an array multiplier has w x a partial-product cells): Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V): 8-bit integer
multiply 0.2 pJ, 32-bit 3.1 pJ (16x the width product, 15.5x the energy). So

    E(w, a) = E_native - 0.2 pJ x (16 x 16) / 64 + 0.2 pJ x (w x a) / 64
            = E_native - 0.8 pJ + 0.003125 pJ x w x a

where E_native is the design's constant MAC energy (2.20035 pJ on both designs, the seed's
Accelergy figure at 45 nm), kept for the native 16 x 16 MAC: the accumulator, registers and
control (E_native - 0.8 pJ) do not depend on the operand widths. Entries for w, a in 2..=8 (the
seed's bit range) and 16; a width in 9..15 takes the 16-bit entry (qmap uses the smallest entry
covering both widths).

Run from the repository root: python3 tools/arch/make_bitmac.py
"""
import re

BITS = list(range(2, 9)) + [16]
PER_CELL = 0.2 / 64  # pJ per partial-product cell (Horowitz: 8x8 multiply 0.2 pJ)


def variant(base, out, suffix):
    text = open(f"models/arch/{base}.yaml").read()
    native = float(re.search(r"^mac:\n(?:  .*\n)*?  energy: ([0-9.]+)\n", text, re.M).group(1))
    fixed = native - PER_CELL * 16 * 16
    rows = "\n".join(
        f"    - {{weight_bits: {w}, activation_bits: {a}, energy: {fixed + PER_CELL * w * a:.6f}}}"
        for w in BITS
        for a in BITS
    )
    text = re.sub(r"^name: (\S+)", rf"name: \1{suffix}", text, count=1, flags=re.M)
    header = (
        f"# {out}: written by tools/arch/make_bitmac.py (do not edit by hand) from {base}.yaml,\n"
        "# with a MAC energy per (weight bits, activation bits): E = E_native - 0.8 pJ + 0.003125 pJ x w x a\n"
        "# (multiplier energy proportional to w x a, Horowitz ISSCC 2014: 8-bit multiply 0.2 pJ at 45 nm;\n"
        "# see the script for the derivation). Everything else is the base design's.\n"
    )
    text = header + text.rstrip("\n") + "\n  energy_table:\n" + rows + "\n"
    open(f"models/arch/{out}.yaml", "w").write(text)


variant("eyeriss", "eyeriss_bitmac", "_bitmac")
variant("simba", "simba_bitmac", "_bitmac")
