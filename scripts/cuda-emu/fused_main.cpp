// Runs the kernels `runtime/src/cuda/fuse.rs` folds readers into, fused and unfused, with the
// grids the runtime launches them with (cuda/ops/nn/conv_direct.rs, pool.rs,
// linalg/small.rs, reduce/softmax.rs), on files written by check.py:
//   fused_main convpool DIR    conv + max pool: y.f32 (fused), y_same.f32 (conv with the
//                              fused lanes, then the pool kernel), y_unfused.f32 (the
//                              runtime's unfused lanes)
//   fused_main gemmsoftmax DIR few-row GEMM + softmax: y.f32 (fused, run twice: the second run
//                              after the counter's reset), y_same.f32 (GEMM, then the softmax
//                              kernel); counter.u32 after the runs
//   fused_main gemmtail DIR    two few-row GEMMs (+ softmax), the second in the first's last
//                              block: y.f32 (fused, run twice), y_same.f32 (three kernels);
//                              counter.u32
//   fused_main prologue DIR    a convolution without its epilogue (the direct kernel standing
//                              in for cuDNN), then a depthwise convolution and a global average
//                              pool each applying that epilogue as they load: y.f32, g.f32
//   fused_main padnarrow DIR   the pre-padding that narrows an f32 input to f16 (a cast
//                              absorbed): y.u16
//   fused_main pad DIR         the Pad kernel on f32 bits (constant, reflect, edge): y.f32
#include "kernels.h"
#include "files.h"

// A pad's shapes from p.i64: rank, od[rank], xd[rank], begin[rank], then what the mode needs.
struct PadShape {
    std::vector<i64_t> ip;
    int rank;
    Dims od{}, xd{}, begin{};
    i64_t n = 1;
    PadShape() : ip(load<i64_t>("p.i64")), rank((int)ip[0]) {
        for (int k = 0; k < rank; ++k) {
            od.d[k] = ip[1 + k], xd.d[k] = ip[1 + rank + k], begin.d[k] = ip[1 + 2 * rank + k];
            n *= od.d[k];
        }
    }
    i64_t after(int j) const { return ip[1 + 3 * rank + j]; }
};

static int padnarrow() {
    PadShape p;
    auto x = load<float>("x.f32");
    std::vector<f16_t> y(p.n, 0x7e00);  // NaN: every element must be written
    launch(blocks_of(p.n), 1, 1, 256,
           [&] { shape_pad_zero_narrow(x.data(), y.data(), p.n, p.rank, p.od, p.xd, p.begin); });
    save("y.u16", y);
    return 0;
}

static int pad() {
    PadShape p;  // then mode, value bits
    auto x = load<unsigned int>("x.f32");
    const int mode = (int)p.after(0);
    const unsigned int value = (unsigned int)p.after(1);
    std::vector<unsigned int> y(p.n, 0x7fc00000u);  // NaN: every element must be written
    launch(blocks_of(p.n), 1, 1, 256, [&] {
        shape_pad_f32(x.data(), y.data(), p.n, p.rank, p.od, p.xd, p.begin, mode, value);
    });
    save("y.f32", y);
    return 0;
}

static int convpool() {
    // n c h w m oh ow kh kw sh sw dh dw pt pl group lanes_fused lanes_unfused act pool_h pool_w
    auto ip = load<int>("p.i32");
    auto x = load<float>("x.f32");
    auto w = load<float>("w.f32");
    auto b = load<float>("b.f32");
    DirectParams p{};
    int* q = &p.n;
    for (int k = 0; k < 16; ++k) q[k] = ip[k];
    p.act = ip[18];
    p.p0 = p.p1 = 0.0f;
    const int lanes_fused = ip[16], lanes_unfused = ip[17], ph = ip[19], pw = ip[20];
    const int out_h = p.oh / ph, out_w = p.ow / pw;
    const i64_t outs = (i64_t)p.n * p.m * out_h * out_w, mids = (i64_t)p.n * p.m * p.oh * p.ow;
    // Fused.
    DirectParams f = p;
    f.lanes = lanes_fused;
    f.pool_h = ph, f.pool_w = pw, f.out_h = out_h, f.out_w = out_w;
    std::vector<float> y(outs, NAN);
    launch(blocks_of(outs * ph * pw * f.lanes), 1, 1, 256,
           [&] { nn_conv_direct_f32(x.data(), w.data(), b.data(), nullptr, y.data(), f, nullptr); });
    save("y.f32", y);
    // Unfused: the convolution (window 1 x 1), then the pool kernel.
    PoolParams pp{p.n * p.m, p.oh, p.ow, out_h, out_w, ph, pw, ph, pw, 1, 1, 0, 0, 0, 0, 0};
    for (int run = 0; run < 2; ++run) {
        DirectParams u = p;
        u.lanes = run == 0 ? lanes_fused : lanes_unfused;
        u.pool_h = u.pool_w = 1, u.out_h = p.oh, u.out_w = p.ow;
        std::vector<float> mid(mids, NAN), yu(outs, NAN);
        launch(blocks_of(mids * u.lanes), 1, 1, 256,
               [&] { nn_conv_direct_f32(x.data(), w.data(), b.data(), nullptr, mid.data(), u, nullptr); });
        launch(blocks_of(outs), 1, 1, 256, [&] { nn_pool_max_f32(mid.data(), yu.data(), pp); });
        save(run == 0 ? "y_same.f32" : "y_unfused.f32", yu);
    }
    return 0;
}

static int gemmsoftmax() {
    auto ip = load<int>("p.i32");  // m n k log
    auto a = load<float>("a.f32");
    auto bt = load<float>("b.f32");  // [N, K]
    auto bias = load<float>("bias.f32");
    SmallGemmParams p{};
    p.m = ip[0], p.n = ip[1], p.k = ip[2], p.lda = ip[2], p.inner = 1, p.channels = ip[1];
    p.act = 0, p.alpha = 1.0f, p.p0 = p.p1 = 0.0f;
    const i64_t outs = (i64_t)p.m * p.n;
    unsigned counter = 0;
    std::vector<float> y(outs, NAN);
    SmallGemmParams f = p;
    f.softmax = ip[3] ? 2 : 1;
    for (int run = 0; run < 2; ++run) {
        std::fill(y.begin(), y.end(), NAN);
        launch(blocks_of(outs * 32), 1, 1, 256, [&] {
            linalg_gemm_small_f32(a.data(), bt.data(), bias.data(), y.data(), f, &counter, SmallTail{});
        });
    }
    save("y.f32", y);
    save("counter.u32", std::vector<unsigned>{counter});
    std::vector<float> mid(outs, NAN), yu(outs, NAN);
    launch(blocks_of(outs * 32), 1, 1, 256, [&] {
        linalg_gemm_small_f32(a.data(), bt.data(), bias.data(), mid.data(), p, nullptr, SmallTail{});
    });
    // reduce/softmax.rs: one block per row (at most 65535), 256 threads.
    launch((unsigned)std::clamp<i64_t>(p.m, 1, 65535), 1, 1, 256,
           [&] { reduce_softmax_rows_f32(mid.data(), yu.data(), p.m, p.n, ip[3]); });
    save("y_same.f32", yu);
    return 0;
}

static int gemmtail() {
    auto ip = load<int>("p.i32");  // m n k n2 softmax(0, 1 or 2) act1 act2 (activation codes)
    auto a = load<float>("a.f32");
    auto b1 = load<float>("b1.f32");  // [N, K]
    auto c1 = load<float>("c1.f32");  // [N]
    auto b2 = load<float>("b2.f32");  // [N2, N]
    auto c2 = load<float>("c2.f32");  // [N2]
    SmallGemmParams p{};
    p.m = ip[0], p.n = ip[1], p.k = ip[2], p.lda = ip[2], p.inner = 1, p.channels = ip[1];
    p.act = ip[5], p.alpha = 1.0f;
    const int n2 = ip[3];
    SmallGemmParams q{};
    q.m = p.m, q.n = n2, q.k = p.n, q.lda = p.n, q.inner = 1, q.channels = n2, q.act = ip[6];
    q.alpha = 0.75f;
    const i64_t mids = (i64_t)p.m * p.n, outs = (i64_t)p.m * n2;
    // Fused: Y in scratch, Y2 (then its softmax) in y.
    unsigned counter = 0;
    std::vector<float> scratch(mids, NAN), y(outs, NAN);
    SmallGemmParams f = p;
    f.softmax = ip[4];
    for (int run = 0; run < 2; ++run) {
        std::fill(y.begin(), y.end(), NAN);
        SmallTail t{b2.data(), c2.data(), y.data(), n2, 1, n2, q.act, q.alpha, 0.0f, 0.0f};
        launch(blocks_of(mids * 32), 1, 1, 256, [&] {
            linalg_gemm_small_f32(a.data(), b1.data(), c1.data(), scratch.data(), f, &counter, t);
        });
    }
    save("y.f32", y);
    save("counter.u32", std::vector<unsigned>{counter});
    // Unfused: three launches as the runtime makes them.
    std::vector<float> y1(mids, NAN), y2(outs, NAN), y3(outs, NAN);
    launch(blocks_of(mids * 32), 1, 1, 256, [&] {
        linalg_gemm_small_f32(a.data(), b1.data(), c1.data(), y1.data(), p, nullptr, SmallTail{});
    });
    launch(blocks_of(outs * 32), 1, 1, 256, [&] {
        linalg_gemm_small_f32(y1.data(), b2.data(), c2.data(), y2.data(), q, nullptr, SmallTail{});
    });
    if (ip[4]) {
        launch((unsigned)std::clamp<i64_t>(p.m, 1, 65535), 1, 1, 256,
               [&] { reduce_softmax_rows_f32(y2.data(), y3.data(), p.m, n2, ip[4] == 2); });
        save("y_same.f32", y3);
    } else {
        save("y_same.f32", y2);
    }
    return 0;
}

static int prologue() {
    // producer: n c h w m (1x1, no padding); consumer: k stride pt pl pb pr (depthwise);
    // clip lo hi
    auto ip = load<int>("p.i32");
    auto clip = load<float>("clip.f32");
    auto x = load<float>("x.f32");
    auto w1 = load<float>("w1.f32");
    auto b1 = load<float>("b1.f32");
    auto w2 = load<float>("w2.f32");
    auto b2 = load<float>("b2.f32");
    const int n = ip[0], c = ip[1], h = ip[2], w = ip[3], m = ip[4];
    const int k = ip[5], st = ip[6], pt = ip[7], pl = ip[8], pb = ip[9], pr = ip[10];
    const int lanes1 = ip[11], mode = ip[12];  // in_on: 2 the Clip written out, 1 act_apply
    // The producer as cuDNN runs it with its epilogue moved: no bias, no activation.
    DirectParams a{};
    a.n = n, a.c = c, a.h = h, a.w = w, a.m = m, a.oh = h, a.ow = w, a.kh = a.kw = 1;
    a.sh = a.sw = a.dh = a.dw = 1, a.group = 1, a.lanes = lanes1, a.act = 0;
    a.pool_h = a.pool_w = 1, a.out_h = h, a.out_w = w;
    const i64_t mids = (i64_t)n * m * h * w;
    std::vector<float> mid(mids, NAN);
    launch(blocks_of(mids * lanes1), 1, 1, 256,
           [&] { nn_conv_direct_f32(x.data(), w1.data(), nullptr, nullptr, mid.data(), a, nullptr); });
    // The depthwise consumer: act(x + b1) on load; its own bias and clip after.
    DirectParams d{};
    d.n = n, d.c = m, d.h = h, d.w = w, d.m = m;
    d.oh = (h + pt + pb - k) / st + 1, d.ow = (w + pl + pr - k) / st + 1;
    d.kh = d.kw = k, d.sh = d.sw = st, d.dh = d.dw = 1, d.pt = pt, d.pl = pl, d.group = m;
    d.lanes = 1, d.act = 19, d.p0 = clip[0], d.p1 = clip[1];
    d.pool_h = d.pool_w = 1, d.out_h = d.oh, d.out_w = d.ow;
    d.in_on = mode, d.in_act = 19, d.in_p0 = clip[0], d.in_p1 = clip[1];
    const i64_t outs = (i64_t)n * m * d.oh * d.ow;
    std::vector<float> y(outs, NAN);
    launch(blocks_of(outs), 1, 1, 256,
           [&] { nn_conv_direct_f32(mid.data(), w2.data(), b2.data(), nullptr, y.data(), d, b1.data()); });
    save("y.f32", y);
    // The global average pool consumer (global_pool.rs: a warp per plane).
    InAct in{m, mode, 19, clip[0], clip[1]};
    std::vector<float> g((i64_t)n * m, NAN);
    launch(blocks_of((i64_t)n * m * 32), 1, 1, 256,
           [&] { nn_global_pool_avg_f32(mid.data(), g.data(), (i64_t)n * m, (i64_t)h * w, in, b1.data()); });
    save("g.f32", g);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    std::string what = argv[1];
    dir = argv[2];
    if (what == "convpool") return convpool();
    if (what == "gemmsoftmax") return gemmsoftmax();
    if (what == "prologue") return prologue();
    if (what == "gemmtail") return gemmtail();
    if (what == "padnarrow") return padnarrow();
    if (what == "pad") return pad();
    return 2;
}
