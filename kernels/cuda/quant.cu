// QuantizeLinear / DequantizeLinear, per tensor or per channel (channel c = (i / inner) % channels).
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
