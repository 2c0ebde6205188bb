// The CUDA device-side subset our kernels use, for the emulated GPU (scripts/cuda-emu/fake):
// each kernel file is compiled by g++ with this header in place of NVRTC's built-ins, and the
// fake driver (driver.cpp) runs its launches on the CPU.
//
// A block's threads are fibers on one OS thread (driver.cpp's scheduler), switched only where a
// thread waits: `__syncthreads`, a warp shuffle, or a poll for another block's word. So
// `__shared__` is a thread_local static (one copy per block's OS thread), and `threadIdx` is set
// by the scheduler before each switch. A kernel's blocks run on a few worker threads, in index
// order; those of the LSTM sequence kernels (which hand words between blocks) all at once, each
// on an OS thread of its own.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
using std::max;
using std::min;

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
extern thread_local Dim3 threadIdx, blockIdx;
extern Dim3 blockDim, gridDim;

#ifdef FAKE_DISCOVER
#define __global__ FAKEGLOBAL
#else
#define __global__
#endif
#define __device__
#define __forceinline__ inline
#define __shared__ static thread_local

// Provided by driver.cpp.
void fake_syncthreads();
void fake_shfl_meet(unsigned mask, const void* mine, void* theirs, int size, int partner);
[[noreturn]] void fake_trap(const char* why);
void fake_poll(unsigned polls);

inline void __syncthreads() { fake_syncthreads(); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] inline void __trap() { fake_trap("__trap"); }

// Compiled with -ffp-contract=off: each operation rounds once, as the _rn intrinsics.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline unsigned __float_as_uint(float f) { return std::bit_cast<unsigned>(f); }
template <typename T>
T __ldcg(const T* p) {
    T v;
    __atomic_load(p, &v, __ATOMIC_ACQUIRE);
    return v;
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int off, int width) {
    static_assert(sizeof(T) <= 8);
    const int lane = threadIdx.x & 31;
    if (!(mask >> lane & 1) || off >= width || !(mask >> (lane ^ off) & 1))
        fake_trap("__shfl_xor_sync: lane or partner outside the mask");
    T r;
    fake_shfl_meet(mask, &v, &r, sizeof(T), lane ^ off);
    return r;
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int off) {
    return __shfl_xor_sync(mask, v, off, 32);
}

// Blocks may run on several OS threads at once: real atomics.
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline float atomicAdd(float* p, float v) {
    float old = *p, want;
    do {
        want = old + v;
    } while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return old;
}
