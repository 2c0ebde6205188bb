// Softmax / LogSoftmax over one axis: x viewed as [outer, len, inner].
// inner == 1: one block per row (block-wide max and sum); otherwise one thread per (outer, inner).

__device__ __forceinline__ float block_reduce(float v, int is_max, float* shared) {
    for (int o = 16; o > 0; o /= 2) {
        float other = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, other) : v + other;
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : (is_max ? -3.402823466e38f : 0.0f);
        for (int o = 16; o > 0; o /= 2) {
            float other = __shfl_xor_sync(0xffffffffu, v, o);
            v = is_max ? fmaxf(v, other) : v + other;
        }
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

// Rows up to ROW_CACHE elements per thread are read once into registers (a 1000-class row is
// four per thread): one trip to memory instead of three.
#define ROW_CACHE 8

template <typename T>
__device__ void softmax_rows(const T* x, T* y, i64_t rows, i64_t len, int log) {
    __shared__ float shared[32];
    const bool cached = len <= (i64_t)ROW_CACHE * blockDim.x;
    for (i64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * len;
        T* yr = y + r * len;
        float m = -3.402823466e38f;
        if (cached) {
            float v[ROW_CACHE];
#pragma unroll
            for (int u = 0; u < ROW_CACHE; ++u) {
                const i64_t j = threadIdx.x + (i64_t)u * blockDim.x;
                v[u] = j < len ? ld(xr, j) : -3.402823466e38f;
                m = fmaxf(m, v[u]);
            }
            m = block_reduce(m, 1, shared);
            float s = 0.0f;
#pragma unroll
            for (int u = 0; u < ROW_CACHE; ++u) {
                v[u] -= m;
                if (threadIdx.x + (i64_t)u * blockDim.x < len) s += expf(v[u]);
            }
            s = block_reduce(s, 0, shared);
            const float ls = logf(s);
#pragma unroll
            for (int u = 0; u < ROW_CACHE; ++u) {
                const i64_t j = threadIdx.x + (i64_t)u * blockDim.x;
                if (j < len) st(yr, j, log ? v[u] - ls : expf(v[u]) / s);
            }
            continue;
        }
        for (i64_t j = threadIdx.x; j < len; j += blockDim.x) m = fmaxf(m, ld(xr, j));
        m = block_reduce(m, 1, shared);
        float s = 0.0f;
        for (i64_t j = threadIdx.x; j < len; j += blockDim.x) s += expf(ld(xr, j) - m);
        s = block_reduce(s, 0, shared);
        float ls = logf(s);
        for (i64_t j = threadIdx.x; j < len; j += blockDim.x) {
            float e = ld(xr, j) - m;
            st(yr, j, log ? e - ls : expf(e) / s);
        }
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
