// Runs the kernels `runtime/src/cuda/fuse.rs` folds readers into, fused and unfused, with the
// grids the runtime launches them with (cuda/ops/nn/conv_direct.rs, pool.rs,
// linalg/small.rs, reduce/softmax.rs), on files written by check.py:
//   fused_main convpool DIR    conv + max pool: y.f32 (fused), y_same.f32 (conv with the
//                              fused lanes, then the pool kernel), y_unfused.f32 (the
//                              runtime's unfused lanes)
//   fused_main gemmsoftmax DIR few-row GEMM + softmax: y.f32 (fused, run twice: the second run
//                              after the counter's reset), y_same.f32 (GEMM, then the softmax
//                              kernel); counter.u32 after the runs
#include "kernels.h"

#include <fstream>
#include <string>

static std::string dir;

template <typename T>
std::vector<T> load(const char* name) {
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(in)), {});
    std::vector<T> v(b.size() / sizeof(T));
    memcpy(v.data(), b.data(), v.size() * sizeof(T));
    return v;
}
template <typename T>
void save(const char* name, const std::vector<T>& v) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write((const char*)v.data(), v.size() * sizeof(T));
}

// Device::launch: 256-thread blocks, at most 65535.
static unsigned blocks_of(i64_t threads) {
    return (unsigned)std::clamp<i64_t>((threads + 255) / 256, 1, 65535);
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
           [&] { nn_conv_direct_f32(x.data(), w.data(), b.data(), nullptr, y.data(), f); });
    save("y.f32", y);
    // Unfused: the convolution (window 1 x 1), then the pool kernel.
    PoolParams pp{p.n * p.m, p.oh, p.ow, out_h, out_w, ph, pw, ph, pw, 1, 1, 0, 0, 0, 0, 0};
    for (int run = 0; run < 2; ++run) {
        DirectParams u = p;
        u.lanes = run == 0 ? lanes_fused : lanes_unfused;
        u.pool_h = u.pool_w = 1, u.out_h = p.oh, u.out_w = p.ow;
        std::vector<float> mid(mids, NAN), yu(outs, NAN);
        launch(blocks_of(mids * u.lanes), 1, 1, 256,
               [&] { nn_conv_direct_f32(x.data(), w.data(), b.data(), nullptr, mid.data(), u); });
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
            linalg_gemm_small_f32(a.data(), bt.data(), bias.data(), y.data(), f, &counter);
        });
    }
    save("y.f32", y);
    save("counter.u32", std::vector<unsigned>{counter});
    std::vector<float> mid(outs, NAN), yu(outs, NAN);
    launch(blocks_of(outs * 32), 1, 1, 256, [&] {
        linalg_gemm_small_f32(a.data(), bt.data(), bias.data(), mid.data(), p, nullptr);
    });
    // reduce/softmax.rs: one block per row (at most 65535), 256 threads.
    launch((unsigned)std::clamp<i64_t>(p.m, 1, 65535), 1, 1, 256,
           [&] { reduce_softmax_rows_f32(mid.data(), yu.data(), p.m, p.n, ip[3]); });
    save("y_same.f32", yu);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    std::string what = argv[1];
    dir = argv[2];
    if (what == "convpool") return convpool();
    if (what == "gemmsoftmax") return gemmsoftmax();
    return 2;
}
