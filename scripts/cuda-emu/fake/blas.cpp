// Fake cuBLAS for scripts/cuda-emu's emulated GPU: built as libcublas.so.12 (and linked as
// libcublas.so) next to the fake CUDA driver (driver.cpp, libcuda.so.1), whose "device pointers"
// are host pointers. It implements exactly what runtime/src/cuda/blas.rs calls (through cudarc,
// which dlopens the library and looks each symbol up by name): the handle, its stream, workspace
// and math mode, cublasGemmEx and cublasGemmStridedBatchedEx, computed on the CPU.
//
// No NVIDIA header is used: the handle is a pointer to our own struct, enums are ints with
// NVIDIA's values (cudarc's cublas bindings) and a status is an int, 0 = success. cudarc looks
// up the _v2 names of create / destroy / set stream / set workspace; the plain names are
// exported too.
//
// Semantics are BLAS's, column-major: C (m x n, ldc) = alpha * op(A) * op(B) + beta * C, op
// per transa / transb, A, B, C FLOAT or HALF (A and B alike; C HALF only with HALF inputs, as
// cuBLAS's CUBLAS_COMPUTE_32F table has it), alpha / beta floats, any algorithm. C is not read
// when beta == 0. Products accumulate in double; the epilogue is computed in float and rounded
// once at the store.
//
// Stream order: nothing is computed inline. Each call copies its parameters (alpha / beta
// values, the pointers as they are) into a heap job and hands it to the driver's
// fakecuda_enqueue on the handle's stream; the driver runs it in stream order, or records it
// while a CUDA graph is captured and runs it at every replay (so a job never changes itself).
// Everything is validated before enqueueing, so a job cannot fail.
//
// Build: g++ -std=c++20 -O2 -shared -fPIC -w -o libcublas.so.12 blas.cpp -L<fake libcuda dir> -lcuda
// Standalone (no driver, work runs at once): add -DFAKE_STANDALONE and drop -lcuda.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "enqueue.h"
#include "half.h"

// ---- NVIDIA's enum values (cudarc's cublas/sys/mod.rs) ---------------------------------------

enum : int {
    STATUS_SUCCESS = 0,
    STATUS_NOT_INITIALIZED = 1,
    STATUS_ALLOC_FAILED = 3,
    STATUS_INVALID_VALUE = 7,
    STATUS_NOT_SUPPORTED = 15,
};
enum : int { OP_N = 0, OP_T = 1, OP_C = 2 };  // OP_C is OP_T for real types
enum : int { R_32F = 0, R_16F = 2 };          // cudaDataType
// cublasComputeType_t variants with fp32 accumulation (alpha / beta are floats for all).
enum : int {
    COMPUTE_32F = 68,
    COMPUTE_32F_PEDANTIC = 69,
    COMPUTE_32F_FAST_16F = 74,
    COMPUTE_32F_FAST_16BF = 75,
    COMPUTE_32F_FAST_TF32 = 77,
};

// ---- Handle --------------------------------------------------------------------------------

struct FakeBlasHandle {
    void* stream = nullptr;  // null: the legacy default stream, valid
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
    int math_mode = 0;  // CUBLAS_DEFAULT_MATH; recorded only
};

// ---- Helpers -------------------------------------------------------------------------------

static float load(const void* p, int64_t i, int type) {
    if (type == R_16F) return half_to_float(static_cast<const uint16_t*>(p)[i]);
    return static_cast<const float*>(p)[i];
}
static void store(void* p, int64_t i, int type, float v) {
    if (type == R_16F)
        static_cast<uint16_t*>(p)[i] = float_to_half(v);
    else
        static_cast<float*>(p)[i] = v;
}
static int64_t max1(int64_t v) { return v > 1 ? v : 1; }

// ---- The GEMM job --------------------------------------------------------------------------

struct GemmJob {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const void* a;
    int a_type;
    int64_t lda, stride_a;
    const void* b;
    int b_type;
    int64_t ldb, stride_b;
    void* c;
    int c_type;
    int64_t ldc, stride_c;
    int64_t batch;
};

// Rows of C per block: the block's accumulators (4 columns of doubles) and the block of op(A)
// it streams stay in cache.
constexpr int64_t ROW_BLOCK = 256;
constexpr int64_t COL_BLOCK = 4;

static void run_gemm(void* arg) {
    const GemmJob& j = *static_cast<const GemmJob*>(arg);
    const int64_t m = j.m, n = j.n, k = j.k;
    const bool product = j.alpha != 0 && k > 0;  // cuBLAS reads neither A nor B when alpha == 0
    // op(A) column-major m x k (opa[p*m + i]) and op(B) with each column contiguous (opb[q*k + p]).
    float* opa = product ? static_cast<float*>(std::malloc(size_t(m * k) * sizeof(float))) : nullptr;
    float* opb = product ? static_cast<float*>(std::malloc(size_t(k * n) * sizeof(float))) : nullptr;
    double* acc = static_cast<double*>(std::malloc(size_t(COL_BLOCK * ROW_BLOCK) * sizeof(double)));
    if ((product && (!opa || !opb)) || !acc) {
        // Out of host memory mid-stream: nothing sensible to report through; leave C as it is.
        std::free(opa), std::free(opb), std::free(acc);
        return;
    }
    for (int64_t batch = 0; batch < j.batch; batch++) {
        const int64_t a0 = batch * j.stride_a, b0 = batch * j.stride_b, c0 = batch * j.stride_c;
        if (product) {
            // op(A)(i, p) is A[i + p*lda], transposed A[p + i*lda].
            for (int64_t p = 0; p < k; p++)
                for (int64_t i = 0; i < m; i++)
                    opa[p * m + i] = load(j.a, a0 + (j.trans_a ? p + i * j.lda : i + p * j.lda), j.a_type);
            // op(B)(p, q) is B[p + q*ldb], transposed B[q + p*ldb].
            for (int64_t q = 0; q < n; q++)
                for (int64_t p = 0; p < k; p++)
                    opb[q * k + p] = load(j.b, b0 + (j.trans_b ? q + p * j.ldb : p + q * j.ldb), j.b_type);
        }
        for (int64_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
            const int64_t rows = m - i0 < ROW_BLOCK ? m - i0 : ROW_BLOCK;
            for (int64_t q0 = 0; q0 < n; q0 += COL_BLOCK) {
                const int64_t cols = n - q0 < COL_BLOCK ? n - q0 : COL_BLOCK;
                for (int64_t t = 0; t < cols * ROW_BLOCK; t++) acc[t] = 0;
                if (product) {
                    for (int64_t p = 0; p < k; p++) {
                        const float* a = opa + p * m + i0;
                        for (int64_t qq = 0; qq < cols; qq++) {
                            const double bv = opb[(q0 + qq) * k + p];
                            double* out = acc + qq * ROW_BLOCK;
                            for (int64_t i = 0; i < rows; i++) out[i] += a[i] * bv;
                        }
                    }
                }
                // Epilogue: C = alpha * acc + beta * C, C unread when beta == 0.
                for (int64_t qq = 0; qq < cols; qq++) {
                    for (int64_t i = 0; i < rows; i++) {
                        const int64_t at = c0 + (i0 + i) + (q0 + qq) * j.ldc;
                        float v = j.alpha * (float)acc[qq * ROW_BLOCK + i];
                        if (j.beta != 0) v += j.beta * load(j.c, at, j.c_type);
                        store(j.c, at, j.c_type, v);
                    }
                }
            }
        }
    }
    std::free(opa), std::free(opb), std::free(acc);
}

static void drop_gemm(void* arg) { delete static_cast<GemmJob*>(arg); }

// Validates one (strided-batched) GEMM as cuBLAS does and enqueues it.
static int gemm(FakeBlasHandle* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                const void* a, int a_type, int lda, long long stride_a, const void* b, int b_type, int ldb,
                long long stride_b, const void* beta, void* c, int c_type, int ldc, long long stride_c,
                int batch, int compute) {
    if (!handle) return STATUS_NOT_INITIALIZED;
    auto valid_op = [](int op) { return op == OP_N || op == OP_T || op == OP_C; };
    if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0 || batch < 0)
        return STATUS_INVALID_VALUE;
    const bool ta = transa != OP_N, tb = transb != OP_N;
    if (lda < max1(ta ? k : m) || ldb < max1(tb ? n : k) || ldc < max1(m)) return STATUS_INVALID_VALUE;
    if (!alpha || !beta) return STATUS_INVALID_VALUE;
    switch (compute) {
        case COMPUTE_32F:
        case COMPUTE_32F_PEDANTIC:
        case COMPUTE_32F_FAST_16F:
        case COMPUTE_32F_FAST_16BF:
        case COMPUTE_32F_FAST_TF32:
            break;
        default:
            return STATUS_NOT_SUPPORTED;
    }
    if ((a_type != R_32F && a_type != R_16F) || b_type != a_type) return STATUS_NOT_SUPPORTED;
    if (c_type != R_32F && !(c_type == R_16F && a_type == R_16F)) return STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0 || batch == 0) return STATUS_SUCCESS;  // nothing to do
    GemmJob* job = new (std::nothrow) GemmJob{};
    if (!job) return STATUS_ALLOC_FAILED;
    *job = GemmJob{ta, tb, m, n, k,
                   *static_cast<const float*>(alpha), *static_cast<const float*>(beta),
                   a, a_type, lda, stride_a,
                   b, b_type, ldb, stride_b,
                   c, c_type, ldc, stride_c,
                   batch};
    enqueue(handle->stream, run_gemm, job, drop_gemm);
    return STATUS_SUCCESS;
}

// ---- Exported API ------------------------------------------------------------------------

#define API extern "C" __attribute__((visibility("default")))

API int cublasCreate_v2(FakeBlasHandle** handle) {
    if (!handle) return STATUS_INVALID_VALUE;
    *handle = new (std::nothrow) FakeBlasHandle;
    return *handle ? STATUS_SUCCESS : STATUS_ALLOC_FAILED;
}
API int cublasCreate(FakeBlasHandle** handle) { return cublasCreate_v2(handle); }

API int cublasDestroy_v2(FakeBlasHandle* handle) {
    if (!handle) return STATUS_NOT_INITIALIZED;
    delete handle;  // queued jobs hold no reference to it
    return STATUS_SUCCESS;
}
API int cublasDestroy(FakeBlasHandle* handle) { return cublasDestroy_v2(handle); }

API int cublasSetStream_v2(FakeBlasHandle* handle, void* stream) {
    if (!handle) return STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return STATUS_SUCCESS;
}
API int cublasSetStream(FakeBlasHandle* handle, void* stream) { return cublasSetStream_v2(handle, stream); }

// Recorded only: no GEMM here needs workspace.
API int cublasSetWorkspace_v2(FakeBlasHandle* handle, void* workspace, size_t bytes) {
    if (!handle) return STATUS_NOT_INITIALIZED;
    handle->workspace = workspace;
    handle->workspace_bytes = bytes;
    return STATUS_SUCCESS;
}
API int cublasSetWorkspace(FakeBlasHandle* handle, void* workspace, size_t bytes) {
    return cublasSetWorkspace_v2(handle, workspace, bytes);
}

// Recorded only: the arithmetic is the same (fp32-exact inputs, double accumulation) in every
// mode. Valid modes: 0 DEFAULT, 1 TENSOR_OP, 2 PEDANTIC, 3 TF32_TENSOR_OP, each optionally with
// 16 (DISALLOW_REDUCED_PRECISION_REDUCTION).
API int cublasSetMathMode(FakeBlasHandle* handle, int mode) {
    if (!handle) return STATUS_NOT_INITIALIZED;
    if ((mode & ~16) < 0 || (mode & ~16) > 3) return STATUS_INVALID_VALUE;
    handle->math_mode = mode;
    return STATUS_SUCCESS;
}

API int cublasGemmEx(FakeBlasHandle* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                     const void* a, int a_type, int lda, const void* b, int b_type, int ldb, const void* beta,
                     void* c, int c_type, int ldc, int compute, int algo) {
    (void)algo;
    return gemm(handle, transa, transb, m, n, k, alpha, a, a_type, lda, 0, b, b_type, ldb, 0, beta, c, c_type,
                ldc, 0, 1, compute);
}

// Strides in elements, per batch.
API int cublasGemmStridedBatchedEx(FakeBlasHandle* handle, int transa, int transb, int m, int n, int k,
                                   const void* alpha, const void* a, int a_type, int lda, long long stride_a,
                                   const void* b, int b_type, int ldb, long long stride_b, const void* beta,
                                   void* c, int c_type, int ldc, long long stride_c, int batch, int compute,
                                   int algo) {
    (void)algo;
    return gemm(handle, transa, transb, m, n, k, alpha, a, a_type, lda, stride_a, b, b_type, ldb, stride_b, beta,
                c, c_type, ldc, stride_c, batch, compute);
}
