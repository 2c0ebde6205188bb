// Pooling kernels (Conv runs through cuDNN; its epilogue is elementwise_bias_act).
// Window semantics match the CPU kernels (edgefuse_kernels::pool): windows are clipped to the
// input, a window with no input tap gives lowest() for max and 0 for average.

// Mirrors `PoolParams` in runtime/src/cuda/ops/nn/pool.rs.
struct PoolParams {
    i64_t planes, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, count_include_pad;
};

// Taps k in [lo, hi) with 0 <= start + k*d < len.
__device__ __forceinline__ void valid_taps(i64_t start, i64_t d, i64_t k, i64_t len, i64_t* lo,
                                           i64_t* hi) {
    i64_t l = 0, h = k;
    while (l < h && start + l * d < 0) ++l;
    while (h > l && start + (h - 1) * d >= len) --h;
    *lo = l;
    *hi = h;
}

template <typename T>
__device__ void pool(const T* x, T* y, PoolParams p, int is_max) {
    i64_t n = p.planes * p.oh * p.ow;
    FOR_EACH(i, n) {
        i64_t ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
        const T* xp = x + plane * p.ih * p.iw;
        i64_t ys = oy * p.sh - p.pt, xs = ox * p.sw - p.pl;
        i64_t ylo, yhi, xlo, xhi;
        valid_taps(ys, p.dh, p.kh, p.ih, &ylo, &yhi);
        valid_taps(xs, p.dw, p.kw, p.iw, &xlo, &xhi);
        float acc = is_max ? -3.402823466e38f : 0.0f;
        for (i64_t ki = ylo; ki < yhi; ++ki) {
            const T* row = xp + (ys + ki * p.dh) * p.iw;
            for (i64_t kj = xlo; kj < xhi; ++kj) {
                float v = ld(row, xs + kj * p.dw);
                acc = is_max ? fmaxf(acc, v) : acc + v;
            }
        }
        if (!is_max) {
            i64_t inside = (yhi - ylo) * (xhi - xlo);
            if (inside == 0) {
                acc = 0.0f;
            } else if (p.count_include_pad) {
                i64_t a, b, c, d;
                valid_taps(ys + p.pt, p.dh, p.kh, p.ih + p.pt + p.pb, &a, &b);
                valid_taps(xs + p.pl, p.dw, p.kw, p.iw + p.pl + p.pr, &c, &d);
                acc /= (float)((b - a) * (d - c));
            } else {
                acc /= (float)inside;
            }
        }
        st(y, i, acc);
    }
}

// One warp per plane: y[plane] = mean or max of x[plane, 0..len].
template <typename T>
__device__ void global_pool(const T* x, T* y, i64_t planes, i64_t len, int is_max) {
    i64_t warp = ((i64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (warp >= planes) return;
    const T* xp = x + warp * len;
    float acc = is_max ? -3.402823466e38f : 0.0f;
    for (i64_t j = lane; j < len; j += 32) {
        float v = ld(xp, j);
        acc = is_max ? fmaxf(acc, v) : acc + v;
    }
    for (int o = 16; o > 0; o /= 2) {
        float other = __shfl_xor_sync(0xffffffffu, acc, o);
        acc = is_max ? fmaxf(acc, other) : acc + other;
    }
    if (lane == 0) st(y, warp, is_max ? acc : acc / (float)len);
}

#define NN(T, S)                                                                                     \
    extern "C" __global__ void nn_pool_max_##S(const T* x, T* y, PoolParams p) { pool(x, y, p, 1); } \
    extern "C" __global__ void nn_pool_avg_##S(const T* x, T* y, PoolParams p) { pool(x, y, p, 0); } \
    extern "C" __global__ void nn_global_pool_max_##S(const T* x, T* y, i64_t planes, i64_t len) {   \
        global_pool(x, y, planes, len, 1);                                                           \
    }                                                                                                \
    extern "C" __global__ void nn_global_pool_avg_##S(const T* x, T* y, i64_t planes, i64_t len) {   \
        global_pool(x, y, planes, len, 0);                                                           \
    }

NN(float, f32)
NN(f16_t, f16)
