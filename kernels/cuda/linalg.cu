// Small matrix products: Y [M, N] = act(alpha · A · Bᵀ + bias), with B stored [N, K] (rows
// contiguous over k, as an LSTM's W or a Gemm's transposed weights), for the few-row products
// of batch-1 inference (M up to 32), where cuBLAS's launch and set-up cost more than the work.
// One warp per output element: its lanes split K (coalesced reads of a row of A and of B),
// f32 accumulation, a shuffle reduction, then lane 0 stores. A's rows are `lda` apart.
// bias: null, or element (r, n) takes bias[(r·N + n) / inner % channels] (a scalar, a row or a
// column), as elementwise_bias_act.
//
// softmax 1 (2): a Softmax (LogSoftmax) over each row of Y folded in (the device graph's
// Gemm → Softmax, runtime/src/cuda/fuse.rs): the last block to finish, counted in `counter`
// (zeroed at build, reset by that block), normalises the rows as the Softmax kernel does (the
// same code and block size, so the same bits), reading what the other blocks wrote through L2.
// Mirrors `SmallGemm` in runtime/src/cuda/ops/linalg/small.rs.
struct SmallGemmParams {
    int m, n, k, lda, inner, channels, act;
    float alpha, p0, p1;
    int softmax;
};

template <typename T>
__device__ void gemm_small(const T* a, const T* b, const T* bias, T* y, SmallGemmParams p,
                           unsigned* counter) {
    const int lane = threadIdx.x & 31;
    const int warps = p.m * p.n, stride = (blockDim.x * gridDim.x) >> 5;
    for (int o = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < warps; o += stride) {
        const int r = o / p.n, c = o - r * p.n;
        const T* ar = a + (i64_t)r * p.lda;
        const T* bc = b + (i64_t)c * p.k;
        float acc = 0.0f;
        for (int q = lane; q < p.k; q += 32) acc += ld(ar, q) * ld(bc, q);
        acc = lane_sum(acc, 32);
        if (lane == 0) {
            float v = p.alpha * acc;
            if (bias) v += ld(bias, (o / p.inner) % p.channels);
            st(y, o, act_apply(p.act, v, p.p0, p.p1));
        }
    }
    if (p.softmax) {
        __shared__ int last;
        __shared__ float shared[32];
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
        for (int r = 0; r < p.m; ++r) {
            T* yr = y + (i64_t)r * p.n;
            softmax_row([&](i64_t j) { return ld_cg(yr, j); }, yr, p.n, p.softmax == 2, shared);
        }
        if (threadIdx.x == 0) *counter = 0;
    }
}

#define LINALG(T, S)                                                                                 \
    extern "C" __global__ void linalg_gemm_small_##S(const T* a, const T* b, const T* bias, T* y,    \
                                                     SmallGemmParams p, unsigned* counter) {         \
        gemm_small(a, b, bias, y, p, counter);                                                       \
    }

LINALG(float, f32)
LINALG(f16_t, f16)
