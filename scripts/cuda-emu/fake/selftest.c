// The fake driver's own promises, checked by build.py after each build: a stream's work waits
// for the host to synchronise (so a missing synchronisation reads stale memory), a captured
// graph replays its work only when launched, and an access past an allocation's end faults.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

typedef unsigned long long CUdeviceptr;
int cuMemAlloc_v2(CUdeviceptr*, size_t);
int cuStreamCreate(void**, unsigned);
int cuMemsetD8Async(CUdeviceptr, unsigned char, size_t, void*);
int cuStreamSynchronize(void*);
int cuStreamBeginCapture_v2(void*, int);
int cuStreamEndCapture(void*, void**);
int cuGraphInstantiateWithFlags(void**, void*, unsigned long long);
int cuGraphLaunch(void*, void*);

static int failed;
static void expect(const char* what, int got, int want) {
    if (got != want) {
        fprintf(stderr, "fake driver self-test: %s: %d, expected %d\n", what, got, want);
        failed = 1;
    }
}

int main(void) {
    CUdeviceptr d;
    void *s, *g, *exec;
    cuMemAlloc_v2(&d, 16);
    cuStreamCreate(&s, 1);
    volatile unsigned char* p = (unsigned char*)d;
    expect("a new allocation's bytes", p[0], 0xFF);
    cuMemsetD8Async(d, 7, 16, s);
    expect("before the stream is synchronised", p[0], 0xFF);
    cuStreamSynchronize(s);
    expect("after it is", p[0], 7);
    cuStreamBeginCapture_v2(s, 0);
    cuMemsetD8Async(d, 9, 16, s);
    cuStreamEndCapture(s, &g);
    cuGraphInstantiateWithFlags(&exec, g, 0);
    expect("after capture", p[0], 7);
    cuGraphLaunch(exec, s);
    expect("after a graph launch, unsynchronised", p[0], 7);
    cuStreamSynchronize(s);
    expect("after a graph launch, synchronised", p[0], 9);
    pid_t child = fork();
    if (child == 0) {
        ((volatile unsigned char*)d)[256] = 1;  // past the allocation (16 bytes, rounded to 256)
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    expect("a write past the end faults", WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, 1);
    if (!failed) printf("fake driver self-test: ok\n");
    return failed;
}
