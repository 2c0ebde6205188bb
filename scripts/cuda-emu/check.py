"""CUDA kernels' arithmetic checked on the CPU, no GPU needed: kernel sources (with
`prelude.cuh`) are compiled by g++ against `shim.h`, which runs every thread of a launch (blocks
one after another, a block's threads as OS threads with a barrier for __syncthreads, warp
shuffles meeting per mask, atomicAdd on counters), with the grids the runtime uses.

- int8 (`quant.cu`): DynamicQuantizeConv's device sequence — the range kernel, the quantize
  kernel, then a QConv kernel reading the run's zero point and scale from device memory (the
  per-output, dp4a and tiled pointwise kernels) — must give onnxruntime's DynamicQuantizeLinear
  bytes, scale and zero point and ConvInteger → Cast → Mul → Add (→ Clip) outputs bit for bit;
  QGather the CPU kernel's `q·scale[row]`; a QConv with a QAdd folded into its store must give the
  QConv kernel then the QAdd kernel's outputs exactly, for each of the three QConv kernels (split
  K included), u8 and i8 inputs and QConv outputs, u8, i8 and f32 QAdd outputs.
- Fusions (`nn.cu`, `linalg.cu`, `reduce.cu`; runtime/src/cuda/fuse.rs): a max pool run inside
  the direct convolution must equal the convolution kernel then the pool kernel bit for bit (at
  the same lanes) and onnxruntime's Conv → Relu → MaxPool within 1e-5; a Softmax run by the
  few-row GEMM's last block must equal the GEMM kernel then the Softmax kernel bit for bit, leave
  its block counter at 0, and give the same on a second run; a convolution's bias and ReLU6
  applied by a depthwise convolution and a global average pool as they load must give
  onnxruntime's Conv → Clip → Conv → Clip and Conv → Clip → GlobalAveragePool within 1e-5; the
  pre-padding that narrows an f32 input to f16 (`shape.cu`, an input cast absorbed) must give
  numpy's zero pad of the f16 cast bit for bit (g++'s `_Float16` standing in for `cvt.rn`), and
  the Pad kernel numpy's pad in each mode (constant, reflect, edge).

Each case runs with the lanes per output the runtime picks (`cuda::ops::lanes_for`). What it does
not cover: the Rust side's launch arguments, f16 arithmetic, and
anything NVRTC compiles differently — the CUDA unit tests check those on the GPU
(scripts/gpu-check.sh). The inline PTX dp4a is replaced by its definition in C.

Usage: python3 scripts/cuda-emu/check.py [BUILD_DIR]   (default target/cuda-emu; needs g++,
numpy, onnx, onnxruntime). Exits 1 on any mismatch.
"""
import os
import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def prelude():
    pre = open(os.path.join(ROOT, "kernels/cuda/prelude.cuh")).read()
    # The f16 loads and stores are inline PTX; the f32 kernels checked here do not use them.
    pre = re.sub(r"__device__ __forceinline__ float ld\(const f16_t\* p, i64_t i\) \{.*?\n\}\n", "", pre, flags=re.S)
    pre = re.sub(r"__device__ __forceinline__ void st\(f16_t\* p, i64_t i, float v\) \{.*?\n\}\n", "", pre, flags=re.S)
    return pre


def compile_main(out, main, source):
    name = os.path.splitext(main)[0]
    inc = os.path.join(out, name + "-include")  # each program's own kernels.h
    os.makedirs(inc, exist_ok=True)
    open(os.path.join(inc, "kernels.h"), "w").write('#include "shim.h"\n' + source)
    exe = os.path.join(out, name)
    subprocess.run(["g++", "-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-w", "-I", HERE,
                    "-I", inc, os.path.join(HERE, main), "-o", exe], check=True)
    return exe


def build(out):
    pre = prelude()
    q = open(os.path.join(ROOT, "kernels/cuda/quant.cu")).read()
    byte = "(int)(signed char)(b >> (8 * j))"
    q, n_u = re.subn(r'asm\("dp4a\.u32\.s32.*?\);',
                     f"d = c; for (int j = 0; j < 4; ++j) d += (int)((a >> (8 * j)) & 255) * {byte};", q, flags=re.S)
    q, n_s = re.subn(r'asm\("dp4a\.s32\.s32.*?\);',
                     f"d = c; for (int j = 0; j < 4; ++j) d += (int)(signed char)(a >> (8 * j)) * {byte};", q, flags=re.S)
    if n_u != 1 or n_s != 1 or "asm" in pre + q:
        sys.exit("cuda-emu: quant.cu's inline PTX changed; update check.py's replacements")
    return compile_main(out, "quant_main.cpp", pre + "\n" + q)


# The f16 store, emulated: g++'s _Float16 conversion rounds to nearest even, as the PTX
# `cvt.rn.f16.f32` it stands in for.
F16_STORE = """
__device__ __forceinline__ void st(f16_t* p, i64_t i, float v) {
    _Float16 h = (_Float16)v;
    memcpy(&p[i], &h, 2);
}
"""


def build_fused(out):
    """nn.cu, linalg.cu and reduce.cu in f32 (their f16 instantiations dropped); shape.cu (bit
    copies, and the narrowing pre-padding with the f16 store emulated)."""
    src = prelude() + F16_STORE
    shape = open(os.path.join(ROOT, "kernels/cuda/shape.cu")).read()
    if "asm" in shape:
        sys.exit("cuda-emu: shape.cu has inline PTX; update check.py")
    src += "\n" + shape
    for f, macro in [("nn.cu", "NN"), ("linalg.cu", "LINALG"), ("reduce.cu", "REDUCE")]:
        text, n = re.subn(rf"^{macro}\(f16_t, f16\)$", "", open(os.path.join(ROOT, "kernels/cuda", f)).read(), flags=re.M)
        if n != 1 or "asm" in text:
            sys.exit(f"cuda-emu: {f} changed (its f16 instantiation or inline PTX); update check.py")
        src += "\n" + text
    return compile_main(out, "fused_main.cpp", src)


def lanes_for(terms, most):
    """cuda::ops::lanes_for."""
    per = min(max(terms // 16, 1), 32, max(most, 1))
    return 1 << (per.bit_length() - 1)


def ort_conv_relu_maxpool(x, w, b, stride, pad, group, pool):
    inits = [nh.from_array(w, "w"), nh.from_array(b, "b")]
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], strides=[stride] * 2, pads=[pad] * 4, group=group),
             h.make_node("Relu", ["c"], ["r"]),
             h.make_node("MaxPool", ["r"], ["y"], kernel_shape=list(pool), strides=list(pool))]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, list(x.shape))],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def convpool_case(exe, work, n, c, hw, m, k, stride, pad, group, pool, seed):
    """Conv + ReLU + MaxPool with the pool folded into the direct kernel (cuda/fuse.rs)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    cg = c // group
    w = (rng.standard_normal((m, cg, k, k)) / np.sqrt(cg * k * k)).astype(np.float32)
    b = (rng.standard_normal(m) * 0.1).astype(np.float32)
    want = ort_conv_relu_maxpool(x, w, b, stride, pad, group, pool)
    oh = (hw + 2 * pad - k) // stride + 1
    unfused = lanes_for(cg * k * k, cg)
    fused = min(unfused, 32 // (pool[0] * pool[1]))
    np.array([n, c, hw, hw, m, oh, oh, k, k, stride, stride, 1, 1, pad, pad, group, fused, unfused, 1, *pool],
             np.int32).tofile(f"{work}/p.i32")
    x.tofile(f"{work}/x.f32")
    w.tofile(f"{work}/w.f32")
    b.tofile(f"{work}/b.f32")
    subprocess.run([exe, "convpool", work], check=True)
    y, same, unf = (np.fromfile(f"{work}/{f}.f32", np.float32) for f in ("y", "y_same", "y_unfused"))
    diff = np.abs(y - want.ravel()).max() if y.size == want.size else np.inf
    bound = 1e-5 * max(1.0, float(np.abs(want).max()))
    ok = y.size == want.size and np.array_equal(y, same) and diff <= bound and np.abs(unf - want.ravel()).max() <= bound
    print(f"  {'ok  ' if ok else 'FAIL'} Conv {n}x{c}x{hw}x{hw} -> {m} k{k} s{stride} p{pad} g{group} + ReLU + "
          f"MaxPool {pool[0]}x{pool[1]}: {fused} lanes x {pool[0] * pool[1]} positions; the unfused kernels' bits: "
          f"{'same' if np.array_equal(y, same) else 'DIFFER'}; onnxruntime within {diff:.2g} (bound {bound:.2g})")
    return ok


def gemmtail_case(exe, work, m, n, k, n2, softmax, seed):
    """Gemm (ReLU) → Gemm (→ Softmax): the second product in the first's last block (cuda/fuse.rs)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b1 = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    c1 = (rng.standard_normal(n) * 0.1).astype(np.float32)
    b2 = (rng.standard_normal((n2, n)) / np.sqrt(n) * 3).astype(np.float32)
    c2 = (rng.standard_normal(n2) * 0.1).astype(np.float32)
    np.array([m, n, k, n2, softmax, 1, 0], np.int32).tofile(f"{work}/p.i32")  # ReLU, then none
    for name, v in [("a", a), ("b1", b1), ("c1", c1), ("b2", b2), ("c2", c2)]:
        v.tofile(f"{work}/{name}.f32")
    subprocess.run([exe, "gemmtail", work], check=True)
    y, same = (np.fromfile(f"{work}/{f}.f32", np.float32) for f in ("y", "y_same"))
    counter = np.fromfile(f"{work}/counter.u32", np.uint32)
    h1 = np.maximum(a.astype(np.float64) @ b1.T + c1, 0)
    z = 0.75 * (h1 @ b2.T) + c2
    if softmax:
        z = z - z.max(1, keepdims=True)
        z = z - np.log(np.exp(z).sum(1, keepdims=True)) if softmax == 2 else np.exp(z) / np.exp(z).sum(1, keepdims=True)
    diff = np.abs(y - z.ravel()).max()
    ok = np.array_equal(y, same) and counter[0] == 0 and diff <= 1e-5 * max(1.0, float(np.abs(z).max()))
    tail = {0: "", 1: " → Softmax", 2: " → LogSoftmax"}[softmax]
    print(f"  {'ok  ' if ok else 'FAIL'} Gemm [{m}, {k}] x [{k}, {n}] + ReLU → Gemm x [{n}, {n2}]{tail} in one launch "
          f"({(m * n * 32 + 255) // 256} blocks, run twice): the unfused kernels' bits: "
          f"{'same' if np.array_equal(y, same) else 'DIFFER'}; float64 within {diff:.2g}; counter left at {counter[0]}")
    return ok


def prologue_case(exe, work, n, c, hw, m, k, stride, pads, mode, seed):
    """A 1x1 convolution's bias and ReLU6 applied by its readers as they load (cuda/fuse.rs)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w1 = (rng.standard_normal((m, c, 1, 1)) * 2).astype(np.float32)
    b1 = rng.standard_normal(m).astype(np.float32)
    w2 = rng.standard_normal((m, 1, k, k)).astype(np.float32)
    b2 = (rng.standard_normal(m) * 0.1).astype(np.float32)
    inits = [nh.from_array(w1, "w1"), nh.from_array(b1, "b1"), nh.from_array(w2, "w2"), nh.from_array(b2, "b2"),
             nh.from_array(np.array(0, np.float32), "lo"), nh.from_array(np.array(6, np.float32), "hi")]
    pt, pl, pb, pr = pads
    nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
             h.make_node("Clip", ["c1", "lo", "hi"], ["a1"]),
             h.make_node("Conv", ["a1", "w2", "b2"], ["c2"], strides=[stride] * 2, pads=[pt, pl, pb, pr], group=m),
             h.make_node("Clip", ["c2", "lo", "hi"], ["y"]),
             h.make_node("GlobalAveragePool", ["a1"], ["g"])]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, list(x.shape))],
                     [h.make_tensor_value_info("y", T.FLOAT, None), h.make_tensor_value_info("g", T.FLOAT, None)], inits)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    want_y, want_g = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.array([n, c, hw, hw, m, k, stride, pt, pl, pb, pr, lanes_for(c, c), mode], np.int32).tofile(f"{work}/p.i32")
    np.array([0, 6], np.float32).tofile(f"{work}/clip.f32")
    for name, v in [("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)]:
        v.tofile(f"{work}/{name}.f32")
    subprocess.run([exe, "prologue", work], check=True)
    y, gp = (np.fromfile(f"{work}/{f}.f32", np.float32) for f in ("y", "g"))
    dy = np.abs(y - want_y.ravel()).max() if y.size == want_y.size else np.inf
    dg = np.abs(gp - want_g.ravel()).max() if gp.size == want_g.size else np.inf
    ok = dy <= 1e-5 * max(1.0, float(np.abs(want_y).max())) and dg <= 1e-5 * max(1.0, float(np.abs(want_g).max()))
    print(f"  {'ok  ' if ok else 'FAIL'} Conv 1x1 {c} -> {m} over {hw}x{hw} (batch {n}) with its bias and ReLU6 applied by "
          f"its readers: a depthwise {k}x{k} s{stride} pads {pads} within {dy:.2g}, a global average pool within "
          f"{dg:.2g} of onnxruntime ({'the clamp written out' if mode == 2 else 'act_apply'})")
    return ok


def gemmsoftmax_case(exe, work, m, n, k, log, seed):
    """A few-row Gemm with a Softmax over its rows run by its last block (cuda/fuse.rs)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    bt = (rng.standard_normal((n, k)) / np.sqrt(k) * 3).astype(np.float32)
    bias = (rng.standard_normal(n) * 0.1).astype(np.float32)
    np.array([m, n, k, int(log)], np.int32).tofile(f"{work}/p.i32")
    a.tofile(f"{work}/a.f32")
    bt.tofile(f"{work}/b.f32")
    bias.tofile(f"{work}/bias.f32")
    subprocess.run([exe, "gemmsoftmax", work], check=True)
    y, same = (np.fromfile(f"{work}/{f}.f32", np.float32) for f in ("y", "y_same"))
    counter = np.fromfile(f"{work}/counter.u32", np.uint32)
    z = a.astype(np.float64) @ bt.T.astype(np.float64) + bias
    z -= z.max(1, keepdims=True)
    want = (z - np.log(np.exp(z).sum(1, keepdims=True))) if log else np.exp(z) / np.exp(z).sum(1, keepdims=True)
    diff = np.abs(y - want.ravel()).max()
    ok = np.array_equal(y, same) and counter[0] == 0 and diff <= 1e-5 * max(1.0, float(np.abs(want).max()))
    blocks = (m * n * 32 + 255) // 256
    print(f"  {'ok  ' if ok else 'FAIL'} Gemm [{m}, {k}] x [{k}, {n}] + {'LogSoftmax' if log else 'Softmax'} "
          f"({blocks} blocks, the last normalising; run twice): the unfused kernels' bits: "
          f"{'same' if np.array_equal(y, same) else 'DIFFER'}; float64 within {diff:.2g}; counter left at {counter[0]}")
    return ok


def ort_dynamic_conv(x, w, wzp, sw, b, stride, pad, group, clip):
    """onnxruntime's quantize_dynamic pattern for a Conv: (y, xq, scale, zero point)."""
    m = w.shape[0]
    inits = [nh.from_array(w, "w"), nh.from_array(np.array(wzp, dtype=w.dtype), "wzp"),
             nh.from_array(sw.reshape(1, m, 1, 1), "sw"), nh.from_array(b.reshape(1, m, 1, 1), "b")]
    nodes = [h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "sx", "zx"]),
             h.make_node("ConvInteger", ["xq", "w", "zx", "wzp"], ["acc"], strides=[stride] * 2, pads=[pad] * 4,
                         group=group),
             h.make_node("Cast", ["acc"], ["accf"], to=T.FLOAT),
             h.make_node("Mul", ["sx", "sw"], ["s"]),
             h.make_node("Mul", ["accf", "s"], ["ys"]),
             h.make_node("Add", ["ys", "b"], ["y0"])]
    out = "y0"
    if clip:
        inits += [nh.from_array(np.array(0, np.float32), "lo"), nh.from_array(np.array(6, np.float32), "hi")]
        nodes.append(h.make_node("Clip", ["y0", "lo", "hi"], ["y1"]))
        out = "y1"
    outs = [h.make_tensor_value_info(n, t, None) for n, t in
            [(out, T.FLOAT), ("xq", T.UINT8), ("sx", T.FLOAT), ("zx", T.UINT8)]]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, list(x.shape))], outs, inits)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})


def conv_case(exe, work, kind, n, c, hw, m, k, stride, pad, group, wdtype, wzp, clip, seed, x_kind="normal"):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c, hw, hw)) * 1.7 + 0.3).astype(np.float32)
    if x_kind == "positive":
        x = np.abs(x) + 0.1
    elif x_kind == "zeros":
        x = np.zeros_like(x)
    cg = c // group
    lo, hi = (0, 256) if wdtype == np.uint8 else (-128, 128)
    w = rng.integers(lo, hi, (m, cg, k, k)).astype(wdtype)
    sw = (0.003 + rng.random(m) * 0.01).astype(np.float32)
    b = (rng.standard_normal(m) * 0.5).astype(np.float32)
    want = ort_dynamic_conv(x, w, wzp, sw, b, stride, pad, group, clip)
    oh = (hw + 2 * pad - k) // stride + 1
    np.array([n, c, hw, hw, m, oh, oh, k, k, stride, stride, 1, 1, pad, pad, group], np.int64).tofile(f"{work}/p.i64")
    np.array([0, 6] if clip else [-np.inf, np.inf], np.float32).tofile(f"{work}/clamp.f32")
    x.tofile(f"{work}/x.f32")
    sw.tofile(f"{work}/mult.f32")  # QConv's mult with X's scale 1: the weight scale alone
    b.tofile(f"{work}/add.f32")
    wq = w.astype(np.int32) - wzp
    wq.astype(np.int16).tofile(f"{work}/w.i16")
    if kind == "dp4a":  # qconv.rs `pack_dp4a`
        taps, rows = k * k, wq.reshape(m, cg, k * k)
        words = np.zeros((m, (cg + 3) // 4, taps), np.uint32)
        for ch in range(cg):
            words[:, ch // 4, :] |= rows[:, ch, :].astype(np.int8).view(np.uint8).astype(np.uint32) << (8 * (ch % 4))
        words.view(np.int32).tofile(f"{work}/w4.i32")
        rows.reshape(m, -1).sum(1).astype(np.int32).tofile(f"{work}/sums.i32")
    terms = ((cg + 3) // 4 if kind == "dp4a" else cg) * k * k
    lanes = 1 << (min(max(terms // 16, 1), 32).bit_length() - 1)  # cuda::ops::lanes_for(terms, 32)
    subprocess.run([exe, "conv", kind, work, str(lanes)], check=True)
    y = np.fromfile(f"{work}/y.f32", np.float32).reshape(want[0].shape)
    xq = np.fromfile(f"{work}/xq.u8", np.uint8).reshape(x.shape)
    params = np.fromfile(f"{work}/params.f32", np.float32)
    ok = (np.array_equal(xq, want[1]) and params[0] == want[2] and params[1] == want[3]
          and params[2] == want[2] and params[3] == want[3] and np.array_equal(y, want[0]))
    name = f"{kind} {n}x{c}x{hw}x{hw} -> {m} k{k} s{stride} p{pad} g{group} {np.dtype(wdtype).name} zp {wzp}"
    if kind != "pw":  # the tiled kernel has no lanes
        name += f", {lanes} lane{'s' * (lanes > 1)}"
    name += " ReLU6" * clip + f" x {x_kind}"
    diff = np.abs(y.astype(np.float64) - want[0]).max()
    print(f"  {'ok  ' if ok else 'FAIL'} DynamicQuantizeConv {name}" + ("" if ok else f" (max |diff| {diff:.3g})"))
    return ok


def gather_case(exe, work):
    rng = np.random.default_rng(9)
    table = rng.integers(-128, 128, (7, 2, 3)).astype(np.int8)
    scale = (0.01 + rng.random(7) * 0.1).astype(np.float32)
    idx = np.array([0, 6, -1, 3, -7, 2], np.int64)
    table.tofile(f"{work}/table.i8")
    scale.tofile(f"{work}/scale.f32")
    idx.tofile(f"{work}/idx.i64")
    subprocess.run([exe, "gather", work], check=True)
    y = np.fromfile(f"{work}/y.f32", np.float32)
    want = (table[idx].astype(np.float32) * scale[idx][:, None, None]).ravel()
    ok = np.array_equal(y, want)
    print(f"  {'ok  ' if ok else 'FAIL'} QGather, negative indices")
    return ok


def padnarrow_case(exe, work, shape, begin, end, seed):
    """The pre-padding that narrows (`shape_pad_zero_narrow`, cuda/fuse.rs): numpy's zero pad
    of the f16 cast, bit for bit, specials included (past f16's range, subnormal, -0, inf)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    flat = x.reshape(-1)
    flat[:6] = [70000.0, -1e-6, 3e-8, -0.0, np.inf, 65519.0]
    od = [s + b + e for s, b, e in zip(shape, begin, end)]
    params = [len(shape)] + od + list(shape) + list(begin)
    np.array(params, np.int64).tofile(f"{work}/p.i64")
    x.tofile(f"{work}/x.f32")
    subprocess.run([exe, "padnarrow", work], check=True)
    y = np.fromfile(f"{work}/y.u16", np.uint16)
    with np.errstate(over="ignore"):  # 70000 narrows to inf, as intended
        want = np.pad(x.astype(np.float16), list(zip(begin, end))).view(np.uint16).ravel()
    ok = np.array_equal(y, want)
    print(f"  {'ok  ' if ok else 'FAIL'} pad + narrow {shape} pads {begin} / {end}")
    return ok


def pad_case(exe, work, shape, begin, end, mode, seed):
    """The Pad kernel (`shape_pad_*`, also a convolution's pre-padding) against numpy's pad."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    od = [s + b + e for s, b, e in zip(shape, begin, end)]
    value = np.float32(-1.5)
    params = [len(shape)] + od + list(shape) + list(begin) + [mode, int(value.view(np.uint32))]
    np.array(params, np.int64).tofile(f"{work}/p.i64")
    x.tofile(f"{work}/x.f32")
    subprocess.run([exe, "pad", work], check=True)
    y = np.fromfile(f"{work}/y.f32", np.float32)
    kw = {"constant_values": value} if mode == 0 else {}
    name = ["constant", "reflect", "edge"][mode]
    want = np.pad(x, list(zip(begin, end)), mode=name, **kw).ravel()
    ok = np.array_equal(y, want)
    print(f"  {'ok  ' if ok else 'FAIL'} Pad ({name}) {shape} pads {begin} / {end}")
    return ok


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/cuda-emu")
    exe = build(out)
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    cases = [  # kind, n, c, hw, m, k, stride, pad, group, w dtype, w zero point, clip, seed[, x]
        ("generic", 2, 5, 9, 6, 3, 2, 1, 1, np.uint8, 128, False, 1),
        ("generic", 1, 12, 10, 12, 3, 1, 1, 12, np.int8, 0, True, 2),  # depthwise
        ("generic", 1, 8, 7, 4, 5, 1, 2, 1, np.uint8, 3, True, 3),
        ("generic", 1, 64, 70, 2, 1, 1, 0, 1, np.uint8, 0, False, 4),  # 77 range blocks
        ("generic", 1, 4, 9, 3, 3, 1, 1, 1, np.uint8, 5, False, 5, "positive"),  # zero point 0
        ("generic", 1, 4, 9, 3, 3, 1, 1, 1, np.uint8, 5, False, 6, "zeros"),  # scale 1
        ("dp4a", 2, 8, 9, 8, 3, 1, 1, 1, np.int8, 0, True, 7),
        ("dp4a", 1, 6, 11, 5, 3, 2, 1, 1, np.int8, 0, False, 8),  # a partial word of channels
        ("dp4a", 1, 64, 6, 7, 3, 1, 1, 1, np.int8, 0, True, 11),  # 144 words: 8 lanes
        ("pw", 2, 36, 9, 40, 1, 1, 0, 1, np.int8, 0, True, 9),
        ("pw", 1, 70, 6, 33, 1, 1, 0, 1, np.uint8, 131, False, 10),
    ]
    ok = all([conv_case(exe, work, *c) for c in cases])
    ok = gather_case(exe, work) and ok
    # QConv with a QAdd folded into its store, against the two kernels (cuda/fuse.rs).
    ok = subprocess.run([exe, "qadd"]).returncode == 0 and ok
    fused = build_fused(out)
    convpools = [  # n, c, hw, m, k, stride, pad, group, pool, seed
        (1, 1, 28, 32, 3, 1, 0, 1, (2, 2), 21),  # the seed CNN's first layer
        (1, 32, 13, 16, 3, 1, 0, 1, (2, 2), 22),  # its second (16 of 64 channels): 11x11 to 5x5
        (2, 8, 9, 6, 3, 2, 1, 2, (1, 2), 23),  # batch 2, groups, stride 2, padding, a 1x2 window
        (1, 4, 18, 3, 3, 1, 1, 1, (4, 4), 24),  # 16 positions x 2 lanes
    ]
    ok = all([convpool_case(fused, work, *c) for c in convpools]) and ok
    gemms = [  # m, n, k, log, seed
        (1, 10, 64, False, 31),  # the seed CNN's head
        (1, 1000, 128, False, 32),  # the seed LSTM's
        (3, 90, 40, True, 33),  # three rows, LogSoftmax
        (1, 2100, 8, False, 34),  # a row past the register cache
    ]
    ok = all([gemmsoftmax_case(fused, work, *c) for c in gemms]) and ok
    tails = [  # m, n, k, n2, softmax, seed
        (1, 64, 576, 10, 1, 51),  # the seed CNN's head
        (3, 100, 40, 30, 2, 52),  # three rows, LogSoftmax
        (2, 48, 16, 300, 0, 53),  # no Softmax, more outputs than the block's warps
    ]
    ok = all([gemmtail_case(fused, work, *c) for c in tails]) and ok
    prologues = [  # n, c, hw, m, k, stride, pads (top, left, bottom, right), in_on, seed
        (1, 4, 9, 12, 3, 2, (0, 0, 1, 1), 2, 41),  # EfficientNet's stride-2 TF "same" padding
        (2, 3, 7, 5, 5, 1, (2, 2, 2, 2), 1, 42),
    ]
    ok = all([prologue_case(fused, work, *c) for c in prologues]) and ok
    pads = [  # shape, begin, end, seed
        ((1, 3, 17, 16), (0, 0, 0, 0), (0, 0, 1, 1), 61),  # EfficientNet's stem: TF "same", stride 2
        ((2, 2, 5, 7), (0, 0, 2, 1), (0, 0, 1, 3), 62),
    ]
    ok = all([padnarrow_case(fused, work, *c) for c in pads]) and ok
    plain = [  # shape, begin, end, mode (0 constant, 1 reflect, 2 edge), seed
        ((2, 3, 6, 5), (0, 1, 2, 0), (1, 0, 1, 3), 0, 71),
        ((1, 2, 6, 5), (0, 0, 2, 3), (0, 0, 3, 1), 1, 72),
        ((3, 4, 5), (1, 0, 2), (0, 2, 4), 2, 73),
    ]
    ok = all([pad_case(fused, work, *c) for c in plain]) and ok
    print("cuda-emu: every case equal" if ok else "cuda-emu: MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
