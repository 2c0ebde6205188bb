// Stream ordering for the fake cuDNN and cuBLAS (dnn.cpp, blas.cpp): each call's work is
// handed to the fake driver, which runs it in its stream's order or records it into the graph
// being captured.
#pragma once

#ifdef FAKE_STANDALONE
// No driver: run now, then free.
static void enqueue(void*, void (*fn)(void*), void* arg, void (*drop)(void*)) {
    fn(arg);
    drop(arg);
}
#else
// Provided by the fake driver (driver.cpp): runs fn(arg) in `stream`'s order (then drop(arg)),
// or records it into the graph being captured (fn may then run many times; drop at the end).
extern "C" void fakecuda_enqueue(void* stream, void (*fn)(void* arg), void* arg, void (*drop)(void* arg));
static void enqueue(void* stream, void (*fn)(void*), void* arg, void (*drop)(void*)) {
    fakecuda_enqueue(stream, fn, arg, drop);
}
#endif
