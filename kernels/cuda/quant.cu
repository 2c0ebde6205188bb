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

// QConv: int8 convolution (1-D as height 1), one thread per output. The accumulator is exact in
// int32: sum over the group's channels and in-bounds taps of (x - zx) * w, where `w` holds the
// weights minus their zero points (prepared once at load, i16). Out-of-bounds taps are the real
// value 0, i.e. x = zx, and add nothing. Then y = acc * mult[m] + add[m] without contraction (as
// the CPU's requantizing epilogue), and for byte outputs q = round_half_even(clamp(y + zp, lo,
// hi)); for f32 outputs clamp(y, lo, hi). Mirrors `QConvParams` in cuda/ops/quant/qconv.rs.
struct QConvParams {
    i64_t n, c, h, w, m, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, group;
    int zx;
    float zp, lo, hi;
};

__device__ __forceinline__ void qstore(unsigned char* y, i64_t i, float v, const QConvParams& p) {
    y[i] = (unsigned char)(int)rintf(fminf(fmaxf(__fadd_rn(v, p.zp), p.lo), p.hi));
}
__device__ __forceinline__ void qstore(signed char* y, i64_t i, float v, const QConvParams& p) {
    y[i] = (signed char)(int)rintf(fminf(fmaxf(__fadd_rn(v, p.zp), p.lo), p.hi));
}
__device__ __forceinline__ void qstore(float* y, i64_t i, float v, const QConvParams& p) {
    y[i] = fminf(fmaxf(v, p.lo), p.hi);
}

template <typename X, typename Y>
__device__ void qconv(const X* x, const short* w, const float* mult, const float* add, Y* y,
                      QConvParams p) {
    const i64_t cg = p.c / p.group, mg = p.m / p.group;
    FOR_EACH(i, p.n * p.m * p.oh * p.ow) {
        i64_t ox = i % p.ow, oy = (i / p.ow) % p.oh, m = (i / (p.ow * p.oh)) % p.m;
        i64_t b = i / (p.ow * p.oh * p.m), g = m / mg;
        i64_t ys = oy * p.sh - p.pt, xs = ox * p.sw - p.pl;
        int acc = 0;
        for (i64_t ci = 0; ci < cg; ++ci) {
            const X* xp = x + ((b * p.c + g * cg + ci) * p.h) * p.w;
            const short* wp = w + ((m * cg + ci) * p.kh) * p.kw;
            for (i64_t ky = 0; ky < p.kh; ++ky) {
                i64_t iy = ys + ky * p.dh;
                if (iy < 0 || iy >= p.h) continue;
                for (i64_t kx = 0; kx < p.kw; ++kx) {
                    i64_t ix = xs + kx * p.dw;
                    if (ix < 0 || ix >= p.w) continue;
                    acc += ((int)xp[iy * p.w + ix] - p.zx) * (int)wp[ky * p.kw + kx];
                }
            }
        }
        qstore(y, i, __fadd_rn(__fmul_rn((float)acc, mult[m]), add[m]), p);
    }
}

// quant_conv_{x}_{y}
#define QCONV(X, SX, Y, SY)                                                                          \
    extern "C" __global__ void quant_conv_##SX##_##SY(const X* x, const short* w, const float* mult, \
                                                      const float* add, Y* y, QConvParams p) {       \
        qconv(x, w, mult, add, y, p);                                                                \
    }

QCONV(unsigned char, u8, unsigned char, u8)
QCONV(unsigned char, u8, signed char, i8)
QCONV(unsigned char, u8, float, f32)
QCONV(signed char, i8, unsigned char, u8)
QCONV(signed char, i8, signed char, i8)
QCONV(signed char, i8, float, f32)
