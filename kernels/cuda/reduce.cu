// Softmax / LogSoftmax over one axis: x viewed as [outer, len, inner].
// inner == 1: one block per row (block-wide max and sum); otherwise one thread per (outer, inner).

// block_reduce and softmax_row are in prelude.cuh (the few-row GEMM folds a Softmax in too).
template <typename T>
__device__ void softmax_rows(const T* x, T* y, i64_t rows, i64_t len, int log) {
    __shared__ float shared[32];
    for (i64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * len;
        softmax_row([&](i64_t j) { return ld(xr, j); }, y + r * len, len, log, shared);
    }
}

template <typename T>
__device__ void softmax_strided(const T* x, T* y, i64_t outer, i64_t len, i64_t inner, int log) {
    FOR_EACH(i, outer * inner) {
        i64_t o = i / inner, in = i % inner;
        const T* xr = x + o * len * inner + in;
        T* yr = y + o * len * inner + in;
        float m = -3.402823466e38f;
        for (i64_t j = 0; j < len; ++j) m = fmaxf(m, ld(xr, j * inner));
        float s = 0.0f;
        for (i64_t j = 0; j < len; ++j) s += expf(ld(xr, j * inner) - m);
        float ls = logf(s);
        for (i64_t j = 0; j < len; ++j) {
            float e = ld(xr, j * inner) - m;
            st(yr, j * inner, log ? e - ls : expf(e) / s);
        }
    }
}

#define REDUCE(T, S)                                                                                 \
    extern "C" __global__ void reduce_softmax_rows_##S(const T* x, T* y, i64_t rows, i64_t len,     \
                                                       int log) {                                    \
        softmax_rows(x, y, rows, len, log);                                                          \
    }                                                                                                \
    extern "C" __global__ void reduce_softmax_strided_##S(const T* x, T* y, i64_t outer, i64_t len, \
                                                          i64_t inner, int log) {                    \
        softmax_strided(x, y, outer, len, inner, log);                                               \
    }

REDUCE(float, f32)
REDUCE(f16_t, f16)
