// What the emulator's programs share: arrays read from and written to the files check.py
// exchanges with them (in `dir`), and the runtime's 1-D grid (`Device::launch`: 256-thread
// blocks, at most 65535).
#include <fstream>
#include <string>

static std::string dir;

template <typename T>
std::vector<T> load(const char* name) {
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(in)), {});
    std::vector<T> v(b.size() / sizeof(T));
    memcpy(v.data(), b.data(), v.size() * sizeof(T));
    return v;
}
template <typename T>
void save(const char* name, const std::vector<T>& v) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write((const char*)v.data(), v.size() * sizeof(T));
}

static unsigned blocks_of(i64_t threads) {
    return (unsigned)std::clamp<i64_t>((threads + 255) / 256, 1, 65535);
}
