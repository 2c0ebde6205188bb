// LSTM and GRU (ONNX semantics, default activations): `lstm_seq` runs a whole LSTM sequence in
// one launch, `lstm_step` one step with its recurrent product, and the gate kernels the rest of
// a step whose recurrent term the host computed with one GEMM.
// `xw` holds the input projection of this step for this direction, [B, G*H] with row stride
// `xw_stride`; `hr` the recurrent projection h_{t-1} R^T, [B, G*H]; `bias` [2*G*H] (Wb then Rb) or
// null. State h and c are [B, H]; `y` (may be null) receives h_t with row stride `y_stride`.
// The LSTM cell state c is f32 for every T (an f16 plan keeps it in scratch), so it never rounds
// to half precision between steps.

// A pre-activation clipped to [-clip, clip]; clip <= 0 means none.
__device__ __forceinline__ float clip_to(float v, float clip) {
    return clip > 0.0f ? fminf(fmaxf(v, -clip), clip) : v;
}

// The LSTM cell from the four pre-activations (i, o, f, c, biases added) of unit j: adds the
// peephole terms, clips each gate's input (after the peephole, as the CPU kernel and
// onnxruntime do), updates c[idx] and returns h. `peep` [3H] (i, o, f) or null.
template <typename T>
__device__ __forceinline__ float lstm_cell(const float* pre, const T* peep, float* c, i64_t idx,
                                           i64_t j, i64_t hidden, float clip, int input_forget) {
    float c_prev = c[idx];
    float pi = pre[0], po = pre[1], pf = pre[2];
    if (peep) {
        pi += ld(peep, j) * c_prev;
        pf += ld(peep, 2 * hidden + j) * c_prev;
    }
    float ig = sigmoid_f(clip_to(pi, clip));
    float fg = input_forget ? 1.0f - ig : sigmoid_f(clip_to(pf, clip));
    float cn = fg * c_prev + ig * tanhf(clip_to(pre[3], clip));
    if (peep) po += ld(peep, hidden + j) * cn;
    c[idx] = cn;
    return sigmoid_f(clip_to(po, clip)) * tanhf(cn);
}

// The pre-activation of gate q for unit j: its projection xv + the recurrent term + both biases.
template <typename T>
__device__ __forceinline__ float lstm_pre(float xv, float rec, const T* bias, int q, i64_t j,
                                          i64_t hidden) {
    float v = xv + rec;
    if (bias) v += ld(bias, q * hidden + j) + ld(bias, 4 * hidden + q * hidden + j);
    return v;
}

// LSTM, gate order i, o, f, c. `peep` [3H] (i, o, f) or null; clip <= 0 means none.
template <typename T>
__device__ void lstm_gates(const T* xw, i64_t xw_stride, const T* hr, const T* bias, const T* peep,
                           T* h, float* c, T* y, i64_t y_stride, i64_t batch, i64_t hidden, float clip,
                           int input_forget) {
    FOR_EACH(idx, batch * hidden) {
        i64_t b = idx / hidden, j = idx % hidden;
        const T* x = xw + b * xw_stride;
        const T* r = hr + b * 4 * hidden;
        float pre[4];
        for (int q = 0; q < 4; ++q)
            pre[q] = lstm_pre(ld(x, q * hidden + j), ld(r, q * hidden + j), bias, q, j, hidden);
        float hn = lstm_cell(pre, peep, c, idx, j, hidden, clip, input_forget);
        st(h, idx, hn);
        if (y) st(y, b * y_stride + j, hn);
    }
}

// One LSTM step with its recurrent product fused in, for small batches: a warp per (b, j)
// forms the four dot products h_prev[b] · R[q·H + j] (q = i, o, f, c; R is this direction's
// [4H, H]) with its lanes splitting H, then lane 0 runs the cell as `lstm_gates`. h_prev is
// read from `h_in` (row stride `h_in_stride`: Y_h holding h0 at the first step, else Y's rows
// of the previous step), h_t is written to Y's rows only, and also to `h_last` (Y_h) at the
// last step, so no warp overwrites an h another warp is still reading (a one-step sequence
// reads h0 from a copy: the host passes it in scratch).
template <typename T>
__device__ void lstm_step(const T* xw, i64_t xw_stride, const T* r, const T* h_in,
                          i64_t h_in_stride, const T* bias, const T* peep, float* c, T* y,
                          i64_t y_stride, T* h_last, i64_t batch, i64_t hidden, float clip,
                          int input_forget) {
    const int lane = threadIdx.x & 31;
    const i64_t warps = batch * hidden, stride = ((i64_t)blockDim.x * gridDim.x) >> 5;
    for (i64_t wi = ((i64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; wi < warps; wi += stride) {
        const i64_t b = wi / hidden, j = wi % hidden;
        const T* hb = h_in + b * h_in_stride;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (i64_t k = lane; k < hidden; k += 32) {
            const float hv = ld(hb, k);
            for (int q = 0; q < 4; ++q) acc[q] += hv * ld(r, (q * hidden + j) * hidden + k);
        }
        for (int q = 0; q < 4; ++q) acc[q] = lane_sum(acc[q], 32);
        if (lane != 0) continue;
        const T* x = xw + b * xw_stride;
        float pre[4];
        for (int q = 0; q < 4; ++q)
            pre[q] = lstm_pre(ld(x, q * hidden + j), acc[q], bias, q, j, hidden);
        const i64_t idx = b * hidden + j;
        float hn = lstm_cell(pre, peep, c, idx, j, hidden, clip, input_forget);
        st(y, b * y_stride + j, hn);
        if (h_last) st(h_last, idx, hn);
    }
}

// The whole LSTM sequence in one launch, for batches of at most 4: a warp per hidden unit j
// (blockIdx.y the direction) keeps its four rows of R in registers (lane l holds columns
// l, l + 32, ...; KC = ceil(H / 32) at most) and the cell state c in lane 0, for every step.
// Blocks exchange h through `slots` ([D][2][B][H] 64-bit words, double-buffered by step
// parity): each word packs h_t with a tag naming its launch and step, so a reader waits on the
// very word it needs, with no grid barrier and no fence. Each block copies h_{t-1} into shared
// memory once per step (a thread per word, re-reading until the tag is the step's), so only
// B·H words per block poll L2 rather than B·H per warp: the polls of every warp on the same few
// lines had made the wait the slowest part of a step. Double buffering is safe: a warp writes
// step s only after its block read all of step s-1, which every warp wrote only after its own
// block had read all of step s-2. The tag is `epoch·T + s + 1`; `sync[0]` is the launch epoch,
// advanced by the last block to finish (`sync[1]` counts them), so the next launch never
// mistakes old words for new ones. Needs every block resident at once: the host launches it
// only when occupancy allows.
__device__ __forceinline__ unsigned long long pack_h(float h, unsigned tag) {
    return ((unsigned long long)tag << 32) | __float_as_uint(h);
}

#define SEQ_BATCH 4
#define SEQ_HIDDEN 512
// About ten seconds of polling: a step normally waits a few microseconds.
#define SEQ_MAX_POLLS (1u << 24)

template <typename T, int KC>
__device__ void lstm_seq(const T* xw, i64_t xw_t, i64_t xw_b, i64_t xw_d, const T* r,
                         const T* h0, const T* c0, const T* bias, const T* peep, T* y, i64_t y_t,
                         i64_t y_b, i64_t y_d, T* yh, T* yc, unsigned long long* slots,
                         unsigned* sync, i64_t seq, i64_t batch, i64_t hidden, int reverse,
                         float clip, int input_forget) {
    __shared__ float hs[SEQ_BATCH * SEQ_HIDDEN];
    const int lane = threadIdx.x & 31;
    const i64_t d = blockIdx.y, j = (i64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const i64_t bh = batch * hidden;
    const bool unit = j < hidden;
    const unsigned epoch = *(const volatile unsigned*)sync;
    xw += d * xw_d;
    r += d * 4 * hidden * hidden;
    if (bias) bias += d * 8 * hidden;
    if (peep) peep += d * 3 * hidden;
    y += d * y_d;
    slots += d * 2 * bh;
    float w[4][KC];
#pragma unroll
    for (int q = 0; q < 4; ++q)
#pragma unroll
        for (int i = 0; i < KC; ++i) {
            const i64_t k = lane + 32 * i;
            w[q][i] = (unit && k < hidden) ? ld(r, (q * hidden + j) * hidden + k) : 0.0f;
        }
    float c[SEQ_BATCH];
#pragma unroll
    for (int b = 0; b < SEQ_BATCH; ++b)
        c[b] = (unit && b < batch && c0) ? ld(c0, d * bh + b * hidden + j) : 0.0f;
    for (i64_t s = 0; s < seq; ++s) {
        const i64_t t = (reverse || d == 1) ? seq - 1 - s : s;
        const unsigned tag = epoch * (unsigned)seq + (unsigned)s + 1u;
        // This step's projections, loaded before waiting on h.
        float xv[SEQ_BATCH][4];
#pragma unroll
        for (int b = 0; b < SEQ_BATCH; ++b)
#pragma unroll
            for (int q = 0; q < 4; ++q)
                xv[b][q] = (unit && lane == 0 && b < batch)
                               ? ld(xw, t * xw_t + b * xw_b + q * hidden + j)
                               : 0.0f;
        // h_{t-1} of every batch row into shared memory: h0 (or zeros) at the first step,
        // else the previous step's words once their tags are this launch's step s-1.
        const unsigned long long* prev = slots + ((s - 1) & 1) * bh;
        for (i64_t e = threadIdx.x; e < bh; e += blockDim.x) {
            float v;
            if (s == 0) {
                v = h0 ? ld(h0, d * bh + e) : 0.0f;
            } else {
                unsigned long long word;
                unsigned polls = 0;
                do {
                    word = *(const volatile unsigned long long*)(prev + e);
                    // A word that never comes means blocks of this launch are not running
                    // (the GPU shared past what the build's occupancy check saw): fail the
                    // launch, which the host reports, rather than spin forever.
                    if (++polls == SEQ_MAX_POLLS) __trap();
                } while ((unsigned)(word >> 32) != tag - 1u);
                v = __uint_as_float((unsigned)word);
            }
            hs[e] = v;
        }
        __syncthreads();
        if (unit) {
            float acc[SEQ_BATCH][4];
#pragma unroll
            for (int b = 0; b < SEQ_BATCH; ++b) {
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[b][q] = 0.0f;
                if (b >= batch) continue;
#pragma unroll
                for (int i = 0; i < KC; ++i) {
                    const i64_t k = lane + 32 * i;
                    const float hv = k < hidden ? hs[b * hidden + k] : 0.0f;
#pragma unroll
                    for (int q = 0; q < 4; ++q) acc[b][q] += w[q][i] * hv;
                }
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[b][q] = lane_sum(acc[b][q], 32);
            }
            if (lane == 0) {
                unsigned long long* next = slots + (s & 1) * bh;
#pragma unroll
                for (int b = 0; b < SEQ_BATCH; ++b) {
                    if (b >= batch) break;
                    float pre[4];
#pragma unroll
                    for (int q = 0; q < 4; ++q)
                        pre[q] = lstm_pre(xv[b][q], acc[b][q], bias, q, j, hidden);
                    const float hn = lstm_cell(pre, peep, c, b, j, hidden, clip, input_forget);
                    *(volatile unsigned long long*)(next + b * hidden + j) = pack_h(hn, tag);
                    st(y, t * y_t + b * y_b + j, hn);
                    if (s + 1 == seq) {
                        st(yh, d * bh + b * hidden + j, hn);
                        st(yc, d * bh + b * hidden + j, c[b]);
                    }
                }
            }
        }
        // No warp refills hs for the next step while another still reads this one.
        __syncthreads();
    }
    // The last block out advances the epoch for the next launch.
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(sync + 1, 1u) == gridDim.x * gridDim.y - 1) {
            sync[1] = 0;
            __threadfence();
            atomicAdd(sync, 1u);
        }
    }
}

// GRU with linear_before_reset = 1, gate order z, r, h:
// h~ = tanh(xw_h + Wbh + r * (hr_h + Rbh)); h = (1 - z) * h~ + z * h_prev.
template <typename T>
__device__ void gru_gates(const T* xw, i64_t xw_stride, const T* hr, const T* bias, T* h, T* y,
                          i64_t y_stride, i64_t batch, i64_t hidden, float clip) {
    FOR_EACH(idx, batch * hidden) {
        i64_t b = idx / hidden, j = idx % hidden, g = 3 * hidden;
        const T* x = xw + b * xw_stride;
        const T* r = hr + b * g;
        float wb[3] = {0.0f, 0.0f, 0.0f}, rb[3] = {0.0f, 0.0f, 0.0f};
        if (bias) {
            for (int q = 0; q < 3; ++q) {
                wb[q] = ld(bias, q * hidden + j);
                rb[q] = ld(bias, g + q * hidden + j);
            }
        }
        float pz = ld(x, j) + wb[0] + ld(r, j) + rb[0];
        float pr = ld(x, hidden + j) + wb[1] + ld(r, hidden + j) + rb[1];
        if (clip > 0.0f) {
            pz = fminf(fmaxf(pz, -clip), clip);
            pr = fminf(fmaxf(pr, -clip), clip);
        }
        float z = sigmoid_f(pz), rg = sigmoid_f(pr);
        float ph = ld(x, 2 * hidden + j) + wb[2] + rg * (ld(r, 2 * hidden + j) + rb[2]);
        if (clip > 0.0f) ph = fminf(fmaxf(ph, -clip), clip);
        float hn = (1.0f - z) * tanhf(ph) + z * ld(h, idx);
        st(h, idx, hn);
        if (y) st(y, b * y_stride + j, hn);
    }
}

#define LSTM_SEQ_PARAMS(T)                                                                         \
    const T *xw, i64_t xw_t, i64_t xw_b, i64_t xw_d, const T *r, const T *h0, const T *c0,         \
        const T *bias, const T *peep, T *y, i64_t y_t, i64_t y_b, i64_t y_d, T *yh, T *yc,          \
        unsigned long long *slots, unsigned *sync, i64_t seq, i64_t batch, i64_t hidden,            \
        int reverse, float clip, int input_forget
#define LSTM_SEQ_ARGS                                                                              \
    xw, xw_t, xw_b, xw_d, r, h0, c0, bias, peep, y, y_t, y_b, y_d, yh, yc, slots, sync, seq, batch, \
        hidden, reverse, clip, input_forget

#define RECURRENT(T, S)                                                                              \
    extern "C" __global__ void recurrent_lstm_step_##S(                                              \
        const T* xw, i64_t xw_stride, const T* r, const T* h_in, i64_t h_in_stride, const T* bias,   \
        const T* peep, float* c, T* y, i64_t y_stride, T* h_last, i64_t batch, i64_t hidden,         \
        float clip, int input_forget) {                                                              \
        lstm_step(xw, xw_stride, r, h_in, h_in_stride, bias, peep, c, y, y_stride, h_last, batch,    \
                  hidden, clip, input_forget);                                                       \
    }                                                                                                \
    extern "C" __global__ void recurrent_lstm_seq4_##S(LSTM_SEQ_PARAMS(T)) {                        \
        lstm_seq<T, 4>(LSTM_SEQ_ARGS);                                                               \
    }                                                                                                \
    extern "C" __global__ void recurrent_lstm_seq16_##S(LSTM_SEQ_PARAMS(T)) {                       \
        lstm_seq<T, 16>(LSTM_SEQ_ARGS);                                                              \
    }                                                                                                \
    extern "C" __global__ void recurrent_lstm_gates_##S(                                             \
        const T* xw, i64_t xw_stride, const T* hr, const T* bias, const T* peep, T* h, float* c,     \
        T* y, i64_t y_stride, i64_t batch, i64_t hidden, float clip, int input_forget) {             \
        lstm_gates(xw, xw_stride, hr, bias, peep, h, c, y, y_stride, batch, hidden, clip,            \
                   input_forget);                                                                    \
    }                                                                                                \
    extern "C" __global__ void recurrent_gru_gates_##S(const T* xw, i64_t xw_stride, const T* hr,    \
                                                       const T* bias, T* h, T* y, i64_t y_stride,    \
                                                       i64_t batch, i64_t hidden, float clip) {      \
        gru_gates(xw, xw_stride, hr, bias, h, y, y_stride, batch, hidden, clip);                     \
    }

RECURRENT(float, f32)
RECURRENT(f16_t, f16)
