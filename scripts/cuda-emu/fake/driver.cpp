// A fake CUDA driver (libcuda.so.1) for machines without a GPU: the runtime's CUDA backend,
// unchanged, runs against it. Device memory is host memory (a device pointer is a host
// address); a stream's work waits until the host synchronises with it, then runs in order (one
// "GPU": a global lock), so a missing synchronisation reads stale memory; stream capture records
// that work and a graph launch replays it; and a kernel launch runs the kernel
// compiled for the CPU by g++ from kernels/cuda/*.cu (build.py) on the fiber scheduler below.
// NVRTC stays real: the runtime still compiles every kernel, and the CUBIN is ignored here.
//
// What it checks that the per-kernel emulator (check.py) cannot: the Rust side's launch
// arguments, grids and scratch, the memory plan, the session's copies, fusions and CUDA-graph
// replay, end to end against the CPU backend. What it cannot: timing, the device's own f16
// arithmetic and code generation, and real cuDNN/cuBLAS (dnn.cpp and blas.cpp compute their
// results plainly).
//
// New allocations are filled with 0xFF bytes (NaN in f32 and f16), so a kernel that reads memory
// nothing wrote shows up in its outputs, and each ends at an inaccessible page, so an access past
// its end faults.
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "device.h"
#include "registry.h"

thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim, gridDim;

typedef int CUresult;
enum : int {
    OK = 0,
    INVALID_VALUE = 1,
    NOT_INITIALIZED = 3,
    INVALID_HANDLE = 400,
    NOT_FOUND = 500,
    LAUNCH_FAILED = 719,
    NOT_SUPPORTED = 801,
};

// ---------------------------------------------------------------------------------------------
// Kernels by name (each kernel file registers its own, registry.h).

std::map<std::string, Kernel>& kernels() {
    static std::map<std::string, Kernel> k;
    return k;
}
void fake_register(const char* name, Kernel k) { kernels()[name] = std::move(k); }

// ---------------------------------------------------------------------------------------------
// Fibers: one block's threads.

// Saves the callee-saved registers on this stack, stores its pointer in *from and continues on
// the stack `to` (x86-64 System V).
extern "C" void fake_switch(void** from, void* to);
asm(R"(
    .text
    .p2align 4
    .type fake_switch, @function
fake_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size fake_switch, .-fake_switch
)");

namespace {

constexpr size_t STACK = 64 << 10;
constexpr unsigned long long MAX_WAITS = 200'000'000ull;

struct Shfl {
    int arrived = 0;
    unsigned gen = 0;
    unsigned char vals[32][8];
};

// Fibers switch stacks by `fake_switch` (below): the callee-saved registers pushed, the stack
// pointer swapped, no system call (ucontext's functions each change the signal mask).
struct Fiber {
    void* sp = nullptr;
    bool done = false;
};

struct Block {
    std::vector<Fiber> fibers;
    void* sched = nullptr;
    unsigned n = 0, cur = 0, exited = 0;
    unsigned bar_arrived = 0, bar_gen = 0;
    std::unordered_map<unsigned long long, Shfl> shfl;
    unsigned long long waits = 0;
    const Kernel* kernel = nullptr;
    void** params = nullptr;
};
thread_local Block* g_block;

// Set on the threads of a resident launch (one per block, all at once).
thread_local bool g_resident = false;

// Each OS thread's fiber stacks, mapped once and reused for every block it runs. On the pool's
// workers each stack's lowest page is inaccessible, so a fiber overflowing its stack faults
// instead of writing into its neighbour's. (Not on a resident launch's threads: a guard page is
// a mapping of its own, and a hundred blocks of 256 would pass the kernel's limit on mappings.)
struct Stacks {
    char* base = nullptr;
    size_t len = 0;
    char* get(unsigned n) {
        if (n * STACK > len) {
            if (base) munmap(base, len);
            len = n * STACK;
            base = (char*)mmap(nullptr, len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (base == MAP_FAILED) fake_trap("cannot map fiber stacks");
            for (unsigned t = 0; !g_resident && t < n; ++t)
                if (mprotect(base + t * STACK, 4096, PROT_NONE) != 0) fake_trap("cannot guard fiber stacks");
        }
        return base;
    }
    ~Stacks() {
        if (base) munmap(base, len);
    }
};
thread_local Stacks g_stacks;

void yield() {
    Block& b = *g_block;
    if (++b.waits > MAX_WAITS) fake_trap("a block's threads wait on each other forever (deadlock)");
    fake_switch(&b.fibers[b.cur].sp, b.sched);
}

void release_barrier_if_all(Block& b) {
    if (b.bar_arrived > 0 && b.bar_arrived + b.exited >= b.n) {
        b.bar_arrived = 0;
        ++b.bar_gen;
        b.waits = 0;  // progress: the deadlock count starts again
    }
}

void fiber_main() {
    Block& b = *g_block;
    b.kernel->run(b.params);
    b.fibers[b.cur].done = true;
    ++b.exited;
    release_barrier_if_all(b);
    void* gone;
    fake_switch(&gone, b.sched);  // never resumed
    abort();
}

void run_block(const Kernel& k, void** params, Dim3 bidx, unsigned threads) {
    Block b;
    b.n = threads;
    b.kernel = &k;
    b.params = params;
    b.fibers.resize(threads);
    char* stacks = g_stacks.get(threads);
    for (unsigned t = 0; t < threads; ++t) {
        // The new stack as fake_switch leaves a suspended one: six registers, then the address
        // to return to (fiber_main, entered with the stack aligned as after a call).
        void** top = (void**)(stacks + (t + 1) * STACK);
        *--top = nullptr;
        *--top = (void*)&fiber_main;
        for (int r = 0; r < 6; ++r) *--top = nullptr;
        b.fibers[t].sp = top;
    }
    g_block = &b;
    blockIdx = bidx;
    // Odd blocks take their threads in reverse order: a thread reading another's write with no
    // barrier between then sees it missing in one of the two orders.
    const bool reverse = (bidx.x + bidx.y + bidx.z) & 1;
    for (unsigned live = threads; live > 0;) {
        live = 0;
        for (unsigned i = 0; i < threads; ++i) {
            const unsigned t = reverse ? threads - 1 - i : i;
            Fiber& f = b.fibers[t];
            if (f.done) continue;
            threadIdx = {t, 0, 0};
            b.cur = t;
            fake_switch(&b.sched, f.sp);
            live += !f.done;
        }
    }
    g_block = nullptr;
}

// Runs the blocks of large grids: a few OS threads, started once, each with its fiber stacks.
struct Pool {
    std::mutex m;
    std::condition_variable work, idle;
    std::vector<std::thread> threads;
    unsigned long long generation = 0, next = 0, total = 0, finished = 0;
    std::function<void(unsigned long long)> job;

    Pool() {
        const unsigned n = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
        for (unsigned i = 0; i < n; ++i) threads.emplace_back([this] { serve(); });
        for (auto& t : threads) t.detach();
    }
    void serve() {
        unsigned long long seen = 0;
        std::unique_lock<std::mutex> lock(m);
        for (;;) {
            work.wait(lock, [&] { return generation != seen && next < total; });
            seen = generation;
            while (next < total) {
                const unsigned long long i = next++;
                lock.unlock();
                job(i);
                lock.lock();
                if (++finished == total) idle.notify_all();
            }
        }
    }
    // Runs job(0) … job(total − 1), blocks in index order, and returns when all have.
    void run(unsigned long long n, std::function<void(unsigned long long)> f) {
        std::unique_lock<std::mutex> lock(m);
        job = std::move(f);
        total = n;
        next = finished = 0;
        ++generation;
        work.notify_all();
        idle.wait(lock, [&] { return finished == total; });
        total = 0;
    }
};
Pool& pool() {
    static Pool* p = new Pool;  // never destroyed: its threads outlive static destructors
    return *p;
}

}  // namespace

void fake_syncthreads() {
    Block& b = *g_block;
    const unsigned gen = b.bar_gen;
    ++b.bar_arrived;
    release_barrier_if_all(b);
    while (b.bar_gen == gen) yield();
}

void fake_shfl_meet(unsigned mask, const void* mine, void* theirs, int size, int partner) {
    Block& b = *g_block;
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    Shfl& g = b.shfl[(unsigned long long)warp << 32 | mask];
    const int n = std::popcount(mask);
    auto meet = [&] {
        const unsigned gen = g.gen;
        if (++g.arrived == n) {
            g.arrived = 0;
            ++g.gen;
            b.waits = 0;
        } else {
            while (g.gen == gen) yield();
        }
    };
    memcpy(g.vals[lane], mine, size);
    meet();
    memcpy(theirs, g.vals[partner], size);
    meet();
}

void fake_trap(const char* why) {
    fprintf(stderr, "fake CUDA: kernel trapped: %s (block %u,%u,%u thread %u)\n", why, blockIdx.x,
            blockIdx.y, blockIdx.z, threadIdx.x);
    abort();
}

void fake_poll(unsigned polls) {
    if ((polls & 255) == 0) sched_yield();
    if (polls >= (1u << 30)) fake_trap("a poll for another block's word never ended");
}

// ---------------------------------------------------------------------------------------------
// Streams, graphs, events.

namespace {

using Op = std::function<void()>;
std::recursive_mutex gpu;  // one GPU: work runs one op at a time

struct Graph {
    std::vector<Op> ops;
};
// A stream's work waits in `pending` until the host synchronises with it (a stream or context
// synchronisation, an event's, a synchronous copy, a free): so a result the host reads without
// synchronising is stale here, as it can be on a GPU — a missing synchronisation fails.
struct Stream {
    Graph* capture = nullptr;
    bool non_blocking = false;  // CU_STREAM_NON_BLOCKING: the legacy stream does not wait for it
    std::vector<Op> pending;
};
std::vector<Stream*> streams;  // guarded by `gpu`

double now_ms() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Runs the work `s` holds, in order.
void flush(Stream* s) {
    std::lock_guard<std::recursive_mutex> lock(gpu);
    std::vector<Op> ops;
    ops.swap(s->pending);
    for (auto& op : ops) op();
}
// Every stream's work (`blocking_only`: the streams the legacy stream waits for).
void flush_all(bool blocking_only = false) {
    std::lock_guard<std::recursive_mutex> lock(gpu);
    for (Stream* s : streams)
        if (!blocking_only || !s->non_blocking) flush(s);
}

void enqueue(void* stream, Op op) {
    std::lock_guard<std::recursive_mutex> lock(gpu);
    auto* s = (Stream*)stream;
    if (s && s->capture) {
        s->capture->ops.push_back(std::move(op));
    } else if (s) {
        s->pending.push_back(std::move(op));
    } else {
        // The legacy stream: after the blocking streams' work, and (here) at once.
        flush_all(true);
        op();
    }
}

struct Event {
    double t = 0;
    Stream* stream = nullptr;  // where it was last recorded
};


}  // namespace

// Whether [p, p + n) lies in pinned host memory this driver allocated (an asynchronous copy
// from or to any other host memory is staged at the call, as the driver does).
bool pinned(const void* p, size_t n);

extern "C" void fakecuda_enqueue(void* stream, void (*fn)(void*), void* arg, void (*drop)(void*)) {
    auto shared = std::shared_ptr<void>(arg, drop);
    enqueue(stream, [fn, shared] { fn(shared.get()); });
}

// ---------------------------------------------------------------------------------------------
// The driver API (the entry points cudarc and the runtime call).

extern "C" {

typedef unsigned long long CUdeviceptr;

CUresult cuInit(unsigned) { return OK; }
// NVRTC opens the driver too and asks for its private tables: there are none here.
CUresult cuGetExportTable(const void** table, const void*) {
    *table = nullptr;
    return NOT_SUPPORTED;
}
CUresult cuDriverGetVersion(int* v) {
    *v = 12080;
    return OK;
}
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return OK;
}
CUresult cuDeviceGet(int* d, int ordinal) {
    if (ordinal != 0) return INVALID_VALUE;
    *d = 0;
    return OK;
}
// EDGEFUSE_FAKE_GPU_INTEGRATED=1: an integrated GPU (a Jetson's unified memory), so the
// session maps its inputs and outputs instead of copying them.
static bool integrated() {
    static const bool on = [] {
        const char* v = getenv("EDGEFUSE_FAKE_GPU_INTEGRATED");
        return v && *v && strcmp(v, "0") != 0;
    }();
    return on;
}
CUresult cuDeviceGetName(char* name, int len, int) {
    snprintf(name, len, integrated() ? "Emulated integrated GPU (scripts/cuda-emu/fake)"
                                     : "Emulated GPU (scripts/cuda-emu/fake)");
    return OK;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, int) {
    *bytes = size_t(16) << 30;
    return OK;
}
CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    *free = *total = size_t(16) << 30;
    return OK;
}
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
    switch (attr) {
        case 1: *v = 1024; break;          // max threads per block
        case 2: *v = 1024; break;          // block dims
        case 3: *v = 1024; break;
        case 4: *v = 64; break;
        case 5: *v = 2147483647; break;    // grid dims
        case 6: *v = 65535; break;
        case 7: *v = 65535; break;
        case 8: *v = 49152; break;         // shared memory per block
        case 10: *v = 32; break;           // warp size
        case 16: *v = 132; break;          // SMs (an H100's)
        case 18: *v = integrated(); break;
        case 19: *v = 1; break;            // can map host memory
        case 39: *v = 2048; break;         // threads per SM
        case 41: *v = 1; break;            // unified addressing
        case 75: *v = 9; break;            // compute capability 9.0
        case 76: *v = 0; break;
        case 81: *v = 233472; break;       // shared memory per SM
        case 82: *v = 65536; break;        // registers per SM
        case 97: *v = 232448; break;       // opt-in shared memory per block
        case 106: *v = 32; break;          // blocks per SM
        case 115: *v = 0; break;           // memory pools: no (cuMemAlloc, not cuMemAllocAsync)
        default: *v = 0; break;
    }
    return OK;
}

static int the_context;
CUresult cuDevicePrimaryCtxRetain(void** ctx, int) {
    *ctx = &the_context;
    return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return OK; }
CUresult cuDevicePrimaryCtxRelease(int) { return OK; }
CUresult cuCtxSetCurrent(void*) { return OK; }
CUresult cuCtxGetCurrent(void** ctx) {
    *ctx = &the_context;
    return OK;
}
CUresult cuCtxPushCurrent_v2(void*) { return OK; }
CUresult cuCtxPopCurrent_v2(void** ctx) {
    if (ctx) *ctx = &the_context;
    return OK;
}
CUresult cuCtxGetDevice(int* d) {
    *d = 0;
    return OK;
}
CUresult cuCtxSynchronize() {
    flush_all();
    return OK;
}

CUresult cuStreamCreate(void** s, unsigned flags) {
    std::lock_guard<std::recursive_mutex> lock(gpu);
    auto* st = new Stream;
    st->non_blocking = flags & 1;
    streams.push_back(st);
    *s = st;
    return OK;
}
CUresult cuStreamCreateWithPriority(void** s, unsigned flags, int) { return cuStreamCreate(s, flags); }
CUresult cuCtxGetStreamPriorityRange(int* least, int* greatest) {
    *least = 0;
    *greatest = -5;
    return OK;
}
CUresult cuStreamDestroy_v2(void* s) {
    std::lock_guard<std::recursive_mutex> lock(gpu);
    auto* st = (Stream*)s;
    flush(st);  // its work still completes
    streams.erase(std::find(streams.begin(), streams.end(), st));
    delete st;
    return OK;
}
CUresult cuStreamSynchronize(void* s) {
    if (s)
        flush((Stream*)s);
    else
        flush_all(true);
    return OK;
}
CUresult cuStreamQuery(void* s) { return cuStreamSynchronize(s); }
// The event's stream runs up to now (earlier than the waiting stream needs it: allowed).
CUresult cuStreamWaitEvent(void*, void* e, unsigned) {
    if (auto* st = ((Event*)e)->stream) flush(st);
    return OK;
}
CUresult cuStreamBeginCapture_v2(void* s, int) {
    if (!s) return NOT_SUPPORTED;
    auto* st = (Stream*)s;
    if (st->capture) return INVALID_VALUE;
    st->capture = new Graph;
    return OK;
}
CUresult cuStreamEndCapture(void* s, void** graph) {
    auto* st = (Stream*)s;
    if (!st || !st->capture) return INVALID_VALUE;
    *graph = st->capture;
    st->capture = nullptr;
    return OK;
}
CUresult cuStreamIsCapturing(void* s, int* status) {
    *status = s && ((Stream*)s)->capture ? 1 : 0;
    return OK;
}
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) {
    *exec = new Graph(*(Graph*)graph);
    return OK;
}
CUresult cuGraphUpload(void*, void*) { return OK; }
CUresult cuGraphLaunch(void* exec, void* stream) {
    auto* g = (Graph*)exec;
    enqueue(stream, [g] {
        for (auto& op : g->ops) op();
    });
    return OK;
}
CUresult cuGraphDestroy(void* g) {
    delete (Graph*)g;
    return OK;
}
CUresult cuGraphExecDestroy(void* g) {
    delete (Graph*)g;
    return OK;
}

CUresult cuEventCreate(void** e, unsigned) {
    *e = new Event;
    return OK;
}
CUresult cuEventDestroy_v2(void* e) {
    delete (Event*)e;
    return OK;
}
CUresult cuEventRecord(void* e, void* stream) {
    auto* ev = (Event*)e;
    {
        std::lock_guard<std::recursive_mutex> lock(gpu);
        auto* st = (Stream*)stream;
        if (!(st && st->capture)) ev->stream = st;
    }
    enqueue(stream, [ev] { ev->t = now_ms(); });
    return OK;
}
CUresult cuEventRecordWithFlags(void* e, void* stream, unsigned) { return cuEventRecord(e, stream); }
CUresult cuEventSynchronize(void* e) {
    if (auto* st = ((Event*)e)->stream) flush(st);
    return OK;
}
CUresult cuEventQuery(void* e) { return cuEventSynchronize(e); }
CUresult cuEventElapsedTime(float* ms, void* a, void* b) {
    cuEventSynchronize(a);
    cuEventSynchronize(b);
    *ms = float(((Event*)b)->t - ((Event*)a)->t);
    return OK;
}
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { return cuEventElapsedTime(ms, a, b); }

// Each allocation ends where an inaccessible page begins (its size rounded to CUDA's 256
// bytes), so a kernel or copy reaching past an allocation's end faults at once, naming the
// access, instead of corrupting a neighbour: compute-sanitizer's out-of-bounds check, in part.
struct Mapping {
    void* base;
    size_t len;   // the mapping's, guard page included
    size_t user;  // the allocation's, rounded to 256
    bool host;    // pinned host memory
};
static std::mutex maps_mutex;
static std::map<uintptr_t, Mapping> maps;  // by the allocation's address
static void* filled(size_t bytes, bool host) {
    const size_t len = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
    const size_t page = 4096, body = (len + page - 1) / page * page;
    void* base = mmap(nullptr, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    if (mprotect((char*)base + body, page, PROT_NONE) != 0) {
        munmap(base, body + page);
        return nullptr;
    }
    void* p = (char*)base + (body - len);
    memset(p, 0xFF, len);
    std::lock_guard<std::mutex> lock(maps_mutex);
    maps[(uintptr_t)p] = {base, body + page, len, host};
    return p;
}
// Frees like the driver: after every stream's work (cuMemFree synchronises).
static CUresult release(void* p) {
    flush_all();
    std::lock_guard<std::mutex> lock(maps_mutex);
    auto it = maps.find((uintptr_t)p);
    if (it == maps.end()) return INVALID_VALUE;
    munmap(it->second.base, it->second.len);
    maps.erase(it);
    return OK;
}
extern "C++" {
bool pinned(const void* p, size_t n) {
    std::lock_guard<std::mutex> lock(maps_mutex);
    auto it = maps.upper_bound((uintptr_t)p);
    if (it == maps.begin()) return false;
    --it;
    return it->second.host && (uintptr_t)p + n <= it->first + it->second.user;
}
}
CUresult cuMemAlloc_v2(CUdeviceptr* d, size_t bytes) {
    void* p = filled(bytes, false);
    if (!p) return 2;  // out of memory
    *d = (CUdeviceptr)p;
    return OK;
}
CUresult cuMemFree_v2(CUdeviceptr d) { return release((void*)d); }
CUresult cuMemAllocHost_v2(void** p, size_t bytes) {
    *p = filled(bytes, true);
    return *p ? OK : 2;
}
CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned) { return cuMemAllocHost_v2(p, bytes); }
CUresult cuMemFreeHost(void* p) { return release(p); }
CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* d, void* p, unsigned) {
    *d = (CUdeviceptr)p;
    return OK;
}

static CUresult copy(void* stream, void* dst, const void* src, size_t n) {
    enqueue(stream, [dst, src, n] { memmove(dst, src, n); });
    return OK;
}
// Synchronous copies run on the legacy stream and return when done.
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* h, size_t n) { return copy(nullptr, (void*)d, h, n); }
CUresult cuMemcpyDtoH_v2(void* h, CUdeviceptr d, size_t n) { return copy(nullptr, h, (void*)d, n); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr a, CUdeviceptr b, size_t n) { return copy(nullptr, (void*)a, (void*)b, n); }
// From pageable memory the driver stages the bytes before it returns; from pinned memory it
// reads them when the copy runs (a graph replay reads them at each replay).
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* h, size_t n, void* s) {
    auto* st = (Stream*)s;
    if (pinned(h, n) || (st && st->capture)) return copy(s, (void*)d, h, n);
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char*)h, (const unsigned char*)h + n);
    enqueue(s, [d, staged] { memcpy((void*)d, staged->data(), staged->size()); });
    return OK;
}
// Into pageable memory the call returns when the copy is done.
CUresult cuMemcpyDtoHAsync_v2(void* h, CUdeviceptr d, size_t n, void* s) {
    auto* st = (Stream*)s;
    CUresult r = copy(s, h, (void*)d, n);
    if (!pinned(h, n) && !(st && st->capture)) cuStreamSynchronize(s);
    return r;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr a, CUdeviceptr b, size_t n, void* s) {
    return copy(s, (void*)a, (void*)b, n);
}
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void* s) {
    enqueue(s, [d, v, n] { memset((void*)d, v, n); });
    return OK;
}
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return cuMemsetD8Async(d, v, n, nullptr); }
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, void* s) {
    enqueue(s, [d, v, n] {
        for (size_t i = 0; i < n; ++i) ((unsigned*)d)[i] = v;
    });
    return OK;
}
CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned v, size_t n) { return cuMemsetD32Async(d, v, n, nullptr); }

struct Module {};
CUresult cuModuleLoadData(void** m, const void*) {
    *m = new Module;
    return OK;
}
CUresult cuModuleUnload(void* m) {
    delete (Module*)m;
    return OK;
}
CUresult cuModuleGetFunction(void** f, void*, const char* name) {
    auto it = kernels().find(name);
    if (it == kernels().end()) return NOT_FOUND;
    *f = (void*)&it->second;
    return OK;
}
CUresult cuFuncGetAttribute(int* v, int attr, void*) {
    switch (attr) {
        case 0: *v = 1024; break;  // max threads per block
        case 4: *v = 32; break;    // registers
        default: *v = 0; break;
    }
    return OK;
}
CUresult cuFuncSetAttribute(void*, int, int) { return OK; }
CUresult cuFuncSetCacheConfig(void*, int) { return OK; }
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, void*, int block, size_t) {
    *n = std::max(1, std::min(32, 2048 / std::max(block, 1)));
    return OK;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
    auto* k = (const Kernel*)f;
    if (!k || extra || !params) return INVALID_VALUE;
    if (by != 1 || bz != 1 || bx == 0 || bx > 1024 || gx == 0 || gy == 0 || gz == 0) {
        fprintf(stderr, "fake CUDA: %s launched with block (%u,%u,%u), grid (%u,%u,%u)\n",
                k->name.c_str(), bx, by, bz, gx, gy, gz);
        return INVALID_VALUE;
    }
    (void)shared;
    // The arguments' values as they are now (a captured launch replays with these).
    auto bytes = std::make_shared<std::vector<unsigned char>>();
    std::vector<size_t> offsets;
    for (size_t i = 0; i < k->sizes.size(); ++i) {
        const size_t a = std::min<size_t>(k->sizes[i], 8), off = (bytes->size() + a - 1) / a * a;
        offsets.push_back(off);
        bytes->resize(off + k->sizes[i]);
        memcpy(bytes->data() + off, params[i], k->sizes[i]);
    }
    enqueue(stream, [k, bytes, offsets, gx, gy, gz, bx] {
        std::vector<void*> p;
        for (size_t off : offsets) p.push_back(bytes->data() + off);
        gridDim = {gx, gy, gz};
        blockDim = {bx, 1, 1};
        const unsigned long long total = (unsigned long long)gx * gy * gz;
        auto at = [&](unsigned long long i) {
            return Dim3{unsigned(i % gx), unsigned(i / gx % gy), unsigned(i / gx / gy)};
        };
        if (k->resident) {
            // Every block at once, each on an OS thread: the kernel hands words between blocks.
            if (total > 1024) fake_trap("a resident kernel's grid of over 1024 blocks");
            std::vector<std::thread> threads;
            for (unsigned long long i = 0; i < total; ++i)
                threads.emplace_back([&, i] {
                    g_resident = true;
                    run_block(*k, p.data(), at(i), bx);
                });
            for (auto& t : threads) t.join();
        } else {
            pool().run(total, [&](unsigned long long i) { run_block(*k, p.data(), at(i), bx); });
        }
    });
    return OK;
}

CUresult cuGetErrorString(CUresult e, const char** s) {
    static thread_local char buf[64];
    snprintf(buf, sizeof buf, "fake CUDA error %d", e);
    *s = buf;
    return OK;
}
CUresult cuGetErrorName(CUresult e, const char** s) { return cuGetErrorString(e, s); }

}  // extern "C"
