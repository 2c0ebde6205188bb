// Kernels by name for the fake driver: build.py appends one `FAKE_KERNEL(name)` per
// `extern "C" __global__` function to each kernel file it compiles.
#pragma once
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

struct Kernel {
    std::string name;
    // Each parameter's size, in order (a launch copies the values: a captured one replays them).
    std::vector<size_t> sizes;
    // Calls the kernel as one thread, its parameters read through `params` (cuLaunchKernel's).
    void (*run)(void** params);
    // Its blocks wait on each other's words (the LSTM sequence kernels, `*_seq*`), so they must
    // all run at once; other kernels' blocks run a few at a time.
    bool resident = false;
};
void fake_register(const char* name, Kernel k);

template <class... A, size_t... I>
void fake_invoke(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <auto F, class... A>
Kernel fake_kernel(const char* name, void (*)(A...)) {
    return Kernel{name, {sizeof(A)...}, [](void** p) { fake_invoke(F, p, std::index_sequence_for<A...>{}); },
                  std::string(name).find("_seq") != std::string::npos};
}
#define FAKE_KERNEL(name) \
    static const bool fake_reg_##name = (fake_register(#name, fake_kernel<&name>(#name, &name)), true);
