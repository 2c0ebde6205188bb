// Runs DynamicQuantizeConv's device sequence (quant_dyn_range, quant_dyn_quantize, then one
// QConv kernel with the run's parameters read from a DynQ), or QGather, with the grids the
// runtime launches them with (cuda/ops/quant/*.rs), on files written by check.py:
//   quant_main conv generic|dp4a|pw DIR LANES     quant_main gather DIR
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

static unsigned blocks_of(i64_t threads) { return (unsigned)std::clamp<i64_t>((threads + 255) / 256, 1, 65535); }

static int gather() {
    auto x = load<signed char>("table.i8");
    auto scale = load<float>("scale.f32");
    auto idx = load<i64_t>("idx.i64");
    i64_t rows = scale.size(), row = x.size() / rows, n_idx = idx.size();
    std::vector<float> y(n_idx * row, NAN);
    launch(blocks_of(n_idx * row), 1, 1, 256,
           [&] { quant_gather(x.data(), scale.data(), idx.data(), y.data(), n_idx, rows, row); });
    save("y.f32", y);
    return 0;
}

static int conv(const std::string& kind, int lanes) {
    auto ip = load<i64_t>("p.i64");  // n c h w m oh ow kh kw sh sw dh dw pt pl group
    auto clamp = load<float>("clamp.f32");
    auto x = load<float>("x.f32");
    auto mult = load<float>("mult.f32");
    auto add = load<float>("add.f32");
    // dynamic_quantize.rs: range blocks one per 4096 values (at most 256), quantize blocks one
    // per 1024; 256 threads each.
    const i64_t n = x.size();
    const int blocks = (int)std::clamp<i64_t>((n + 4095) / 4096, 1, 256);
    std::vector<float> parts(2 * 256, NAN);
    launch(blocks, 1, 1, 256, [&] { quant_dyn_range(x.data(), n, parts.data()); });
    std::vector<unsigned char> xq(n, 0xee);
    DynQ dq{NAN, -1};
    float scale_out = NAN;
    unsigned char zp_out = 0xee;
    launch((unsigned)std::clamp<i64_t>((n + 1023) / 1024, 1, 65535), 1, 1, 256, [&] {
        quant_dyn_quantize(x.data(), n, parts.data(), blocks, xq.data(), &dq, &scale_out, &zp_out);
    });
    save("xq.u8", xq);
    save("params.f32", std::vector<float>{dq.scale, (float)dq.zp, scale_out, (float)zp_out});
    QConvParams p;
    i64_t* shape = &p.n;
    for (int k = 0; k < 16; ++k) shape[k] = ip[k];
    p.zx = -1000;  // must not be read: the zero point comes from `dyn`
    p.lanes = lanes;
    p.zp = 0.0f;
    p.lo = clamp[0];
    p.hi = clamp[1];
    p.dyn = &dq;
    const i64_t outputs = p.n * p.m * p.oh * p.ow;
    std::vector<float> y(outputs, NAN);
    if (kind == "generic") {
        auto w = load<short>("w.i16");
        launch(blocks_of(outputs * lanes), 1, 1, 256,
               [&] { quant_conv_u8_f32(xq.data(), w.data(), mult.data(), add.data(), y.data(), p); });
    } else if (kind == "dp4a") {
        auto w4 = load<int>("w4.i32");
        auto sums = load<int>("sums.i32");
        launch(blocks_of(outputs * lanes), 1, 1, 256, [&] {
            quant_conv_dp4a_u8_f32(xq.data(), w4.data(), sums.data(), mult.data(), add.data(),
                                   y.data(), p);
        });
    } else {
        auto w = load<short>("w.i16");
        PwSplit<int> pw{1, (int)p.c, nullptr, nullptr};
        const i64_t plane = p.h * p.w;
        launch((unsigned)((plane + 31) / 32), (unsigned)((p.m + 31) / 32), (unsigned)p.n, 256, [&] {
            quant_conv_pw_u8_f32(xq.data(), w.data(), mult.data(), add.data(), y.data(), p, pw);
        });
    }
    save("y.f32", y);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    std::string what = argv[1];
    if (what == "gather") {
        dir = argv[2];
        return gather();
    }
    if (argc < 5) return 2;
    dir = argv[3];
    return conv(argv[2], atoi(argv[4]));
}
