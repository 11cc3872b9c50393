#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: predicted efficiency of synchronous data-parallel
training on P nodes (each like the measured 2-core machine) for the MLP and the CNN.

    python3 docs/distributed/scaling.py

Inputs (measured on 2026-12-02, see docs/distributed.md): compute time per example on one
node, n_θ, the global batch. Ring all-reduce of S bytes on P nodes (α–β model):
    T_comm = 2 (P − 1) α + 2 (P − 1)/P · S / β
Per step: T(P) = T_comp(1) / P + T_comm;  efficiency E = T_comp(1) / (P · T(P)).
Reproducible mode: an all-gather of the K = ⌈B/C⌉ chunk gradients instead:
    T_gather = (P − 1) α + (P − 1)/P · K · S / β
"""

NETWORKS = {"10 Gb/s Ethernet (α = 30 µs)": (30e-6, 1.25e9), "100 Gb/s InfiniBand (α = 2 µs)": (2e-6, 12.5e9)}
WORKLOADS = [
    # name, seconds per example on one 2-core node, n_θ, global batch, chunk
    ("MLP, batch 128", 10.6e-6, 203_530, 128, 32),
    ("MLP, full batch 60 000", 8.2e-6, 203_530, 60_000, 1000),
    ("CNN, batch 64", 250e-6, 11_274, 64, 32),
]
NODES = [2, 4, 8, 16, 32, 64]


def efficiency(t_ex, n_theta, batch, chunk, p, alpha, beta, reproducible):
    s = 4 * n_theta  # f32 gradients
    if reproducible:
        k = -(-batch // chunk)
        comm = (p - 1) * alpha + (p - 1) / p * k * s / beta
    else:
        comm = 2 * (p - 1) * alpha + 2 * (p - 1) / p * s / beta
    comp = batch * t_ex
    return comp / (p * (comp / p + comm))


if __name__ == "__main__":
    for net, (alpha, beta) in NETWORKS.items():
        print(f"\n{net}")
        print("| workload | mode | " + " | ".join(f"P={p}" for p in NODES) + " |")
        print("|---|---|" + "---|" * len(NODES))
        for name, t_ex, n_theta, batch, chunk in WORKLOADS:
            for mode in ("fast", "reproducible"):
                row = [efficiency(t_ex, n_theta, batch, chunk, p, alpha, beta, mode == "reproducible") for p in NODES]
                print(f"| {name} | {mode} | " + " | ".join(f"{e:.2f}" for e in row) + " |")
