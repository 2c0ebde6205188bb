"""Builds the emulated GPU: a fake libcuda.so.1 (driver.cpp, with every kernel of kernels/cuda
compiled for the CPU by g++), a fake libcudnn.so.9 (dnn.cpp) and a fake libcublas.so.12
(blas.cpp), into BUILD_DIR (default target/cuda-fake), then checks the driver's own promises
(selftest.c: lazy streams, graph replay, guard pages). Run the CUDA backend on them with
scripts/cuda-emu/fake-gpu.sh.

The kernels are the files the runtime compiles with NVRTC, changed only where they use what g++
has not: the f16 loads and stores (inline PTX `cvt`) become `_Float16` conversions (round to
nearest even, as `cvt.rn`), dp4a its definition in C, and the LSTM sequence kernel's poll for
another block's word also yields the CPU (`fake_poll`). Each replacement must match exactly once,
so a changed kernel file stops the build rather than being emulated wrongly.

Usage: python3 scripts/cuda-emu/fake/build.py [BUILD_DIR]   (needs g++ with C++20)
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
KERNELS = os.path.join(ROOT, "kernels/cuda")
CXX = ["g++", "-std=c++20", "-O2", "-fPIC", "-ffp-contract=off", "-pthread", "-w", "-I", HERE]

F16_LD = """inline float ld(const f16_t* p, i64_t i) {
    _Float16 h;
    memcpy(&h, &p[i], 2);
    return (float)h;
}
"""
F16_ST = """inline void st(f16_t* p, i64_t i, float v) {
    _Float16 h = (_Float16)v;
    memcpy(&p[i], &h, 2);
}
"""


def replace_once(text, pattern, repl, what):
    out, n = re.subn(pattern, lambda _: repl, text, flags=re.S)
    if n != 1:
        sys.exit(f"cuda-emu/fake: {what} matched {n} times (expected once): update build.py")
    return out


def prelude():
    pre = open(os.path.join(KERNELS, "prelude.cuh")).read()
    pre = replace_once(pre, r"__device__ __forceinline__ float ld\(const f16_t\* p, i64_t i\) \{.*?\n\}\n",
                       F16_LD, "prelude.cuh's f16 load")
    pre = replace_once(pre, r"__device__ __forceinline__ void st\(f16_t\* p, i64_t i, float v\) \{.*?\n\}\n",
                       F16_ST, "prelude.cuh's f16 store")
    return pre


def kernel_file(name):
    src = open(os.path.join(KERNELS, name)).read()
    if name == "quant.cu":
        byte = "(int)(signed char)(b >> (8 * j))"
        src = replace_once(src, r'asm\("dp4a\.u32\.s32.*?\);',
                           f"d = c; for (int j = 0; j < 4; ++j) d += (int)((a >> (8 * j)) & 255) * {byte};",
                           "quant.cu's dp4a.u32")
        src = replace_once(src, r'asm\("dp4a\.s32\.s32.*?\);',
                           f"d = c; for (int j = 0; j < 4; ++j) d += (int)(signed char)(a >> (8 * j)) * {byte};",
                           "quant.cu's dp4a.s32")
    if name == "recurrent.cu":
        src = replace_once(src, r"if \(\+\+polls == SEQ_MAX_POLLS\) __trap\(\);", "fake_poll(++polls);",
                           "recurrent.cu's poll")
    if "asm" in src:
        sys.exit(f"cuda-emu/fake: {name} has inline PTX build.py does not replace")
    return src


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/cuda-fake"))
    lib = os.path.join(out, "lib")
    obj = os.path.join(out, "obj")
    os.makedirs(lib, exist_ok=True)
    os.makedirs(obj, exist_ok=True)
    # A build that stops part way leaves no library behind to look fresh (fake-gpu.sh).
    for name in os.listdir(lib):
        os.remove(os.path.join(lib, name))
    pre = prelude()
    if "asm" in pre:
        sys.exit("cuda-emu/fake: prelude.cuh has inline PTX build.py does not replace")
    objects = []
    for name in sorted(f for f in os.listdir(KERNELS) if f.endswith(".cu")):
        body = '#include "device.h"\n' + pre + "\n" + kernel_file(name)
        base = os.path.join(obj, name[:-3])
        open(base + ".discover.cpp", "w").write(body)
        text = subprocess.run(CXX + ["-DFAKE_DISCOVER", "-E", "-P", base + ".discover.cpp"],
                              check=True, capture_output=True, text=True).stdout
        names = re.findall(r'extern\s+"C"\s+FAKEGLOBAL\s+void\s+(\w+)\s*\(', text)
        if not names:
            sys.exit(f"cuda-emu/fake: no kernels found in {name}")
        reg = '\n#include "registry.h"\n' + "".join(f"FAKE_KERNEL({n})\n" for n in names)
        open(base + ".cpp", "w").write(body + reg)
        subprocess.run(CXX + ["-c", base + ".cpp", "-o", base + ".o"], check=True)
        objects.append(base + ".o")
        print(f"{name}: {len(names)} kernels")
    driver = os.path.join(obj, "driver.o")
    subprocess.run(CXX + ["-c", os.path.join(HERE, "driver.cpp"), "-o", driver], check=True)
    cuda = os.path.join(lib, "libcuda.so.1")
    # Only the driver API is exported: the kernels' and the C++ library's symbols would
    # otherwise interpose on those of other libraries in the process (NVRTC crashed on them).
    script = os.path.join(obj, "exports.map")
    open(script, "w").write("{ global: cu*; fakecuda_*; local: *; };\n")
    subprocess.run(CXX + ["-shared", "-Wl,-soname,libcuda.so.1", f"-Wl,--version-script={script}",
                          "-static-libstdc++", "-static-libgcc", "-o", cuda, driver] + objects, check=True)
    exports = os.path.join(obj, "exports-lib.map")
    open(exports, "w").write("{ global: cudnn*; cublas*; local: *; };\n")
    for fake, soname, aliases in [("dnn.cpp", "libcudnn.so.9", ["libcudnn.so"]),
                                  ("blas.cpp", "libcublas.so.12", ["libcublas.so"])]:
        subprocess.run(CXX + ["-shared", f"-Wl,-soname,{soname}", f"-Wl,--version-script={exports}",
                              "-static-libstdc++", "-static-libgcc", "-o", os.path.join(lib, soname),
                              os.path.join(HERE, fake), cuda, f"-Wl,-rpath,{lib}"], check=True)
        for a in aliases:
            link = os.path.join(lib, a)
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(soname, link)
    link = os.path.join(lib, "libcuda.so")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink("libcuda.so.1", link)
    # The driver's own promises (lazy streams, graph replay, guard pages).
    test = os.path.join(obj, "selftest")
    subprocess.run(["gcc", "-O1", "-o", test, os.path.join(HERE, "selftest.c"), cuda, f"-Wl,-rpath,{lib}"],
                   check=True)
    subprocess.run([test], check=True)
    print(f"fake GPU libraries in {lib}")


if __name__ == "__main__":
    main()
