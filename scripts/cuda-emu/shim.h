// The CUDA subset our kernels use, emulated on the CPU so their arithmetic can be checked on a
// machine without a GPU (scripts/cuda-emu/check.py). Blocks run one after another; the threads
// of a block run as OS threads, with a barrier for __syncthreads, so `__shared__` (a function
// static here) is shared by the block as on the device. `__shfl_xor_sync` waits for every lane
// of its mask (per warp and mask), as the device's does. atomicAdd on unsigned words (the
// last-block counters) is emulated; blocks finishing in index order is one of the device's
// orders.
#include <algorithm>
#include <barrier>
#include <bit>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
using std::max;
using std::min;

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim, gridDim;
std::barrier<>* block_barrier;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
// Compiled with -ffp-contract=off: each operation rounds once, as the _rn intrinsics.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
template <typename T>
T __ldcg(const T* p) {
    return *p;
}
inline void __threadfence() {}
// One warp's shuffles: the lanes of each mask meet, publish their values, read their partner's,
// and meet again before the slots are reused.
struct Warp {
    struct Group {
        int arrived = 0;
        unsigned long long generation = 0;
        long long values[32];
    };
    std::mutex m;
    std::condition_variable cv;
    std::unordered_map<unsigned, Group> groups;

    void meet(std::unique_lock<std::mutex>& lock, Group& g, unsigned mask) {
        const unsigned long long mine = g.generation;
        if (++g.arrived == std::popcount(mask)) {
            g.arrived = 0;
            ++g.generation;
            cv.notify_all();
        } else {
            cv.wait(lock, [&] { return g.generation != mine; });
        }
    }
};
Warp* block_warps;

template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int off, int width) {
    static_assert(sizeof(T) <= sizeof(long long));
    const int lane = threadIdx.x & 31;
    if (!(mask >> lane & 1) || off >= width) abort();
    Warp& w = block_warps[threadIdx.x >> 5];
    std::unique_lock<std::mutex> lock(w.m);
    Warp::Group& g = w.groups[mask];
    memcpy(&g.values[lane], &v, sizeof(T));
    w.meet(lock, g, mask);
    T r;
    memcpy(&r, &g.values[lane ^ off], sizeof(T));
    w.meet(lock, g, mask);
    return r;
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int off) {
    return __shfl_xor_sync(mask, v, off, 32);
}
// Blocks run one after another, so only a block's own threads can race here.
std::mutex atomic_mutex;
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    std::lock_guard<std::mutex> lock(atomic_mutex);
    const unsigned old = *p;
    *p = old + v;
    return old;
}

// Runs `body` as every thread of a (gx, gy, gz) grid of `block`-thread blocks.
template <typename F>
void launch(unsigned gx, unsigned gy, unsigned gz, unsigned block, F body) {
    gridDim = {gx, gy, gz};
    blockDim = {block, 1, 1};
    for (unsigned bz = 0; bz < gz; ++bz)
        for (unsigned by = 0; by < gy; ++by)
            for (unsigned bx = 0; bx < gx; ++bx) {
                std::barrier<> bar(block);
                block_barrier = &bar;
                std::unique_ptr<Warp[]> warps(new Warp[(block + 31) / 32]);
                block_warps = warps.get();
                std::vector<std::thread> threads;
                for (unsigned t = 0; t < block; ++t)
                    threads.emplace_back([&, t] {
                        threadIdx = {t, 0, 0};
                        blockIdx = {bx, by, bz};
                        body();
                    });
                for (auto& th : threads) th.join();
            }
}
