#!/usr/bin/env python3
"""PyTorch's own Hessian diagonal loop, timed side by side with DiagonalBenchmark.

The same tanh MLPs, softmax cross-entropy, batch 64 and float32 as
org.secorder.examples.DiagonalBenchmark, with the per-element double-backward
loop written in Python:

    grads = autograd.grad(loss, params, create_graph=True)
    for each parameter p and element j:
        autograd.grad(g.reshape(-1)[j], p, retain_graph=True)[0].reshape(-1)[j]

The diagonal is timed once to warm up and then three times (median); the plain
gradient (forward and loss.backward()) is the median of many runs.

Run it with Debian's torch on OpenBLAS (libopenblas0-pthread), one thread, as
the README's tables do:

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE \
        /usr/bin/python3 examples/python/torch_reference.py

It prints which BLAS library it loaded. The Java build never needs it.
"""

import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import autograd, nn

SEED = 1234
BATCH = 64
SIZES = [(20, 32, 3), (64, 64, 10), (100, 64, 64, 10)]
DIAGONAL_RUNS = 3
GRADIENT_WARMUP = 20
GRADIENT_RUNS = 200


def mlp(sizes):
    """Linear layers with tanh between them, as HessianDiagonalExample.mlp builds them."""
    layers = []
    for i in range(1, len(sizes)):
        if i > 1:
            layers.append(nn.Tanh())
        layers.append(nn.Linear(sizes[i - 1], sizes[i]))
    return nn.Sequential(*layers)


def hessian_diagonal(model, inputs, labels):
    """The exact diagonal of each parameter's own Hessian block, one element at a time."""
    params = list(model.parameters())
    loss = F.cross_entropy(model(inputs), labels)
    grads = autograd.grad(loss, params, create_graph=True)
    diagonals = []
    for p, g in zip(params, grads):
        g_flat = g.reshape(-1)
        d = torch.empty(p.numel(), dtype=p.dtype)
        for j in range(p.numel()):
            d[j] = autograd.grad(g_flat[j], p, retain_graph=True)[0].reshape(-1)[j]
        diagonals.append(d.reshape(p.shape))
    return diagonals


def gradient_seconds(model, inputs, labels):
    """The median time of one forward and backward pass."""
    seconds = []
    for i in range(GRADIENT_WARMUP + GRADIENT_RUNS):
        start = time.perf_counter()
        F.cross_entropy(model(inputs), labels).backward()
        if i >= GRADIENT_WARMUP:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure(sizes):
    model = mlp(sizes)
    inputs = torch.randn(BATCH, sizes[0])
    labels = torch.randint(0, sizes[-1], (BATCH,))
    parameters = sum(p.numel() for p in model.parameters())
    seconds = []
    for _ in range(DIAGONAL_RUNS + 1):
        start = time.perf_counter()
        hessian_diagonal(model, inputs, labels)
        seconds.append(time.perf_counter() - start)
    diagonal = statistics.median(seconds[1:])
    gradient = gradient_seconds(model, inputs, labels)
    print("%-14s %10d %12.4f %10.1f %12.6f %10.0f" % (
        "-".join(str(s) for s in sizes), parameters, diagonal,
        diagonal * 1e6 / parameters, gradient, diagonal / gradient))


def blas_libraries():
    """The BLAS shared objects this process has mapped: a comparison must say which one ran."""
    torch.ones(2, 2).mm(torch.ones(2, 2))  # make sure the BLAS is loaded
    names = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path.lower() or "mkl" in path.lower():
                names.add(path)
    return ", ".join(sorted(names)) or "none found"


def main():
    torch.manual_seed(SEED)
    print("Hessian diagonal reference on PyTorch %s (Python loop), intra-op threads %d"
          % (torch.__version__, torch.get_num_threads()))
    print("BLAS: %s (OPENBLAS_NUM_THREADS=%s)"
          % (blas_libraries(), os.environ.get("OPENBLAS_NUM_THREADS", "unset")))
    print("tanh MLPs, softmax cross-entropy, batch %d, float32, per-element double backward"
          % BATCH)
    print("diagonal: median of %d after a warm-up; gradient (forward + loss.backward()):"
          " median of %d" % (DIAGONAL_RUNS, GRADIENT_RUNS))
    print("%-14s %10s %12s %10s %12s %10s" % (
        "network", "parameters", "loop s", "us/param", "gradient s", "ratio"))
    for sizes in SIZES:
        measure(sizes)


if __name__ == "__main__":
    main()
