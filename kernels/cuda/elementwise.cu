// Element-wise kernels: unary activations, broadcasting binary ops, the fused epilogue
// (per-channel bias + activation) that Conv and Gemm run after cuDNN / cuBLAS, and the f32 <-> f16
// casts at the edges of an fp16 plan.

template <typename T>
__device__ void unary(const T* x, T* y, i64_t n, int op, float p0, float p1) {
    FOR_EACH(i, n) { st(y, i, act_apply(op, ld(x, i), p0, p1)); }
}

__device__ __forceinline__ float binary_apply(int op, float a, float b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return powf(a, b);
    // NaN in either operand gives NaN, as the CPU kernel (fmaxf/fminf would drop it).
    case 5: return (a > b || a != a) ? a : b;
    case 6: return (a < b || a != a) ? a : b;
    default: return a;
    }
}

// out[i] = act(a[ia] op b[ib]); `dims` is the output shape (rank <= 6, left-padded with 1s), and
// `sa`/`sb` the element strides of a and b in it (0 where broadcast).
template <typename T>
__device__ void binary(const T* a, const T* b, T* y, i64_t n, int op, int rank, Dims dims, Dims sa,
                       Dims sb, int act, float p0, float p1) {
    FOR_EACH(i, n) {
        i64_t rem = i, ia = 0, ib = 0;
        for (int k = rank - 1; k >= 0; --k) {
            i64_t c = rem % dims.d[k];
            rem /= dims.d[k];
            ia += c * sa.d[k];
            ib += c * sb.d[k];
        }
        st(y, i, act_apply(act, binary_apply(op, ld(a, ia), ld(b, ib)), p0, p1));
    }
}

// y[i] = act(y[i] + bias[(i / inner) % channels]); bias may be null.
template <typename T>
__device__ void bias_act(T* y, const T* bias, i64_t n, i64_t inner, i64_t channels, int act, float p0,
                         float p1) {
    FOR_EACH(i, n) {
        float v = ld(y, i);
        if (bias) v += ld(bias, (i / inner) % channels);
        st(y, i, act_apply(act, v, p0, p1));
    }
}

// y[i] = act(y[i] + bias[(i / inner) % channels] + res[i]): a Conv's residual epilogue.
template <typename T>
__device__ void bias_res_act(T* y, const T* bias, const T* res, i64_t n, i64_t inner,
                             i64_t channels, int act, float p0, float p1) {
    FOR_EACH(i, n) {
        float v = ld(y, i) + ld(res, i);
        if (bias) v += ld(bias, (i / inner) % channels);
        st(y, i, act_apply(act, v, p0, p1));
    }
}

#define ELEMENTWISE(T, S)                                                                            \
    extern "C" __global__ void elementwise_unary_##S(const T* x, T* y, i64_t n, int op, float p0,    \
                                                     float p1) {                                     \
        unary(x, y, n, op, p0, p1);                                                                  \
    }                                                                                                \
    extern "C" __global__ void elementwise_binary_##S(const T* a, const T* b, T* y, i64_t n, int op,  \
                                                      int rank, Dims dims, Dims sa, Dims sb, int act,\
                                                      float p0, float p1) {                          \
        binary(a, b, y, n, op, rank, dims, sa, sb, act, p0, p1);                                     \
    }                                                                                                \
    extern "C" __global__ void elementwise_bias_act_##S(T* y, const T* bias, i64_t n, i64_t inner,   \
                                                        i64_t channels, int act, float p0, float p1) {\
        bias_act(y, bias, n, inner, channels, act, p0, p1);                                          \
    }                                                                                                \
    extern "C" __global__ void elementwise_bias_res_act_##S(T* y, const T* bias, const T* res,        \
                                                            i64_t n, i64_t inner, i64_t channels,    \
                                                            int act, float p0, float p1) {           \
        bias_res_act(y, bias, res, n, inner, channels, act, p0, p1);                                 \
    }

ELEMENTWISE(float, f32)
ELEMENTWISE(f16_t, f16)

// y[i] = x[i] converted between float types (round to nearest even when narrowing).
template <typename A, typename B>
__device__ void cast(const A* x, B* y, i64_t n) {
    FOR_EACH(i, n) { st(y, i, ld(x, i)); }
}

// elementwise_cast_{from}_{to}
#define CAST(A, SA, B, SB)                                                                           \
    extern "C" __global__ void elementwise_cast_##SA##_##SB(const A* x, B* y, i64_t n) {            \
        cast(x, y, n);                                                                               \
    }

CAST(float, f32, f16_t, f16)
CAST(f16_t, f16, float, f32)
