// Camera preprocessing in one kernel: colour conversion, resampling (bilinear or area, through
// the CPU path's tap tables), centre crop or letterbox, normalisation, layout. One thread per
// output pixel; it converts only the source pixels its taps read. The per-pixel formulas are
// those of runtime/src/preprocess/pixel.rs, so the GPU and CPU outputs agree to rounding.

// Pixel formats (runtime/src/cuda/preprocess.rs `format_code`).
#define PF_YUYV 0
#define PF_UYVY 1
#define PF_NV12 2
#define PF_RGB24 3
#define PF_BGR24 4
#define PF_GREY 5

// BT.601 limited range, clamped to 0..255 (pixel.rs `yuv_to_rgb`).
__device__ __forceinline__ void yuv_rgb(float y, float u, float v, float* rgb) {
    float c = 1.164383f * (y - 16.0f);
    float d = u - 128.0f;
    float e = v - 128.0f;
    rgb[0] = fminf(fmaxf(c + 1.596027f * e, 0.0f), 255.0f);
    rgb[1] = fminf(fmaxf(c - 0.391762f * d - 0.812968f * e, 0.0f), 255.0f);
    rgb[2] = fminf(fmaxf(c + 2.017232f * d, 0.0f), 255.0f);
}

__device__ __forceinline__ void fetch(const unsigned char* src, int format, int width, int height,
                                      int stride, int x, int y, float* rgb) {
    const unsigned char* row = src + (i64_t)y * stride;
    switch (format) {
    case PF_YUYV:
    case PF_UYVY: {
        int yo = format == PF_YUYV ? 0 : 1;
        int uo = format == PF_YUYV ? 1 : 0;
        int vo = format == PF_YUYV ? 3 : 2;
        int pair = (x & ~1) * 2;
        yuv_rgb(row[2 * x + yo], row[pair + uo], row[pair + vo], rgb);
        break;
    }
    case PF_NV12: {
        const unsigned char* chroma = src + (i64_t)stride * height + (i64_t)(y / 2) * stride;
        yuv_rgb(row[x], chroma[x & ~1], chroma[(x & ~1) + 1], rgb);
        break;
    }
    case PF_RGB24:
    case PF_BGR24: {
        const unsigned char* p = row + 3 * x;
        rgb[0] = p[format == PF_RGB24 ? 0 : 2];
        rgb[1] = p[1];
        rgb[2] = p[format == PF_RGB24 ? 2 : 0];
        break;
    }
    default: {
        float g = row[x];
        rgb[0] = g;
        rgb[1] = g;
        rgb[2] = g;
    }
    }
}

// Axis tables: for output o and tap k, source index idx[k * n + o] with weight w[k * n + o];
// outputs outside [lo, hi) are letterbox padding. color: 0 rgb, 1 bgr, 2 gray. layout: 0 NCHW,
// 1 NHWC. Output value = v * scale[c] + bias[c] (v in 0..255, or `pad` in the padding), computed
// in f32 and stored as T (f32, or f16 rounded to nearest even).
template <typename T>
__device__ void frame(
    const unsigned char* src, int format, int width, int height, int stride,
    const int* xi, const float* xw, int xtaps, int xlo, int xhi,
    const int* yi, const float* yw, int ytaps, int ylo, int yhi,
    int out_w, int out_h, int color, int layout,
    float s0, float s1, float s2, float b0, float b1, float b2, float pad,
    T* out) {
    const int channels = color == 2 ? 1 : 3;
    const i64_t n = (i64_t)out_w * out_h;
    for (i64_t i = blockIdx.x * (i64_t)blockDim.x + threadIdx.x; i < n;
         i += (i64_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % out_w);
        int oy = (int)(i / out_w);
        float acc[3] = {pad, pad, pad};
        if (ox >= xlo && ox < xhi && oy >= ylo && oy < yhi) {
            acc[0] = acc[1] = acc[2] = 0.0f;
            for (int ky = 0; ky < ytaps; ky++) {
                float wy = yw[ky * out_h + oy];
                if (wy == 0.0f) continue;
                int sy = yi[ky * out_h + oy];
                float row[3] = {0.0f, 0.0f, 0.0f};
                for (int kx = 0; kx < xtaps; kx++) {
                    float wx = xw[kx * out_w + ox];
                    if (wx == 0.0f) continue;
                    float rgb[3];
                    fetch(src, format, width, height, stride, xi[kx * out_w + ox], sy, rgb);
                    row[0] += wx * rgb[0];
                    row[1] += wx * rgb[1];
                    row[2] += wx * rgb[2];
                }
                acc[0] += wy * row[0];
                acc[1] += wy * row[1];
                acc[2] += wy * row[2];
            }
        }
        float v[3];
        if (color == 2) {
            v[0] = 0.299f * acc[0] + 0.587f * acc[1] + 0.114f * acc[2];
        } else if (color == 1) {
            v[0] = acc[2];
            v[1] = acc[1];
            v[2] = acc[0];
        } else {
            v[0] = acc[0];
            v[1] = acc[1];
            v[2] = acc[2];
        }
        const float sc[3] = {s0, s1, s2};
        const float bi[3] = {b0, b1, b2};
        for (int c = 0; c < channels; c++) {
            float y = v[c] * sc[c] + bi[c];
            st(out, layout == 0 ? (i64_t)c * n + i : i * channels + c, y);
        }
    }
}

#define PREPROCESS(T, S)                                                                             \
    extern "C" __global__ void preprocess_frame_##S(                                                 \
        const unsigned char* src, int format, int width, int height, int stride, const int* xi,     \
        const float* xw, int xtaps, int xlo, int xhi, const int* yi, const float* yw, int ytaps,    \
        int ylo, int yhi, int out_w, int out_h, int color, int layout, float s0, float s1,          \
        float s2, float b0, float b1, float b2, float pad, T* out) {                                \
        frame(src, format, width, height, stride, xi, xw, xtaps, xlo, xhi, yi, yw, ytaps, ylo, yhi, \
              out_w, out_h, color, layout, s0, s1, s2, b0, b1, b2, pad, out);                       \
    }

PREPROCESS(float, f32)
PREPROCESS(f16_t, f16)
