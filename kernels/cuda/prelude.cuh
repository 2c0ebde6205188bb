// Prepended to every kernel source before NVRTC compiles it (no #include: NVRTC gets one string).
// fp16 is handled as raw 16-bit storage converted with PTX cvt, so no cuda_fp16.h is needed
// (NVRTC 12.9 from pip has no built-in cuda_fp16.h: `#include <cuda_fp16.h>` fails without a
// toolkit include path). Arithmetic happens in f32 registers: ld widens, st rounds to nearest even.
// Element loads and stores go through ld/st so each kernel is written once for f32 and f16.

typedef unsigned short f16_t;
typedef long long i64_t;

#define MAX_RANK 6

// Shapes and strides passed by value (the Rust side mirrors this struct, `Dims`).
struct Dims {
    i64_t d[MAX_RANK];
};

__device__ __forceinline__ float ld(const float* p, i64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const f16_t* p, i64_t i) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
    return f;
}
__device__ __forceinline__ void st(float* p, i64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(f16_t* p, i64_t i, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p[i] = h;
}

// Sum of `acc` over the aligned group of `lanes` threads (a power of two up to 32) this thread
// belongs to. Callers launch whole groups (the range is a multiple of `lanes`, groups aligned,
// blocks a multiple of 32), so exactly the group's lanes take part in each shuffle.
template <typename A>
__device__ __forceinline__ A lane_sum(A acc, int lanes) {
    if (lanes == 1) return acc;
    const unsigned mask =
        lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u) << ((threadIdx.x & 31) & ~(lanes - 1));
    for (int off = lanes >> 1; off > 0; off >>= 1) acc += __shfl_xor_sync(mask, acc, off, lanes);
    return acc;
}

// Maximum of `v` over the aligned group of `lanes` threads (as lane_sum): every lane gets it.
__device__ __forceinline__ float lane_max(float v, int lanes) {
    if (lanes == 1) return v;
    const unsigned mask =
        lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u) << ((threadIdx.x & 31) & ~(lanes - 1));
    for (int off = lanes >> 1; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(mask, v, off, lanes));
    return v;
}

// Element i of p through L2 (not L1): for values other blocks of the running kernel wrote.
template <typename T>
__device__ __forceinline__ float ld_cg(const T* p, i64_t i) {
    const T v = __ldcg(p + i);
    return ld(&v, 0);
}

// Max (is_max) or sum of v over the block (blockDim.x a multiple of 32); every thread gets it.
// `shared` holds 32 floats. Starts with a barrier, so calls may follow each other.
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

// Softmax (log: LogSoftmax) of one row of `len` values, `load(j)` reading element j, written
// to yr by the whole block (the Softmax kernel, and the few-row GEMM with a Softmax folded in).
template <typename T, typename LD>
__device__ void softmax_row(LD load, T* yr, i64_t len, int log, float* shared) {
    float m = -3.402823466e38f;
    if (len <= (i64_t)ROW_CACHE * blockDim.x) {
        float v[ROW_CACHE];
#pragma unroll
        for (int u = 0; u < ROW_CACHE; ++u) {
            const i64_t j = threadIdx.x + (i64_t)u * blockDim.x;
            v[u] = j < len ? load(j) : -3.402823466e38f;
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
        return;
    }
    for (i64_t j = threadIdx.x; j < len; j += blockDim.x) m = fmaxf(m, load(j));
    m = block_reduce(m, 1, shared);
    float s = 0.0f;
    for (i64_t j = threadIdx.x; j < len; j += blockDim.x) s += expf(load(j) - m);
    s = block_reduce(s, 0, shared);
    float ls = logf(s);
    for (i64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float e = load(j) - m;
        st(yr, j, log ? e - ls : expf(e) / s);
    }
}

// Activation codes shared with runtime/src/cuda/ops/elementwise/unary.rs (`act_code`).
__device__ __forceinline__ float softplus_f(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}
__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float act_apply(int op, float x, float p0, float p1) {
    switch (op) {
    case 0: return x;                                   // Identity
    case 1: return x > 0.0f ? x : 0.0f;                 // Relu
    case 2: return sigmoid_f(x);                        // Sigmoid
    case 3: return tanhf(x);                            // Tanh
    case 4: return sqrtf(x);                            // Sqrt
    case 5: return expf(x);                             // Exp
    case 6: return logf(x);                             // Log
    case 7: return -x;                                  // Neg
    case 8: return fabsf(x);                            // Abs
    case 9: return 1.0f / x;                            // Reciprocal
    case 10: return floorf(x);                          // Floor
    case 11: return ceilf(x);                           // Ceil
    case 12: return rintf(x);                           // Round (half to even)
    case 13: return erff(x);                            // Erf
    case 14: return softplus_f(x);                      // Softplus
    case 15: return x * sigmoid_f(x);                   // Swish
    case 16: return x * tanhf(softplus_f(x));           // Mish
    case 17: return x * fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f); // HardSwish
    case 18: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); // Gelu
    case 19: return fminf(fmaxf(x, p0), p1);            // Clip
    case 20: return x >= 0.0f ? x : p0 * x;             // LeakyRelu
    case 21: return x > 0.0f ? x : p0 * expm1f(x);      // Elu
    case 22: return fminf(fmaxf(p0 * x + p1, 0.0f), 1.0f); // HardSigmoid
    default: return x;
    }
}

// Grid-stride loop over n elements.
#define FOR_EACH(i, n) \
    for (i64_t i = (i64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64_t)blockDim.x * gridDim.x)

// A pointwise convolution (1x1, stride 1, no padding, one group) as a tiled GEMM per image,
// Y[m][q] = sum_k W[m][k] X[k][q] (q the position in the plane): a block of 256 threads owns a
// PW_TILE x PW_TILE tile of outputs (thread t: position q0 + t % 32, channels m0 + t / 32 + 8r,
// r < 4), and walks k in tiles of PW_TILE staged in shared memory, so each weight and input
// value is read from global memory once per block instead of once per output (the per-output
// kernels read X with a stride of a whole plane). The next tile is loaded into registers while
// this one is multiplied. `A` is the accumulator type; `lx(k, q)` and `lw(m, k)` load and
// convert one element; `epi(m, q, acc)` stores one output.
//
// Split K: when the output tiles alone would leave most of the GPU idle (a 1152 -> 192 layer
// over 7x7 is 12 tiles), `pw.splits` blocks share a tile, each summing `pw.kchunk` channels
// into `pw.part` (per split and tile, PW_TILE^2 values); the last of them to finish (counted in
// `pw.counters`, one per tile, reset by that block) adds the parts in split order and runs the
// epilogue. Grid: (ceil(P / 32), ceil(M / 32), images * splits).
#define PW_TILE 32
template <typename A>
struct PwSplit {
    int splits, kchunk;
    A* part;
    unsigned* counters;
};

template <typename A, typename LX, typename LW, typename EPI>
__device__ __forceinline__ void pointwise_gemm(int k_len, int m_len, int p_len, PwSplit<A> pw,
                                               LX lx, LW lw, EPI epi) {
    __shared__ A xs[PW_TILE][PW_TILE + 1];
    __shared__ A ws[PW_TILE][PW_TILE + 1];
    __shared__ int last;
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const int q0 = blockIdx.x * PW_TILE, m0 = blockIdx.y * PW_TILE;
    const int split = blockIdx.z % pw.splits;
    const int k_begin = split * pw.kchunk, k_end = min(k_len, k_begin + pw.kchunk);
    A nx[4], nw[4], acc[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int row = ty + 8 * r;
        nx[r] = (k_begin + row < k_end && q0 + tx < p_len) ? lx(k_begin + row, q0 + tx) : A(0);
        nw[r] = (m0 + row < m_len && k_begin + tx < k_end) ? lw(m0 + row, k_begin + tx) : A(0);
        acc[r] = A(0);
    }
    for (int k0 = k_begin; k0 < k_end; k0 += PW_TILE) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            xs[ty + 8 * r][tx] = nx[r];
            ws[ty + 8 * r][tx] = nw[r];
        }
        __syncthreads();
        const int k1 = k0 + PW_TILE;
        if (k1 < k_end) {
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int row = ty + 8 * r;
                nx[r] = (k1 + row < k_end && q0 + tx < p_len) ? lx(k1 + row, q0 + tx) : A(0);
                nw[r] = (m0 + row < m_len && k1 + tx < k_end) ? lw(m0 + row, k1 + tx) : A(0);
            }
        }
#pragma unroll 8
        for (int k = 0; k < PW_TILE; ++k) {
            const A xv = xs[k][tx];
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[r] += ws[ty + 8 * r][k] * xv;
        }
        __syncthreads();
    }
    if (pw.splits > 1) {
        const int image = blockIdx.z / pw.splits;
        const long long tile = ((long long)image * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
        const long long tiles = (long long)gridDim.x * gridDim.y * (gridDim.z / pw.splits);
        A* mine = pw.part + (split * tiles + tile) * (PW_TILE * PW_TILE);
#pragma unroll
        for (int r = 0; r < 4; ++r) mine[(ty + 8 * r) * PW_TILE + tx] = acc[r];
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) last = atomicAdd(pw.counters + tile, 1u) == pw.splits - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            A sum = A(0);
            for (int s2 = 0; s2 < pw.splits; ++s2)
                sum += __ldcg(pw.part + (s2 * tiles + tile) * (PW_TILE * PW_TILE) +
                              (ty + 8 * r) * PW_TILE + tx);
            acc[r] = sum;
        }
        if (threadIdx.x == 0) pw.counters[tile] = 0;
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int m = m0 + ty + 8 * r, q = q0 + tx;
        if (m < m_len && q < p_len) epi(m, q, acc[r]);
    }
}
