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
//
// tail.n > 0: a second few-row product reading only Y folded in too (Gemm → Gemm, fuse.rs): the
// last block computes Y2 [M, tail.n] = act(alpha · Y · B2ᵀ + bias2) into tail.y (B2 stored
// [tail.n, N]; bias2 indexed as bias), a warp per output as above (so the same bits as a second
// launch), reading Y through L2; a folded Softmax then normalises Y2's rows instead of Y's.
// Mirrors `SmallGemm` in runtime/src/cuda/ops/linalg/small.rs.
struct SmallGemmParams {
    int m, n, k, lda, inner, channels, act;
    float alpha, p0, p1;
    int softmax;
};
struct SmallTail {
    const void* b;
    const void* bias;
    void* y;
    int n, inner, channels, act;
    float alpha, p0, p1;
};

// Output o of a few-row product, by one warp: its lanes split K (`load_a(q)` reads A's row),
// a shuffle sum, then lane 0 stores act(alpha·acc + bias). The first product and a folded second
// one both go through here, so a folded one gives a second launch's bits.
template <typename T, typename LA>
__device__ __forceinline__ void small_output(LA load_a, const T* bc, int k, int o, float alpha,
                                             const T* bias, int inner, int channels, int act,
                                             float p0, float p1, T* y) {
    const int lane = threadIdx.x & 31;
    float acc = 0.0f;
    for (int q = lane; q < k; q += 32) acc += load_a(q) * ld(bc, q);
    acc = lane_sum(acc, 32);
    if (lane == 0) {
        float v = alpha * acc;
        if (bias) v += ld(bias, (o / inner) % channels);
        st(y, o, act_apply(act, v, p0, p1));
    }
}

template <typename T>
__device__ void gemm_small(const T* a, const T* b, const T* bias, T* y, SmallGemmParams p,
                           unsigned* counter, SmallTail tail) {
    const int warps = p.m * p.n, stride = (blockDim.x * gridDim.x) >> 5;
    for (int o = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < warps; o += stride) {
        const int r = o / p.n, c = o - r * p.n;
        const T* ar = a + (i64_t)r * p.lda;
        small_output([&](int q) { return ld(ar, q); }, b + (i64_t)c * p.k, p.k, o, p.alpha, bias,
                     p.inner, p.channels, p.act, p.p0, p.p1, y);
    }
    if (p.softmax || tail.n) {
        __shared__ int last;
        __shared__ float shared[32];
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
        T* ys = y;
        int ns = p.n;
        if (tail.n) {
            const T* b2 = (const T*)tail.b;
            const T* bias2 = (const T*)tail.bias;
            T* y2 = (T*)tail.y;
            const int outs = p.m * tail.n, nwarps = blockDim.x >> 5;
            for (int o = threadIdx.x >> 5; o < outs; o += nwarps) {
                const int r = o / tail.n, c = o - r * tail.n;
                const T* yr = y + (i64_t)r * p.n;
                small_output([&](int q) { return ld_cg(yr, q); }, b2 + (i64_t)c * p.n, p.n, o,
                             tail.alpha, bias2, tail.inner, tail.channels, tail.act, tail.p0,
                             tail.p1, y2);
            }
            __threadfence();
            __syncthreads();
            ys = y2;
            ns = tail.n;
        }
        if (p.softmax) {
            for (int r = 0; r < p.m; ++r) {
                T* yr = ys + (i64_t)r * ns;
                softmax_row([&](i64_t j) { return ld_cg(yr, j); }, yr, ns, p.softmax == 2, shared);
            }
        }
        if (threadIdx.x == 0) *counter = 0;
    }
}

#define LINALG(T, S)                                                                                 \
    extern "C" __global__ void linalg_gemm_small_##S(const T* a, const T* b, const T* bias, T* y,    \
                                                     SmallGemmParams p, unsigned* counter,           \
                                                     SmallTail tail) {                               \
        gemm_small(a, b, bias, y, p, counter, tail);                                                 \
    }

LINALG(float, f32)
LINALG(f16_t, f16)
