// QuantizeLinear / DequantizeLinear, per tensor or per channel (channel c = (i / inner) % channels),
// and QConv, the int8 convolution.
// Arithmetic as the CPU kernels (onnxruntime's): true division, round half to even, zero point
// added in f32, then saturation; dequantize subtracts the zero point in integers.

template <typename Q>
__device__ void quantize(const float* x, const float* scale, const Q* zp, Q* y, i64_t n, i64_t inner,
                         i64_t channels, float lo, float hi) {
    FOR_EACH(i, n) {
        i64_t c = (i / inner) % channels;
        float z = zp ? (float)zp[c] : 0.0f;
        float q = fminf(fmaxf(rintf(x[i] / scale[c]) + z, lo), hi);
        y[i] = (Q)(int)q;
    }
}

template <typename Q>
__device__ void dequantize(const Q* x, const float* scale, const Q* zp, float* y, i64_t n, i64_t inner,
                           i64_t channels) {
    FOR_EACH(i, n) {
        i64_t c = (i / inner) % channels;
        int z = zp ? (int)zp[c] : 0;
        y[i] = (float)((int)x[i] - z) * scale[c];
    }
}

#define QUANT(Q, S)                                                                                  \
    extern "C" __global__ void quant_quantize_##S(const float* x, const float* scale, const Q* zp,   \
                                                  Q* y, i64_t n, i64_t inner, i64_t channels,        \
                                                  float lo, float hi) {                              \
        quantize(x, scale, zp, y, n, inner, channels, lo, hi);                                       \
    }                                                                                                \
    extern "C" __global__ void quant_dequantize_##S(const Q* x, const float* scale, const Q* zp,     \
                                                    float* y, i64_t n, i64_t inner, i64_t channels) {\
        dequantize(x, scale, zp, y, n, inner, channels);                                             \
    }

QUANT(unsigned char, u8)
QUANT(signed char, i8)

extern "C" __global__ void quant_dequantize_i32(const int* x, const float* scale, const int* zp,
                                                float* y, i64_t n, i64_t inner, i64_t channels) {
    dequantize(x, scale, zp, y, n, inner, channels);
}

// DynamicQuantizeLinear on the device, in two launches captured with the rest of the graph.
// `quant_dyn_range`: up to DYN_THREADS blocks of DYN_THREADS threads, each block folding a
// grid-stride share of X into its (min, max), stored as parts[2b], parts[2b + 1]. Then
// `quant_dyn_quantize`: every block folds those parts into X's range [min(0, lo), max(0, hi)]
// (min and max are exact, so every block and the CPU get the same range in any order; a NaN
// keeps the bound, as `vminps`/`vmaxps` do on the CPU) and computes the scale and zero point
// as `qrnn::dynamic_params` does — (hi − lo) / 255 and round_half_even(clamp(−lo / scale, 0,
// 255)), (1, 0) for an all-zero range — then quantizes its share as the CPU's
// DynamicQuantizeLinear does: a true division, clamped to ±300, rounded half to even, the zero
// point added, clamped to 0..255 (a NaN becomes 0). Block 0 also stores the parameters for what
// reads them: a `DynQ` (the convolution or product after it) and the op's scale and zero point
// outputs, each optional (null).
#define DYN_THREADS 256

// The run's X scale and zero point (QConvParams::dyn).
struct DynQ {
    float scale;
    int zp;
};

// (lo, hi) folded over the block (blockDim.x == DYN_THREADS); every thread gets the result.
__device__ __forceinline__ void block_range(float& lo, float& hi) {
    __shared__ float slo[DYN_THREADS], shi[DYN_THREADS];
    slo[threadIdx.x] = lo;
    shi[threadIdx.x] = hi;
    __syncthreads();
    for (int s = DYN_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            slo[threadIdx.x] = fminf(slo[threadIdx.x], slo[threadIdx.x + s]);
            shi[threadIdx.x] = fmaxf(shi[threadIdx.x], shi[threadIdx.x + s]);
        }
        __syncthreads();
    }
    lo = slo[0];
    hi = shi[0];
}

extern "C" __global__ void quant_dyn_range(const float* x, i64_t n, float* parts) {
    float lo = 0.0f, hi = 0.0f;
    FOR_EACH(i, n) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    block_range(lo, hi);
    if (threadIdx.x == 0) {
        parts[2 * blockIdx.x] = lo;
        parts[2 * blockIdx.x + 1] = hi;
    }
}

extern "C" __global__ void quant_dyn_quantize(const float* x, i64_t n, const float* parts,
                                              int blocks, unsigned char* y, DynQ* dq,
                                              float* scale_out, unsigned char* zp_out) {
    float lo = 0.0f, hi = 0.0f;
    if ((int)threadIdx.x < blocks) {
        lo = parts[2 * threadIdx.x];
        hi = parts[2 * threadIdx.x + 1];
    }
    block_range(lo, hi);
    float scale = 1.0f;
    int zp = 0;
    if (hi != lo) {
        scale = __fdiv_rn(__fsub_rn(hi, lo), 255.0f);
        zp = (int)rintf(fminf(fmaxf(__fdiv_rn(-lo, scale), 0.0f), 255.0f));
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        if (dq) {
            dq->scale = scale;
            dq->zp = zp;
        }
        if (scale_out) *scale_out = scale;
        if (zp_out) *zp_out = (unsigned char)zp;
    }
    const float z = (float)zp;
    FOR_EACH(i, n) {
        const float r = rintf(fminf(fmaxf(__fdiv_rn(x[i], scale), -300.0f), 300.0f));
        y[i] = (unsigned char)(int)fminf(fmaxf(__fadd_rn(r, z), 0.0f), 255.0f);
    }
}

// QAdd in the u8 domain (bytes xor `xa`/`xb` with zero points `za`/`zb`, as the CPU kernel):
// y = (a - za)·ka + (b - zb)·kb, then the store (`kb`, `ka` in output units for byte outputs).
// Mirrors `QAddParams` in cuda/ops/quant/qadd.rs.
struct QAddParams {
    int xa, xb, flip;
    float za, zb, ka, kb, zp, lo, hi;
};

// QConv: int8 convolution (1-D as height 1), `lanes` threads per output (a power of two up to
// 32, chosen at load from the reduction length: one for depthwise and short reductions, a warp
// for the 1x1 projections of 960 channels), each summing every lanes-th term of the reduction,
// then added across the lanes by shuffles. The accumulator is exact in int32 (so the order of
// the terms does not matter): sum over the group's channels and in-bounds taps of (x - zx) * w,
// where `w` holds the weights minus their zero points (prepared once at load, i16).
// Out-of-bounds taps are the real value 0, i.e. x = zx, and add nothing. Then
// y = acc * mult[m] + add[m] without contraction (as the CPU's requantizing epilogue), and for
// byte outputs q = round_half_even(clamp(y + zp, lo, hi)); for f32 outputs clamp(y, lo, hi).
// Mirrors `QConvParams` in cuda/ops/quant/qconv.rs.
//
// `dyn` is set for DynamicQuantizeConv and DynamicQuantizeMatMul (a 1x1 QConv): X was
// quantized on the device in this run (`quant_dyn_quantize`), so its zero point is read from
// there instead of `zx`, and `mult[m]` holds the weights' scale alone, multiplied by the run's
// X scale as onnxruntime's Mul(sx, sw) does. Null for QConv.
// `add_other` is set when a QAdd reading only this QConv runs in its kernel
// (runtime/src/cuda/fuse.rs): the QConv's byte is computed as it would be stored, then the QAdd's
// arithmetic with the other operand's byte at the same index (`add_conv_is_a`: which operand
// the QConv's output is), stored as the QAdd stores (`qconv_store`). Y is then the QAdd's output.
struct QConvParams {
    i64_t n, c, h, w, m, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, group;
    int zx, lanes;
    float zp, lo, hi;
    const DynQ* dyn;
    const unsigned char* add_other;
    int add_conv_is_a;
    QAddParams qadd;
};

__device__ __forceinline__ int qconv_zx(const QConvParams& p) {
    return p.dyn ? p.dyn->zp : p.zx;
}
// The epilogue's `acc·mult + add`, without contraction (as the CPU's requantizing epilogue).
__device__ __forceinline__ float qconv_epi(int acc, const float* mult, const float* add, int m,
                                           const QConvParams& p) {
    const float k = p.dyn ? __fmul_rn(p.dyn->scale, mult[m]) : mult[m];
    return __fadd_rn(__fmul_rn((float)acc, k), add[m]);
}

// The requantizing store shared by the int8 ops (the CPU's `quantize_byte`): the output's zero
// point added in f32, the clamp, rounding half to even, then the byte (two's complement for
// negative i8 values) xor `flip` (0x80 where an op works in the u8 domain for an i8 output).
// f32 outputs are clamped only.
__device__ __forceinline__ void qstore(unsigned char* y, i64_t i, float v, float zp, float lo,
                                       float hi, int flip) {
    y[i] = (unsigned char)((int)rintf(fminf(fmaxf(__fadd_rn(v, zp), lo), hi)) ^ flip);
}
__device__ __forceinline__ void qstore(signed char* y, i64_t i, float v, float zp, float lo,
                                       float hi, int flip) {
    qstore((unsigned char*)y, i, v, zp, lo, hi, flip);
}
__device__ __forceinline__ void qstore(float* y, i64_t i, float v, float zp, float lo, float hi,
                                       int flip) {
    y[i] = fminf(fmaxf(v, lo), hi);
}

// The QConv's store of output i (`qstore` with the QConv's zero point and clamp), or with a QAdd
// folded in, the byte it would have stored put through the QAdd's arithmetic (`qadd`'s, in the
// same order, so the same bits as the two kernels).
template <typename Y>
__device__ __forceinline__ void qconv_store(Y* y, i64_t i, float v, const QConvParams& p) {
    if (!p.add_other) {
        qstore(y, i, v, p.zp, p.lo, p.hi, 0);
        return;
    }
    const int q = (unsigned char)(int)rintf(fminf(fmaxf(__fadd_rn(v, p.zp), p.lo), p.hi));
    const int o = p.add_other[i];
    const int a = p.add_conv_is_a ? q : o, b = p.add_conv_is_a ? o : q;
    const QAddParams& k = p.qadd;
    const float ra = __fmul_rn((float)(a ^ k.xa) - k.za, k.ka);
    const float rb = __fmul_rn((float)(b ^ k.xb) - k.zb, k.kb);
    qstore(y, i, __fadd_rn(ra, rb), k.zp, k.lo, k.hi, k.flip);
}

// Where output `i` reads: image b, group g, channel m, and the top-left tap (ys, xs). In 32-bit
// arithmetic: a 64-bit division costs several times a 32-bit one on the GPU, and the build
// checks that outputs times lanes fit an int.
struct QConvAt {
    int b, g, m, ys, xs;
};
__device__ __forceinline__ QConvAt qconv_at(int i, const QConvParams& p) {
    const int ow = (int)p.ow, oh = (int)p.oh, m_all = (int)p.m;
    const int ox = i % ow, r = i / ow, oy = r % oh, r2 = r / oh, m = r2 % m_all, b = r2 / m_all;
    return QConvAt{b, m / (m_all / (int)p.group), m, oy * (int)p.sh - (int)p.pt,
                   ox * (int)p.sw - (int)p.pl};
}

template <typename X, typename Y>
__device__ void qconv(const X* x, const short* w, const float* mult, const float* add, Y* y,
                      QConvParams p) {
    const int cg = (int)(p.c / p.group), kh = (int)p.kh, kw = (int)p.kw, kk = kh * kw;
    const int red = cg * kk, lanes = p.lanes, h = (int)p.h, wd = (int)p.w;
    const int dh = (int)p.dh, dw = (int)p.dw, plane = h * wd;
    const int total = (int)(p.n * p.m * p.oh * p.ow) * lanes, zx = qconv_zx(p);
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += blockDim.x * gridDim.x) {
        const int i = t / lanes, lane = t - i * lanes;
        const QConvAt a = qconv_at(i, p);
        const X* xg = x + ((i64_t)a.b * p.c + (i64_t)a.g * cg) * plane;
        const short* wm = w + (i64_t)a.m * red;
        int acc = 0;
        if (kk == 1) {
            // 1x1: the reduction is over channels only, the tap is the same for all.
            if (a.ys >= 0 && a.ys < h && a.xs >= 0 && a.xs < wd) {
                const X* xp = xg + a.ys * wd + a.xs;
                for (int r = lane; r < red; r += lanes)
                    acc += ((int)xp[r * plane] - zx) * (int)wm[r];
            }
        } else if (lanes == 1) {
            // One thread walks the whole window: nested loops, no divisions.
            for (int ci = 0; ci < cg; ++ci) {
                const X* xp = xg + ci * plane;
                const short* wp = wm + ci * kk;
                for (int ky = 0; ky < kh; ++ky) {
                    const int iy = a.ys + ky * dh;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < kw; ++kx) {
                        const int ix = a.xs + kx * dw;
                        if (ix < 0 || ix >= wd) continue;
                        acc += ((int)xp[iy * wd + ix] - zx) * (int)wp[ky * kw + kx];
                    }
                }
            }
        } else {
            for (int r = lane; r < red; r += lanes) {
                const int ci = r / kk, tap = r - ci * kk, ky = tap / kw, kx = tap - ky * kw;
                const int iy = a.ys + ky * dh, ix = a.xs + kx * dw;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                    acc += ((int)xg[ci * plane + iy * wd + ix] - zx) * (int)wm[r];
            }
        }
        acc = lane_sum(acc, lanes);
        if (lane == 0) qconv_store(y, i, qconv_epi(acc, mult, add, a.m, p), p);
    }
}

// The same convolution with dp4a, for i8 weights with zero point 0 (the usual per-channel
// symmetric weights) and at least four channels per group: four channels of one tap are packed
// into a word and multiplied in one instruction. `w4` holds the weights as [M, ceil(C/g / 4),
// KH, KW] words (channels past C/g zero). Padding taps take the input's zero point (the real
// value 0) for every channel, so sum(x·w) over all taps minus zx·sumw[m] (the sum of row m's
// weights) is the exact sum of (x - zx)·w. The words are split over the lanes as above.
__device__ __forceinline__ int dp4a(unsigned a, int b, int c, const unsigned char*) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ int dp4a(unsigned a, int b, int c, const signed char*) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

template <typename X, typename Y>
__device__ void qconv_dp4a(const X* x, const int* w4, const int* sumw, const float* mult,
                           const float* add, Y* y, QConvParams p) {
    const int cg = (int)(p.c / p.group), c4 = (cg + 3) / 4, kk = (int)(p.kh * p.kw);
    const int kw = (int)p.kw, h = (int)p.h, wd = (int)p.w, red = c4 * kk, lanes = p.lanes;
    const int dh = (int)p.dh, dw = (int)p.dw, plane = h * wd;
    const int zxi = qconv_zx(p);
    const unsigned zx = (unsigned char)zxi;
    const int total = (int)(p.n * p.m * p.oh * p.ow) * lanes;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += blockDim.x * gridDim.x) {
        const int i = t / lanes, lane = t - i * lanes;
        const QConvAt a = qconv_at(i, p);
        const unsigned char* xb =
            (const unsigned char*)x + ((i64_t)a.b * p.c + (i64_t)a.g * cg) * plane;
        const int* wm = w4 + (i64_t)a.m * red;
        int acc = 0;
        for (int r = lane; r < red; r += lanes) {
            const int q = r / kk, tap = r - q * kk, ky = tap / kw, kx = tap - ky * kw;
            const int iy = a.ys + ky * dh, ix = a.xs + kx * dw;
            const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < wd;
            const int n4 = min(cg - 4 * q, 4);
            const unsigned char* xp = xb + 4 * q * plane + iy * wd + ix;
            unsigned packed = 0;
            for (int j = 0; j < n4; ++j) {
                unsigned v = inside ? xp[j * plane] : zx;
                packed |= v << (8 * j);
            }
            acc = dp4a(packed, wm[r], acc, x);
        }
        acc = lane_sum(acc, lanes);
        if (lane == 0) {
            acc -= zxi * sumw[a.m];
            qconv_store(y, i, qconv_epi(acc, mult, add, a.m, p), p);
        }
    }
}

// A pointwise QConv (1x1, stride 1, no padding, one group) through `pointwise_gemm` with an
// exact int32 accumulator of (x - zx)·w (the i16 weights minus their zero points), then the
// requantizing store of `qconv`.
template <typename X, typename Y>
__device__ void qconv_pointwise(const X* x, const short* w, const float* mult, const float* add,
                                Y* y, QConvParams p, PwSplit<int> pw) {
    const int c = (int)p.c, m_all = (int)p.m, plane = (int)(p.h * p.w);
    const i64_t b = blockIdx.z / pw.splits;
    const X* xb = x + b * c * plane;
    const int zx = qconv_zx(p);
    pointwise_gemm<int>(
        c, m_all, plane, pw, [&](int k, int q) { return (int)xb[k * plane + q] - zx; },
        [&](int m, int k) { return (int)w[m * c + k]; },
        [&](int m, int q, int acc) {
            qconv_store(y, (b * m_all + m) * plane + q, qconv_epi(acc, mult, add, m, p), p);
        });
}

// quant_conv_{x}_{y}, quant_conv_dp4a_{x}_{y} and quant_conv_pw_{x}_{y}
#define QCONV(X, SX, Y, SY)                                                                          \
    extern "C" __global__ void quant_conv_##SX##_##SY(const X* x, const short* w, const float* mult, \
                                                      const float* add, Y* y, QConvParams p) {       \
        qconv(x, w, mult, add, y, p);                                                                \
    }                                                                                                \
    extern "C" __global__ void quant_conv_dp4a_##SX##_##SY(const X* x, const int* w4,                \
                                                           const int* sumw, const float* mult,       \
                                                           const float* add, Y* y, QConvParams p) {  \
        qconv_dp4a(x, w4, sumw, mult, add, y, p);                                                    \
    }                                                                                                \
    extern "C" __global__ void quant_conv_pw_##SX##_##SY(const X* x, const short* w,                 \
                                                         const float* mult, const float* add, Y* y,  \
                                                         QConvParams p, PwSplit<int> pw) {           \
        qconv_pointwise(x, w, mult, add, y, p, pw);                                                  \
    }

QCONV(unsigned char, u8, unsigned char, u8)
QCONV(unsigned char, u8, signed char, i8)
QCONV(unsigned char, u8, float, f32)
QCONV(signed char, i8, unsigned char, u8)
QCONV(signed char, i8, signed char, i8)
QCONV(signed char, i8, float, f32)

template <typename Y>
__device__ void qadd(const unsigned char* a, const unsigned char* b, Y* y, i64_t n, QAddParams p) {
    FOR_EACH(i, n) {
        float ra = __fmul_rn((float)(a[i] ^ p.xa) - p.za, p.ka);
        float rb = __fmul_rn((float)(b[i] ^ p.xb) - p.zb, p.kb);
        qstore(y, i, __fadd_rn(ra, rb), p.zp, p.lo, p.hi, p.flip);
    }
}

extern "C" __global__ void quant_add_q8(const unsigned char* a, const unsigned char* b,
                                        unsigned char* y, i64_t n, QAddParams p) {
    qadd(a, b, y, n, p);
}
extern "C" __global__ void quant_add_f32(const unsigned char* a, const unsigned char* b, float* y,
                                         i64_t n, QAddParams p) {
    qadd(a, b, y, n, p);
}

// QPool in the u8 domain, one thread per output, as the CPU kernel's general loop: max or the
// exact integer sum of (x - zx) over in-bounds taps (divided by the in-bounds or the padded
// count), then round_half_even(clamp(v·ratio, ±300)) + zp_out, clamped to 0..255, xor `flip`.
// Mirrors `QPoolParams` in cuda/ops/quant/qpool.rs.
struct QPoolParams {
    i64_t planes, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int is_max, count_include_pad, xor_in, zx, zp_out, flip;
    float ratio;
};

extern "C" __global__ void quant_pool_q8(const unsigned char* x, unsigned char* y, QPoolParams p) {
    FOR_EACH(i, p.planes * p.oh * p.ow) {
        i64_t ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
        const unsigned char* xp = x + plane * p.ih * p.iw;
        i64_t y0 = oy * p.sh - p.pt, x0 = ox * p.sw - p.pl;
        int sum = 0, mx = -2147483647 - 1, valid = 0, padded = 0;
        for (i64_t ki = 0; ki < p.kh; ++ki) {
            i64_t iy = y0 + ki * p.dh;
            for (i64_t kj = 0; kj < p.kw; ++kj) {
                i64_t ix = x0 + kj * p.dw;
                if (iy >= -p.pt && iy < p.ih + p.pb && ix >= -p.pl && ix < p.iw + p.pr) ++padded;
                if (iy >= 0 && ix >= 0 && iy < p.ih && ix < p.iw) {
                    int v = (int)(xp[iy * p.iw + ix] ^ p.xor_in) - p.zx;
                    sum += v;
                    mx = max(mx, v);
                    ++valid;
                }
            }
        }
        float real;
        if (p.is_max) {
            real = valid > 0 ? (float)mx : 0.0f;
        } else {
            int div = p.count_include_pad ? padded : valid;
            real = __fdiv_rn((float)sum, (float)max(div, 1));
        }
        float v = rintf(fminf(fmaxf(__fmul_rn(real, p.ratio), -300.0f), 300.0f)) + (float)p.zp_out;
        y[i] = (unsigned char)((int)fminf(fmaxf(v, 0.0f), 255.0f) ^ p.flip);
    }
}

// QGather: rows of an i8 table [rows, row], each value times its row's scale (the CPU's
// `q as f32 * s`), f32 out. Indices may be negative (from the end); one out of range writes
// zeros, as Gather does (the CPU backend reports it instead).
template <typename I>
__device__ void qgather(const signed char* x, const float* scale, const I* idx, float* y,
                        i64_t n_idx, i64_t rows, i64_t row) {
    FOR_EACH(i, n_idx * row) {
        const i64_t k = i / row, j = i - k * row;
        i64_t r = (i64_t)idx[k];
        if (r < 0) r += rows;
        y[i] = (r < 0 || r >= rows) ? 0.0f : __fmul_rn((float)x[r * row + j], scale[r]);
    }
}

extern "C" __global__ void quant_gather(const signed char* x, const float* scale, const i64_t* idx,
                                        float* y, i64_t n_idx, i64_t rows, i64_t row) {
    qgather(x, scale, idx, y, n_idx, rows, row);
}
extern "C" __global__ void quant_gather_i32(const signed char* x, const float* scale, const int* idx,
                                            float* y, i64_t n_idx, i64_t rows, i64_t row) {
    qgather(x, scale, idx, y, n_idx, rows, row);
}
