// Pooling kernels, and the direct convolution for the convolutions cuDNN is slow to set up and
// launch for (depthwise and small layers); the others run through cuDNN, with
// elementwise_bias_act as their epilogue.
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

// A moved epilogue applied to a loaded value (`conv_direct`'s in_on): 0 none, 1 any activation,
// 2 a Clip written out (`act_apply`'s expression for it, without its switch in a kernel's
// innermost loop).
__device__ __forceinline__ float in_act_apply(int on, int act, float x, float bias, float p0,
                                              float p1) {
    if (on == 2) return fminf(fmaxf(x + bias, p0), p1);
    return on ? act_apply(act, x + bias, p0, p1) : x;
}

// One warp per plane: y[plane] = mean or max of x[plane, 0..len]. With `in` on, of
// act(x + in_bias[channel]) as `conv_direct`'s in_on (the writer's epilogue, moved here;
// `in_act_apply`).
// Mirrors `InAct` in runtime/src/cuda/ops/nn/global_pool.rs.
struct InAct {
    i64_t channels;
    int on, act;
    float p0, p1;
};

template <typename T>
__device__ void global_pool(const T* x, T* y, i64_t planes, i64_t len, int is_max, InAct in,
                            const T* in_bias) {
    i64_t warp = ((i64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (warp >= planes) return;
    const T* xp = x + warp * len;
    const float ib = in_bias ? ld(in_bias, warp % in.channels) : 0.0f;
    float acc = is_max ? -3.402823466e38f : 0.0f;
    for (i64_t j = lane; j < len; j += 32) {
        const float v = in_act_apply(in.on, in.act, ld(xp, j), ib, in.p0, in.p1);
        acc = is_max ? fmaxf(acc, v) : acc + v;
    }
    for (int o = 16; o > 0; o /= 2) {
        float other = __shfl_xor_sync(0xffffffffu, acc, o);
        acc = is_max ? fmaxf(acc, other) : acc + other;
    }
    if (lane == 0) st(y, warp, is_max ? acc : acc / (float)len);
}

// Direct convolution (1-D as height 1): `lanes` threads per output (a power of two up to 32,
// at most the channels per group, chosen at load from the reduction length), lane l summing
// channels l, l + lanes, … over every tap in f32 (nested loops, no divisions), then added
// across the lanes by shuffles; then bias, residual and the activation (`act_apply`). Taps
// outside the input (either side's padding) add nothing, so asymmetric padding needs no
// pre-padded copy. 32-bit indices (the build checks the sizes).
//
// A max pool folded in (the device graph's Conv → MaxPool, runtime/src/cuda/fuse.rs): windows
// of pool_h × pool_w convolution outputs, stride the window, no padding, y [n, m, out_h,
// out_w]. Each window position has its own `lanes` threads (window × lanes ≤ 32, one aligned
// group), and the group's maximum after the activation is the pooled output: the pool costs
// no launch and the convolution's output never reaches memory. Without one, the window is
// 1 × 1 and out_h × out_w is oh × ow.
//
// in_on: the writer of x left out its epilogue (runtime/src/cuda/fuse.rs), so each loaded
// value becomes act(x + in_bias[channel]) (in_act, in_p0, in_p1; in_bias null: no bias); 2:
// the activation is a Clip to [in_p0, in_p1], written out (`in_act_apply`).
// Taps outside the input still add nothing, as zero padding of the activated tensor does.
// Mirrors `DirectParams` in runtime/src/cuda/ops/nn/conv_direct.rs.
struct DirectParams {
    int n, c, h, w, m, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, group, lanes, act;
    float p0, p1;
    int pool_h, pool_w, out_h, out_w;
    int in_on, in_act;
    float in_p0, in_p1;
};

template <typename T>
__device__ void conv_direct(const T* x, const T* w, const T* bias, const T* res, T* y,
                            DirectParams p, const T* in_bias) {
    const int cg = p.c / p.group, mg = p.m / p.group, kk = p.kh * p.kw;
    const int plane = p.h * p.w, lanes = p.lanes;
    const int span = p.pool_h * p.pool_w * lanes;
    const int total = p.n * p.m * p.out_h * p.out_w * span;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += blockDim.x * gridDim.x) {
        const int i = t / span, r = t - i * span, win = r / lanes, lane = r - win * lanes;
        const int px = i % p.out_w, r0 = i / p.out_w, py = r0 % p.out_h, r1 = r0 / p.out_h;
        const int m = r1 % p.m, b = r1 / p.m, g = m / mg;
        const int oy = py * p.pool_h + win / p.pool_w, ox = px * p.pool_w + win % p.pool_w;
        const int ys = oy * p.sh - p.pt, xs = ox * p.sw - p.pl;
        const T* xg = x + (b * p.c + g * cg) * plane;
        const T* wm = w + m * cg * kk;
        float acc = 0.0f;
        for (int ci = lane; ci < cg; ci += lanes) {
            const T* xp = xg + ci * plane;
            const T* wp = wm + ci * kk;
            const float ib = in_bias ? ld(in_bias, g * cg + ci) : 0.0f;
            for (int ky = 0; ky < p.kh; ++ky) {
                const int iy = ys + ky * p.dh;
                if (iy < 0 || iy >= p.h) continue;
                for (int kx = 0; kx < p.kw; ++kx) {
                    const int ix = xs + kx * p.dw;
                    if (ix < 0 || ix >= p.w) continue;
                    const float xv =
                        in_act_apply(p.in_on, p.in_act, ld(xp, iy * p.w + ix), ib, p.in_p0, p.in_p1);
                    acc += xv * ld(wp, ky * p.kw + kx);
                }
            }
        }
        acc = lane_sum(acc, lanes);
        if (bias) acc += ld(bias, m);
        if (res) acc += ld(res, i);
        acc = act_apply(p.act, acc, p.p0, p.p1);
        if (span != lanes) acc = lane_max(acc, span);
        if (r == 0) st(y, i, acc);
    }
}

// Pointwise convolution (1x1, stride 1, no padding, one group) through `pointwise_gemm`, in
// f32 whatever T, then bias, residual and the activation as `conv_direct`.
// Mirrors `PointwiseParams` in runtime/src/cuda/ops/nn/conv_pointwise.rs.
struct PointwiseParams {
    int c, m, plane, act;
    float p0, p1;
};

template <typename T>
__device__ void conv_pointwise(const T* x, const T* w, const T* bias, const T* res, T* y,
                               PointwiseParams p, PwSplit<float> pw) {
    const i64_t b = blockIdx.z / pw.splits;
    const T* xb = x + b * p.c * p.plane;
    pointwise_gemm<float>(
        p.c, p.m, p.plane, pw, [&](int k, int q) { return ld(xb, (i64_t)k * p.plane + q); },
        [&](int m, int k) { return ld(w, (i64_t)m * p.c + k); },
        [&](int m, int q, float acc) {
            const i64_t i = (b * p.m + m) * p.plane + q;
            if (bias) acc += ld(bias, m);
            if (res) acc += ld(res, i);
            st(y, i, act_apply(p.act, acc, p.p0, p.p1));
        });
}

#define NN(T, S)                                                                                     \
    extern "C" __global__ void nn_pool_max_##S(const T* x, T* y, PoolParams p) { pool(x, y, p, 1); } \
    extern "C" __global__ void nn_conv_direct_##S(const T* x, const T* w, const T* bias,             \
                                                  const T* res, T* y, DirectParams p,                \
                                                  const T* in_bias) {                                \
        conv_direct(x, w, bias, res, y, p, in_bias);                                                 \
    }                                                                                                \
    extern "C" __global__ void nn_conv_pointwise_##S(const T* x, const T* w, const T* bias,          \
                                                     const T* res, T* y, PointwiseParams p,         \
                                                     PwSplit<float> pw) {                            \
        conv_pointwise(x, w, bias, res, y, p, pw);                                                   \
    }                                                                                                \
    extern "C" __global__ void nn_pool_avg_##S(const T* x, T* y, PoolParams p) { pool(x, y, p, 0); } \
    extern "C" __global__ void nn_global_pool_max_##S(const T* x, T* y, i64_t planes, i64_t len,     \
                                                      InAct in, const T* in_bias) {                  \
        global_pool(x, y, planes, len, 1, in, in_bias);                                              \
    }                                                                                                \
    extern "C" __global__ void nn_global_pool_avg_##S(const T* x, T* y, i64_t planes, i64_t len,     \
                                                      InAct in, const T* in_bias) {                  \
        global_pool(x, y, planes, len, 0, in, in_bias);                                              \
    }

NN(float, f32)
NN(f16_t, f16)
