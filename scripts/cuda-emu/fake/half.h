// binary16 <-> float for the fake cuDNN and cuBLAS (dnn.cpp, blas.cpp), through g++'s
// _Float16: round to nearest even on the way down, as the device's cvt.rn.
#pragma once
#include <cstdint>
#include <cstring>

static float half_to_float(uint16_t bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return (float)h;
}
static uint16_t float_to_half(float v) {
    _Float16 h = (_Float16)v;
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}
