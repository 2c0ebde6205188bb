// Fake cuDNN for scripts/cuda-emu's emulated GPU: built as libcudnn.so.9 next to the fake CUDA
// driver (driver.cpp, libcuda.so.1), whose "device pointers" are host pointers. It implements
// exactly the legacy-API subset runtime/src/cuda/dnn.rs calls (through cudarc, which dlopens the
// library and looks each symbol up by name): handles, 4-D NCHW tensor / filter descriptors, 2-D
// convolution and activation descriptors, the algorithm and workspace queries, and the two
// forward convolutions, computed on the CPU.
//
// No NVIDIA header is used: handles and descriptors are pointers to our own structs, enums are
// ints with NVIDIA's values (cudarc's bindings, feature cudnn-09021, so statuses are cuDNN 9's:
// BAD_PARAM 2000, NOT_SUPPORTED 3000; cudarc reads them into a Rust enum, so only those values
// may be returned), and a status is an int, 0 = success.
//
// Stream order: nothing is computed inline. Each convolution copies what it needs (descriptor
// contents, alpha/beta values, the data pointers as they are) into a heap job and hands it to
// the driver's fakecuda_enqueue on the handle's stream; the driver runs it in stream order, or
// records it while a CUDA graph is captured and runs it at every replay (so a job never changes
// itself). Everything is validated before enqueueing, so a job cannot fail.
//
// Build: g++ -std=c++20 -O2 -shared -fPIC -w -o libcudnn.so.9 dnn.cpp -L<fake libcuda dir> -lcuda
// Standalone (no driver, work runs at once): add -DFAKE_STANDALONE and drop -lcuda.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "enqueue.h"
#include "half.h"

// ---- NVIDIA's enum values (cudarc's cudnn/sys/mod.rs, cuDNN 9) --------------------------------

enum : int {
    STATUS_SUCCESS = 0,
    STATUS_BAD_PARAM = 2000,
    STATUS_NOT_SUPPORTED = 3000,
    STATUS_ALLOC_FAILED = 4003,  // CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
};
enum : int { DATA_FLOAT = 0, DATA_DOUBLE = 1, DATA_HALF = 2 };
enum : int { TENSOR_NCHW = 0 };
enum : int { CONVOLUTION = 0, CROSS_CORRELATION = 1 };
enum : int { MATH_DEFAULT = 0, MATH_FMA = 3 };  // 1 TENSOR_OP, 2 TENSOR_OP_ALLOW_CONVERSION
enum : int { ACT_RELU = 1, ACT_IDENTITY = 5, ACT_LAST = 6 };  // 0 SIGMOID ... 6 SWISH
enum : int {
    ALGO_IMPLICIT_GEMM = 0,
    ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    ALGO_DIRECT = 3,
    ALGO_COUNT = 8,
};
enum : int { DETERMINISTIC = 1 };

// ---- Handle and descriptors ------------------------------------------------------------------

struct FakeDnnHandle {
    void* stream = nullptr;  // null: the legacy default stream, valid
};
struct FakeDnnTensor {
    bool set = false;
    int dtype = 0, n = 0, c = 0, h = 0, w = 0;  // packed NCHW
};
struct FakeDnnFilter {
    bool set = false;
    int dtype = 0, k = 0, c = 0, r = 0, s = 0;  // packed KCRS, c = channels per group
};
struct FakeDnnConv {
    bool set = false;
    int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
    int mode = CROSS_CORRELATION, compute = DATA_FLOAT;
    int groups = 1, math = MATH_DEFAULT;
};
struct FakeDnnActivation {
    bool set = false;
    int mode = ACT_RELU, nan = 0;
    double coef = 0;
};

// Layout of cudnnConvolutionFwdAlgoPerfStruct (cudnn_cnn_v9.h).
struct FakeDnnAlgoPerf {
    int algo;
    int status;
    float time;
    size_t memory;
    int determinism;
    int math_type;
    int reserved[3];
};

// ---- Helpers -----------------------------------------------------------------------------

// Element i of a FLOAT or HALF array, as float.
static float load(const void* p, size_t i, int dtype) {
    if (dtype == DATA_HALF) return half_to_float(static_cast<const uint16_t*>(p)[i]);
    return static_cast<const float*>(p)[i];
}
// Stores v (rounded once to f16 for HALF).
static void store(void* p, size_t i, int dtype, float v) {
    if (dtype == DATA_HALF)
        static_cast<uint16_t*>(p)[i] = float_to_half(v);
    else
        static_cast<float*>(p)[i] = v;
}
// A float copy of `count` elements (nullptr when out of memory); free with std::free.
static float* to_float(const void* p, size_t count, int dtype) {
    float* out = static_cast<float*>(std::malloc((count ? count : 1) * sizeof(float)));
    if (!out) return nullptr;
    if (dtype == DATA_HALF)
        for (size_t i = 0; i < count; i++) out[i] = half_to_float(static_cast<const uint16_t*>(p)[i]);
    else
        std::memcpy(out, p, count * sizeof(float));
    return out;
}
static int64_t floor_div(int64_t a, int64_t b) {  // b > 0
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static int64_t ceil_div(int64_t a, int64_t b) {  // b > 0
    return -floor_div(-a, b);
}
static bool supported_dtype(int t) { return t == DATA_FLOAT || t == DATA_HALF; }

// Everything one convolution needs, copied from the descriptors at call time.
struct ConvGeometry {
    int dtype;                  // of x, w, y (and z)
    int64_t n, c, h, w;         // input
    int64_t k, cpg, r, s;       // filter: k outputs, cpg = c / groups inputs each
    int64_t groups;
    int64_t oh, ow;             // output
    int64_t pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
    bool flip;                  // CONVOLUTION mode: the filter is applied flipped
};

// Checks that x, w, conv and y describe one supported convolution (as cuDNN does: y's shape
// must be the one the others give) and fills g.
static int check_conv(const FakeDnnTensor* x, const FakeDnnFilter* w, const FakeDnnConv* cv,
                      const FakeDnnTensor* y, ConvGeometry& g) {
    if (!x || !w || !cv || !y || !x->set || !w->set || !cv->set || !y->set) return STATUS_BAD_PARAM;
    if (x->dtype != w->dtype || x->dtype != y->dtype) return STATUS_BAD_PARAM;
    if (!supported_dtype(x->dtype) || cv->compute != DATA_FLOAT) return STATUS_NOT_SUPPORTED;
    g.dtype = x->dtype;
    g.n = x->n, g.c = x->c, g.h = x->h, g.w = x->w;
    g.k = w->k, g.cpg = w->c, g.r = w->r, g.s = w->s;
    g.groups = cv->groups;
    g.pad_h = cv->pad_h, g.pad_w = cv->pad_w;
    g.stride_h = cv->stride_h, g.stride_w = cv->stride_w;
    g.dil_h = cv->dil_h, g.dil_w = cv->dil_w;
    g.flip = cv->mode == CONVOLUTION;
    if (g.c != g.cpg * g.groups || g.k % g.groups != 0) return STATUS_BAD_PARAM;
    const int64_t span_h = g.h + 2 * g.pad_h - ((g.r - 1) * g.dil_h + 1);
    const int64_t span_w = g.w + 2 * g.pad_w - ((g.s - 1) * g.dil_w + 1);
    if (span_h < 0 || span_w < 0) return STATUS_BAD_PARAM;
    g.oh = span_h / g.stride_h + 1;
    g.ow = span_w / g.stride_w + 1;
    if (y->n != g.n || y->c != g.k || y->h != g.oh || y->w != g.ow) return STATUS_BAD_PARAM;
    return STATUS_SUCCESS;
}

// cuDNN implements no DIRECT forward algorithm (its workspace query and the convolutions refuse
// it); the others all run here.
static int check_algo(int algo) {
    if (algo < 0 || algo >= ALGO_COUNT) return STATUS_BAD_PARAM;
    return algo == ALGO_DIRECT ? STATUS_NOT_SUPPORTED : STATUS_SUCCESS;
}

// The workspace an algorithm asks for: IMPLICIT_PRECOMP_GEMM an index per filter tap (as
// cuDNN's precomputed offsets), rounded to 256 bytes; the others none. The convolutions refuse
// less, and overwrite all of it as they run (run_conv), so a workspace too small or shared
// with live data shows up in the caller's results or faults at the allocation's guard page.
static size_t workspace_needed(int algo, const ConvGeometry& g) {
    if (algo != ALGO_IMPLICIT_PRECOMP_GEMM) return 0;
    return size_t(g.cpg * g.r * g.s * 4 + 255) / 256 * 256;
}

// ---- The convolution job -----------------------------------------------------------------

struct ConvJob {
    ConvGeometry g;
    const void* x;
    const void* w;
    void* y;
    float alpha;        // alpha (forward) or alpha1 (fused)
    float beta;         // forward: beta; fused: alpha2 (z's scale)
    bool fused;         // cudnnConvolutionBiasActivationForward
    const void* z;      // fused: read only when alpha2 != 0; may be y
    const void* bias;   // fused: K values
    int bias_dtype;
    bool relu;          // fused: RELU (else IDENTITY)
    void* workspace;    // overwritten with 0xA5 bytes before the convolution runs
    size_t workspace_bytes;
};

// y = epilogue(alpha * conv(x, w)), one output plane (n, k) at a time. Products accumulate in
// double; the epilogue is computed in float and rounded once at the store.
static void run_conv(void* arg) {
    const ConvJob& j = *static_cast<const ConvJob*>(arg);
    const ConvGeometry& g = j.g;
    if (j.workspace_bytes) std::memset(j.workspace, 0xA5, j.workspace_bytes);
    const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
    const int64_t kpg = g.k / g.groups;  // outputs per group
    const int64_t taps = g.r * g.s;
    float* xf = to_float(j.x, size_t(g.n * g.c * in_plane), g.dtype);
    float* wf = to_float(j.w, size_t(g.k * g.cpg * taps), g.dtype);
    double* acc = static_cast<double*>(std::malloc(size_t(out_plane ? out_plane : 1) * sizeof(double)));
    if (!xf || !wf || !acc) {
        // Out of host memory mid-stream: nothing sensible to report through; leave y as it is.
        std::free(xf), std::free(wf), std::free(acc);
        return;
    }
    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t k = 0; k < g.k; k++) {
            const int64_t group = k / kpg;
            for (int64_t i = 0; i < out_plane; i++) acc[i] = 0;
            if (j.alpha != 0) {
                for (int64_t ci = 0; ci < g.cpg; ci++) {
                    const float* xp = xf + (n * g.c + group * g.cpg + ci) * in_plane;
                    const float* wp = wf + (k * g.cpg + ci) * taps;
                    for (int64_t ky = 0; ky < g.r; ky++) {
                        // Output rows oy whose input row iy = oy*stride + off lies in [0, h).
                        const int64_t off_y = ky * g.dil_h - g.pad_h;
                        int64_t oy0 = ceil_div(-off_y, g.stride_h), oy1 = floor_div(g.h - 1 - off_y, g.stride_h) + 1;
                        if (oy0 < 0) oy0 = 0;
                        if (oy1 > g.oh) oy1 = g.oh;
                        for (int64_t kx = 0; kx < g.s; kx++) {
                            const int64_t off_x = kx * g.dil_w - g.pad_w;
                            int64_t ox0 = ceil_div(-off_x, g.stride_w), ox1 = floor_div(g.w - 1 - off_x, g.stride_w) + 1;
                            if (ox0 < 0) ox0 = 0;
                            if (ox1 > g.ow) ox1 = g.ow;
                            const double wv = g.flip ? wp[(g.r - 1 - ky) * g.s + (g.s - 1 - kx)] : wp[ky * g.s + kx];
                            for (int64_t oy = oy0; oy < oy1; oy++) {
                                const float* xrow = xp + (oy * g.stride_h + off_y) * g.w;
                                double* arow = acc + oy * g.ow;
                                for (int64_t ox = ox0; ox < ox1; ox++)
                                    arow[ox] += wv * xrow[ox * g.stride_w + off_x];
                            }
                        }
                    }
                }
            }
            // Epilogue over the plane. Reading z (or y) at index i right before writing y[i]
            // keeps z == y correct.
            const size_t base = size_t((n * g.k + k) * out_plane);
            const float b = j.fused ? load(j.bias, size_t(k), j.bias_dtype) : 0.0f;
            for (int64_t i = 0; i < out_plane; i++) {
                const size_t at = base + size_t(i);
                float v = j.alpha * (float)acc[i];
                if (!j.fused) {
                    if (j.beta != 0) v += j.beta * load(j.y, at, g.dtype);  // beta 0: y unread
                } else {
                    if (j.beta != 0) v += j.beta * load(j.z, at, g.dtype);  // alpha2 0: z unread
                    v += b;
                    if (j.relu && v < 0) v = 0;  // NaN stays NaN (PROPAGATE_NAN)
                }
                store(j.y, at, g.dtype, v);
            }
        }
    }
    std::free(xf), std::free(wf), std::free(acc);
}

static void drop_conv(void* arg) { delete static_cast<ConvJob*>(arg); }

// ---- Exported API ------------------------------------------------------------------------

#define API extern "C" __attribute__((visibility("default")))

API size_t cudnnGetVersion() { return 90300; }

API int cudnnCreate(FakeDnnHandle** handle) {
    if (!handle) return STATUS_BAD_PARAM;
    *handle = new (std::nothrow) FakeDnnHandle;
    return *handle ? STATUS_SUCCESS : STATUS_ALLOC_FAILED;
}
API int cudnnDestroy(FakeDnnHandle* handle) {
    delete handle;  // queued jobs hold no reference to it
    return STATUS_SUCCESS;
}
API int cudnnSetStream(FakeDnnHandle* handle, void* stream) {
    if (!handle) return STATUS_BAD_PARAM;
    handle->stream = stream;
    return STATUS_SUCCESS;
}

// Create / destroy, the same for every descriptor kind.
template <typename T>
static int create_desc(T** desc) {
    if (!desc) return STATUS_BAD_PARAM;
    *desc = new (std::nothrow) T;
    return *desc ? STATUS_SUCCESS : STATUS_ALLOC_FAILED;
}
template <typename T>
static int destroy_desc(T* desc) {
    delete desc;  // jobs copied what they needed
    return STATUS_SUCCESS;
}
API int cudnnCreateTensorDescriptor(FakeDnnTensor** d) { return create_desc(d); }
API int cudnnDestroyTensorDescriptor(FakeDnnTensor* d) { return destroy_desc(d); }
API int cudnnCreateFilterDescriptor(FakeDnnFilter** d) { return create_desc(d); }
API int cudnnDestroyFilterDescriptor(FakeDnnFilter* d) { return destroy_desc(d); }
API int cudnnCreateConvolutionDescriptor(FakeDnnConv** d) { return create_desc(d); }
API int cudnnDestroyConvolutionDescriptor(FakeDnnConv* d) { return destroy_desc(d); }
API int cudnnCreateActivationDescriptor(FakeDnnActivation** d) { return create_desc(d); }
API int cudnnDestroyActivationDescriptor(FakeDnnActivation* d) { return destroy_desc(d); }

// Packed 4-D tensor; only NCHW and FLOAT / HALF are implemented.
API int cudnnSetTensor4dDescriptor(FakeDnnTensor* d, int format, int dtype, int n, int c, int h, int w) {
    if (!d || n <= 0 || c <= 0 || h <= 0 || w <= 0 || format < 0 || format > 2 || dtype < 0)
        return STATUS_BAD_PARAM;
    if (format != TENSOR_NCHW || !supported_dtype(dtype)) return STATUS_NOT_SUPPORTED;
    *d = FakeDnnTensor{true, dtype, n, c, h, w};
    return STATUS_SUCCESS;
}

// Filter K x C(per group) x R x S; note the argument order (dtype before format).
API int cudnnSetFilter4dDescriptor(FakeDnnFilter* d, int dtype, int format, int k, int c, int r, int s) {
    if (!d || k <= 0 || c <= 0 || r <= 0 || s <= 0 || format < 0 || format > 2 || dtype < 0)
        return STATUS_BAD_PARAM;
    if (format != TENSOR_NCHW || !supported_dtype(dtype)) return STATUS_NOT_SUPPORTED;
    *d = FakeDnnFilter{true, dtype, k, c, r, s};
    return STATUS_SUCCESS;
}

// Keeps the group count and math type set before or after (as cuDNN does).
API int cudnnSetConvolution2dDescriptor(FakeDnnConv* d, int pad_h, int pad_w, int u, int v, int dil_h,
                                        int dil_w, int mode, int compute) {
    if (!d || pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0) return STATUS_BAD_PARAM;
    if (mode != CONVOLUTION && mode != CROSS_CORRELATION) return STATUS_BAD_PARAM;
    if (compute != DATA_FLOAT) return STATUS_NOT_SUPPORTED;  // only fp32 accumulation is emulated
    d->set = true;
    d->pad_h = pad_h, d->pad_w = pad_w, d->stride_h = u, d->stride_w = v;
    d->dil_h = dil_h, d->dil_w = dil_w, d->mode = mode, d->compute = compute;
    return STATUS_SUCCESS;
}
API int cudnnSetConvolutionGroupCount(FakeDnnConv* d, int groups) {
    if (!d || groups < 1) return STATUS_BAD_PARAM;
    d->groups = groups;
    return STATUS_SUCCESS;
}
// Recorded (the algorithm query reports it back); the arithmetic is the same for every type.
API int cudnnSetConvolutionMathType(FakeDnnConv* d, int math) {
    if (!d || math < MATH_DEFAULT || math > MATH_FMA) return STATUS_BAD_PARAM;
    d->math = math;
    return STATUS_SUCCESS;
}

API int cudnnSetActivationDescriptor(FakeDnnActivation* d, int mode, int nan, double coef) {
    if (!d || mode < 0 || mode > ACT_LAST || (nan != 0 && nan != 1)) return STATUS_BAD_PARAM;
    *d = FakeDnnActivation{true, mode, nan, coef};
    return STATUS_SUCCESS;
}

// The "heuristic": IMPLICIT_PRECOMP_GEMM first (with its workspace), then IMPLICIT_GEMM (none),
// both with the descriptor's math type.
API int cudnnGetConvolutionForwardAlgorithm_v7(FakeDnnHandle* handle, const FakeDnnTensor* x,
                                               const FakeDnnFilter* w, const FakeDnnConv* conv,
                                               const FakeDnnTensor* y, int requested, int* returned,
                                               FakeDnnAlgoPerf* perf) {
    ConvGeometry g;
    if (!handle || !returned || !perf || requested <= 0) return STATUS_BAD_PARAM;
    if (int s = check_conv(x, w, conv, y, g)) return s;
    const int algos[2] = {ALGO_IMPLICIT_PRECOMP_GEMM, ALGO_IMPLICIT_GEMM};
    const int count = requested < 2 ? requested : 2;
    for (int i = 0; i < count; i++) {
        perf[i] = FakeDnnAlgoPerf{algos[i], STATUS_SUCCESS, -1.0f, workspace_needed(algos[i], g), DETERMINISTIC,
                                  conv->math, {0, 0, 0}};
    }
    *returned = count;
    return STATUS_SUCCESS;
}

// DIRECT is refused as cuDNN refuses it (dnn.rs's test of a poisoned algorithm choice relies on
// that).
API int cudnnGetConvolutionForwardWorkspaceSize(FakeDnnHandle* handle, const FakeDnnTensor* x,
                                                const FakeDnnFilter* w, const FakeDnnConv* conv,
                                                const FakeDnnTensor* y, int algo, size_t* bytes) {
    ConvGeometry g;
    if (!handle || !bytes) return STATUS_BAD_PARAM;
    if (int s = check_conv(x, w, conv, y, g)) return s;
    if (int s = check_algo(algo)) return s;
    *bytes = workspace_needed(algo, g);
    return STATUS_SUCCESS;
}

// y = alpha * conv(x, w) + beta * y (y unread when beta == 0). alpha and beta are floats for
// FLOAT and HALF data.
API int cudnnConvolutionForward(FakeDnnHandle* handle, const void* alpha, const FakeDnnTensor* x_desc,
                                const void* x, const FakeDnnFilter* w_desc, const void* w,
                                const FakeDnnConv* conv, int algo, void* workspace, size_t workspace_bytes,
                                const void* beta, const FakeDnnTensor* y_desc, void* y) {
    ConvGeometry g;
    if (!handle || !alpha || !beta || !x || !w || !y) return STATUS_BAD_PARAM;
    if (int s = check_conv(x_desc, w_desc, conv, y_desc, g)) return s;
    if (int s = check_algo(algo)) return s;
    const size_t need = workspace_needed(algo, g);
    if (need && (!workspace || workspace_bytes < need)) return STATUS_BAD_PARAM;
    ConvJob* job = new (std::nothrow) ConvJob{};
    if (!job) return STATUS_ALLOC_FAILED;
    job->g = g;
    job->x = x, job->w = w, job->y = y;
    job->alpha = *static_cast<const float*>(alpha);
    job->beta = *static_cast<const float*>(beta);
    job->fused = false;
    job->workspace = workspace, job->workspace_bytes = need;
    enqueue(handle->stream, run_conv, job, drop_conv);
    return STATUS_SUCCESS;
}

// y = act(alpha1 * conv(x, w) + alpha2 * z + bias), act RELU or IDENTITY; z (shaped as y, may
// be y) unread when alpha2 == 0; bias 1 x K x 1 x 1.
API int cudnnConvolutionBiasActivationForward(
    FakeDnnHandle* handle, const void* alpha1, const FakeDnnTensor* x_desc, const void* x,
    const FakeDnnFilter* w_desc, const void* w, const FakeDnnConv* conv, int algo, void* workspace,
    size_t workspace_bytes, const void* alpha2, const FakeDnnTensor* z_desc, const void* z,
    const FakeDnnTensor* bias_desc, const void* bias, const FakeDnnActivation* act,
    const FakeDnnTensor* y_desc, void* y) {
    ConvGeometry g;
    if (!handle || !alpha1 || !alpha2 || !x || !w || !y || !bias) return STATUS_BAD_PARAM;
    if (int s = check_conv(x_desc, w_desc, conv, y_desc, g)) return s;
    if (int s = check_algo(algo)) return s;
    const size_t need = workspace_needed(algo, g);
    if (need && (!workspace || workspace_bytes < need)) return STATUS_BAD_PARAM;
    if (!z_desc || !z_desc->set || z_desc->dtype != y_desc->dtype || z_desc->n != y_desc->n ||
        z_desc->c != y_desc->c || z_desc->h != y_desc->h || z_desc->w != y_desc->w)
        return STATUS_BAD_PARAM;
    if (!bias_desc || !bias_desc->set || bias_desc->n != 1 || bias_desc->c != g.k || bias_desc->h != 1 ||
        bias_desc->w != 1)
        return STATUS_BAD_PARAM;
    if (!act || !act->set) return STATUS_BAD_PARAM;
    // cuDNN fuses only RELU, and IDENTITY only with IMPLICIT_PRECOMP_GEMM.
    if (act->mode != ACT_RELU && !(act->mode == ACT_IDENTITY && algo == ALGO_IMPLICIT_PRECOMP_GEMM))
        return STATUS_NOT_SUPPORTED;
    const float a2 = *static_cast<const float*>(alpha2);
    if (a2 != 0 && !z) return STATUS_BAD_PARAM;
    ConvJob* job = new (std::nothrow) ConvJob{};
    if (!job) return STATUS_ALLOC_FAILED;
    job->g = g;
    job->x = x, job->w = w, job->y = y;
    job->alpha = *static_cast<const float*>(alpha1);
    job->beta = a2;
    job->fused = true;
    job->z = z;
    job->bias = bias;
    job->bias_dtype = bias_desc->dtype;
    job->relu = act->mode == ACT_RELU;
    job->workspace = workspace, job->workspace_bytes = need;
    enqueue(handle->stream, run_conv, job, drop_conv);
    return STATUS_SUCCESS;
}
