// Fused gate kernels of LSTM and GRU (ONNX semantics, default activations). Per step the host
// side runs one GEMM for the recurrent term; these kernels do everything else for that step.
// `xw` holds the input projection of this step for this direction, [B, G*H] with row stride
// `xw_stride`; `hr` the recurrent projection h_{t-1} R^T, [B, G*H]; `bias` [2*G*H] (Wb then Rb) or
// null. State h and c are [B, H]; `y` (may be null) receives h_t with row stride `y_stride`.
// The LSTM cell state c is f32 for every T (an f16 plan keeps it in scratch), so it never rounds
// to half precision between steps.

// The LSTM cell from the four pre-activations (i, o, f, c, biases added and clipped) of unit j:
// updates c[idx] and returns h. `peep` [3H] (i, o, f) or null.
template <typename T>
__device__ __forceinline__ float lstm_cell(const float* pre, const T* peep, float* c, i64_t idx,
                                           i64_t j, i64_t hidden, int input_forget) {
    float c_prev = c[idx];
    float pi = pre[0], po = pre[1], pf = pre[2];
    if (peep) {
        pi += ld(peep, j) * c_prev;
        pf += ld(peep, 2 * hidden + j) * c_prev;
    }
    float ig = sigmoid_f(pi);
    float fg = input_forget ? 1.0f - ig : sigmoid_f(pf);
    float cn = fg * c_prev + ig * tanhf(pre[3]);
    if (peep) po += ld(peep, hidden + j) * cn;
    c[idx] = cn;
    return sigmoid_f(po) * tanhf(cn);
}

// The pre-activation of gate q for unit j: xw + the recurrent term + both biases, clipped.
template <typename T>
__device__ __forceinline__ float lstm_pre(const T* x, float rec, const T* bias, int q, i64_t j,
                                          i64_t hidden, float clip) {
    float v = ld(x, q * hidden + j) + rec;
    if (bias) v += ld(bias, q * hidden + j) + ld(bias, 4 * hidden + q * hidden + j);
    if (clip > 0.0f) v = fminf(fmaxf(v, -clip), clip);
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
            pre[q] = lstm_pre(x, ld(r, q * hidden + j), bias, q, j, hidden, clip);
        float hn = lstm_cell(pre, peep, c, idx, j, hidden, input_forget);
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
        for (int q = 0; q < 4; ++q) pre[q] = lstm_pre(x, acc[q], bias, q, j, hidden, clip);
        const i64_t idx = b * hidden + j;
        float hn = lstm_cell(pre, peep, c, idx, j, hidden, input_forget);
        st(y, b * y_stride + j, hn);
        if (h_last) st(h_last, idx, hn);
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

#define RECURRENT(T, S)                                                                              \
    extern "C" __global__ void recurrent_lstm_step_##S(                                              \
        const T* xw, i64_t xw_stride, const T* r, const T* h_in, i64_t h_in_stride, const T* bias,   \
        const T* peep, float* c, T* y, i64_t y_stride, T* h_last, i64_t batch, i64_t hidden,         \
        float clip, int input_forget) {                                                              \
        lstm_step(xw, xw_stride, r, h_in, h_in_stride, bias, peep, c, y, y_stride, h_last, batch,    \
                  hidden, clip, input_forget);                                                       \
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
