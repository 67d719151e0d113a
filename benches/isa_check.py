#!/usr/bin/env python3
"""Checks that an AVX2 cap takes effect: capability string and matmul speed of libtorch and ONNX Runtime.

Run once plain, once with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
FBGEMM_ENABLE_INSTRUCTIONS=AVX2 (libtorch only), and once under LD_PRELOAD=build/avx2only.so (CPUID
faulting, benches/avx2only/avx2only.c: every library, ONNX Runtime included, sees an AVX2 CPU; what
`benches/peer.py --avx2` uses when the CPU allows it). Prints the capability torch reports and GFLOP/s of
an fp32 matmul (MKL), a bf16 matmul (oneDNN), an int8 FBGEMM linear, and ONNX Runtime's fp32 MatMul and
dynamic-int8 MatMul (MLAS) at the given threads. Under an AVX2 cap bf16 collapses (no AVX512-BF16/AMX)
and both int8 kernels lose VNNI.
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


try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    print("onnxruntime not installed: ORT rows skipped")
    sys.exit(0)


def ort_session(quantized: bool):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((m, m), dtype=np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, m])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, m])
    if quantized:
        wq = np.clip(np.round(w / (np.abs(w).max() / 127)), -127, 127).astype(np.int8)
        inits = [numpy_helper.from_array(wq, "w"), numpy_helper.from_array(np.float32(np.abs(w).max() / 127), "ws")]
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "ws"], ["y"], domain="com.microsoft")
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    else:
        inits = [numpy_helper.from_array(w, "w")]
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        opsets = [helper.make_opsetid("", 17)]
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], inits), opset_imports=opsets)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"])


xin = np.random.default_rng(1).standard_normal((m, m), dtype=np.float32)
for name, quantized in (("fp32 MatMul", False), ("int8 DynamicQuantizeMatMul", True)):
    sess = ort_session(quantized)
    print(f"ORT {ort.__version__} {name} {m}^3: {rate(lambda: sess.run(None, {'x': xin}), 2 * m**3):8.1f} GFLOP/s")
