// Runs DynamicQuantizeConv's device sequence (quant_dyn_range, quant_dyn_quantize, then one
// QConv kernel with the run's parameters read from a DynQ), or QGather, with the grids the
// runtime launches them with (cuda/ops/quant/*.rs), on files written by check.py:
//   quant_main conv generic|dp4a|pw DIR LANES     quant_main gather DIR     quant_main qadd
#include "kernels.h"
#include "files.h"

#include <set>
#include <type_traits>

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
    QConvParams p{};
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

// A QConv with a QAdd folded into its store (runtime/src/cuda/fuse.rs) against the QConv kernel
// then the QAdd kernel, for each of the three QConv kernels, u8 and i8 inputs and QConv outputs,
// u8, i8 and f32 QAdd outputs, and split K: prints one line per case, returns 1 unless every
// output is equal (bytes, or f32 bits).
static unsigned lcg_state = 12345;
static int lcg(int lo, int hi) {
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lo + (int)((lcg_state >> 8) % (unsigned)(hi - lo));
}

// The QConv kernels by (input, output) type, as the runtime names them.
#define CONV_CALLS(X, SX, Y, SY)                                                                     \
    static void conv_call(const std::string& kind, const X* x, const short* w, const int* w4,        \
                          const int* sums, const float* mult, const float* add, Y* y, QConvParams p, \
                          PwSplit<int> pw, unsigned gx, unsigned gy, unsigned gz, i64_t threads) {   \
        if (kind == "dp4a")                                                                          \
            launch(blocks_of(threads), 1, 1, 256,                                                    \
                   [&] { quant_conv_dp4a_##SX##_##SY(x, w4, sums, mult, add, y, p); });              \
        else if (kind == "pw")                                                                       \
            launch(gx, gy, gz, 256, [&] { quant_conv_pw_##SX##_##SY(x, w, mult, add, y, p, pw); });  \
        else                                                                                         \
            launch(blocks_of(threads), 1, 1, 256, [&] { quant_conv_##SX##_##SY(x, w, mult, add, y, p); }); \
    }
CONV_CALLS(unsigned char, u8, unsigned char, u8)
CONV_CALLS(unsigned char, u8, signed char, i8)
CONV_CALLS(unsigned char, u8, float, f32)
CONV_CALLS(signed char, i8, unsigned char, u8)
CONV_CALLS(signed char, i8, signed char, i8)
CONV_CALLS(signed char, i8, float, f32)

template <typename X, typename C, typename Y>
static bool qadd_case(const char* kind, int c, int hw, int m, int k, int conv_is_a, int splits) {
    const int n = 1, pad = k / 2, oh = hw;
    constexpr bool x_i8 = std::is_same_v<X, signed char>, c_i8 = std::is_same_v<C, signed char>;
    constexpr bool y_f32 = std::is_same_v<Y, float>, y_i8 = std::is_same_v<Y, signed char>;
    QConvParams p{};
    p.n = n, p.c = c, p.h = hw, p.w = hw, p.m = m, p.oh = oh, p.ow = oh, p.kh = p.kw = k;
    p.sh = p.sw = p.dh = p.dw = 1, p.pt = p.pl = pad, p.group = 1;
    p.zx = x_i8 ? -4 : 7;
    p.zp = c_i8 ? -5.0f : 100.0f, p.lo = c_i8 ? -128.0f : 0.0f, p.hi = c_i8 ? 127.0f : 255.0f;
    const std::string kd = kind;
    const bool dp4a = kd == "dp4a", pw = kd == "pw";
    const int terms = (dp4a ? (c + 3) / 4 : c) * k * k;
    int per = std::clamp(terms / 16, 1, 32), lanes = 1;
    while (lanes * 2 <= per) lanes *= 2;
    p.lanes = pw ? 1 : lanes;
    std::vector<X> x((size_t)n * c * hw * hw);
    std::vector<unsigned char> other((size_t)n * m * oh * oh);
    for (auto& v : x) v = (X)lcg(x_i8 ? -128 : 0, x_i8 ? 128 : 256);
    for (auto& v : other) v = (unsigned char)lcg(0, 256);
    std::vector<short> w((size_t)m * c * k * k);
    for (auto& v : w) v = (short)lcg(-128, 128);
    std::vector<float> mult(m), add(m);
    for (int i = 0; i < m; ++i) mult[i] = 0.0005f + lcg(0, 1000) * 1e-6f, add[i] = lcg(-2000, 2000) * 0.01f;
    // dp4a words and row sums from the same i8 weights.
    const int c4 = (c + 3) / 4, taps = k * k;
    std::vector<int> w4((size_t)m * c4 * taps, 0), sums(m, 0);
    for (int r = 0; r < m; ++r)
        for (int ch = 0; ch < c; ++ch)
            for (int t = 0; t < taps; ++t) {
                const int v = w[((size_t)r * c + ch) * taps + t];
                w4[((size_t)r * c4 + ch / 4) * taps + t] |= (int)((unsigned)(unsigned char)(signed char)v << (8 * (ch % 4)));
                sums[r] += v;
            }
    // The QAdd (qadd.rs `params`): operands in the u8 domain, an i8 output stored xor 0x80,
    // an f32 one unclamped in real units.
    const int xconv = c_i8 ? 0x80 : 0;
    QAddParams q{conv_is_a ? xconv : 0, conv_is_a ? 0 : xconv, y_i8 ? 0x80 : 0, 100.0f, 128.0f,
                 0.7f, 0.45f, y_f32 ? 0.0f : 90.0f, y_f32 ? -INFINITY : 0.0f, y_f32 ? INFINITY : 255.0f};
    if (y_f32) q.ka = 0.035f, q.kb = 0.0225f;
    const i64_t outs = (i64_t)n * m * oh * oh;
    // The tiled kernel's grid and split K (conv_pointwise.rs `Split`: whole 32-channel tiles).
    const int plane = hw * hw, tiles = ((plane + 31) / 32) * ((m + 31) / 32) * n;
    const int kchunk = ((c + 31) / 32 + splits - 1) / splits * 32, nsplit = (c + kchunk - 1) / kchunk;
    std::vector<int> part((size_t)nsplit * tiles * 1024, 0x7eadbeef);
    std::vector<unsigned> counters(tiles, 0);
    PwSplit<int> split{nsplit, kchunk, part.data(), counters.data()};
    auto run = [&](QConvParams pp, auto* y) {
        conv_call(kd, x.data(), w.data(), w4.data(), sums.data(), mult.data(), add.data(), y, pp, split,
                  (unsigned)((plane + 31) / 32), (unsigned)((m + 31) / 32), (unsigned)(n * nsplit),
                  outs * pp.lanes);
    };
    // Unfused: the QConv's bytes, then the QAdd kernel.
    std::vector<C> conv(outs, (C)0x6e);
    std::vector<Y> want(outs, (Y)17), got(outs, (Y)33);
    run(p, conv.data());
    const unsigned char* cb = (const unsigned char*)conv.data();
    const unsigned char* a = conv_is_a ? cb : other.data();
    const unsigned char* b = conv_is_a ? other.data() : cb;
    if constexpr (y_f32)
        launch(blocks_of(outs), 1, 1, 256, [&] { quant_add_f32(a, b, want.data(), outs, q); });
    else
        launch(blocks_of(outs), 1, 1, 256, [&] { quant_add_q8(a, b, (unsigned char*)want.data(), outs, q); });
    // Fused.
    QConvParams f = p;
    f.add_other = other.data(), f.add_conv_is_a = conv_is_a, f.qadd = q;
    run(f, got.data());
    i64_t diff = 0;
    for (i64_t i = 0; i < outs; ++i) diff += memcmp(&got[i], &want[i], sizeof(Y)) != 0;
    std::set<float> distinct;
    for (auto v : want) distinct.insert((float)v);
    bool reset = true;
    for (auto v : counters) reset &= v == 0;
    printf("  %s QConv %s %s %dx%dx%d -> %s %d k%d, %d lane%s%s + QAdd (the QConv's output as %s) to %s: "
           "%lld of %lld outputs differ (%zu distinct values)\n",
           diff || !reset ? "FAIL" : "ok  ", kind, x_i8 ? "i8" : "u8", c, hw, hw, c_i8 ? "i8" : "u8", m, k,
           p.lanes, p.lanes > 1 ? "s" : "", nsplit > 1 ? (", split K " + std::to_string(nsplit)).c_str() : "",
           conv_is_a ? "a" : "b", y_f32 ? "f32" : y_i8 ? "i8" : "u8", (long long)diff, (long long)outs,
           distinct.size());
    return diff == 0 && reset;
}

static int qadd_all() {
    using u8 = unsigned char;
    using i8 = signed char;
    bool ok = true;
    ok &= qadd_case<u8, u8, u8>("generic", 6, 9, 5, 3, 1, 1);
    ok &= qadd_case<i8, i8, i8>("generic", 40, 7, 6, 1, 0, 1);  // 1x1, the per-output kernel
    ok &= qadd_case<u8, i8, float>("dp4a", 12, 8, 7, 3, 0, 1);
    ok &= qadd_case<u8, u8, i8>("pw", 36, 9, 40, 1, 1, 1);
    ok &= qadd_case<i8, u8, u8>("pw", 70, 6, 33, 1, 0, 3);
    ok &= qadd_case<u8, i8, float>("pw", 100, 5, 20, 1, 1, 2);
    return ok ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    std::string what = argv[1];
    if (what == "qadd") return qadd_all();
    if (argc < 3) return 2;
    if (what == "gather") {
        dir = argv[2];
        return gather();
    }
    if (argc < 5) return 2;
    dir = argv[3];
    return conv(argv[2], atoi(argv[4]));
}
