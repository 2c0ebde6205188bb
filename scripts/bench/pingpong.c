/* How far apart two cores are: threads pinned to CPUs 0 and 1 hand one cache line back and
 * forth; prints the mean round trip in ns. On the benchmark's 2-vCPU VM it reads 55-77 ns when
 * the vCPUs share a die and 310-370 ns when they do not, which moves every multi-threaded
 * latency (BENCHMARKS.md, "Session of 2026-11-30 04:00"). bench.py builds it with `cc` and
 * prints one reading per round. Usage: pingpong [ROUND_TRIPS] */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic int flag __attribute__((aligned(64)));
static long trips = 200000;

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *echo(void *arg) {
    (void)arg;
    if (pin(1) != 0) return (void *)1;
    for (long i = 0; i < trips; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {}
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc > 1) trips = atol(argv[1]);
    if (trips <= 0 || pin(0) != 0) {
        fprintf(stderr, "pingpong: needs a positive count and CPUs 0 and 1\n");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, echo, NULL) != 0) return 1;
    double t0 = now();
    for (long i = 0; i < trips; i++) {
        atomic_store_explicit(&flag, 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 0) {}
    }
    double ns = (now() - t0) / trips * 1e9;
    void *rc;
    pthread_join(t, &rc);
    if (rc != NULL) {
        fprintf(stderr, "pingpong: cannot pin to CPU 1\n");
        return 1;
    }
    printf("%.0f\n", ns);
    return 0;
}
