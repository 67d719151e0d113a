#!/usr/bin/env python3
"""Checks that the AVX2 caps on libtorch take effect: capability string and matmul speed.

Run once plain and once with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 (the env of `benches/peer.py --avx2`).
Prints the capability torch reports and GFLOP/s of an fp32 matmul (MKL), a bf16 matmul (oneDNN)
and an int8 FBGEMM linear at the given threads.
"""
import os
import warnings
import sys
import time

import torch

warnings.simplefilter("ignore")

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)


def rate(fn, flops, budget=2.0):
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < budget:
        fn()
        n += 1
    return flops * n / (time.perf_counter() - t0) / 1e9


m = 1024
a32, b32 = torch.randn(m, m), torch.randn(m, m)
a16, b16 = a32.bfloat16(), b32.bfloat16()
w = torch.randn(m, m)
q, col, scale, zp = torch.fbgemm_linear_quantize_weight(w)
packed = torch.fbgemm_pack_quantized_matrix(q)
bias = torch.zeros(m)
caps = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "FBGEMM_ENABLE_INSTRUCTIONS")}
print(f"caps {caps}")
print(f"torch {torch.__version__} get_cpu_capability() = {torch.backends.cpu.get_cpu_capability()}, threads {threads}")
with torch.inference_mode():
    print(f"fp32 mm {m}^3: {rate(lambda: a32 @ b32, 2 * m**3):8.1f} GFLOP/s")
    print(f"bf16 mm {m}^3: {rate(lambda: a16 @ b16, 2 * m**3):8.1f} GFLOP/s")
    f8 = lambda: torch.fbgemm_linear_int8_weight_fp32_activation(a32, q, packed, col, scale, zp, bias)  # noqa: E731
    print(f"int8 fbgemm linear {m}^3: {rate(f8, 2 * m**3):8.1f} GOP/s")
