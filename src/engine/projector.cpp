// What llama.cpp's multimodal loader (tools/mtmd) would allocate for a vision projector,
// measured without allocating: `mtmd_get_memory_usage` is the call llama-server makes before
// it fits the model (tools/server/server-context.cpp), and it returns a C++ `std::map`, so
// this shim copies it into plain structs for Rust.
#include "mtmd.h"

#include <cstdint>
#include <cstring>

extern "C" {

struct layerfit_mmproj_device {
    char name[64];
    uint64_t bytes;
};

struct layerfit_mmproj_usage {
    int32_t n_devices;
    layerfit_mmproj_device devices[16];
    int32_t image_max_tokens;
    bool non_causal;
};

// Returns 0 and fills `out` when the loader accepted the file; -1 when it refused it (its
// reason goes to the mtmd log).
int layerfit_mmproj_memory(const char * path, bool use_gpu, int32_t n_threads,
                           int32_t image_min_tokens, int32_t image_max_tokens,
                           layerfit_mmproj_usage * out) {
    std::memset(out, 0, sizeof(*out));
    mtmd_context_params p = mtmd_context_params_default();
    p.use_gpu = use_gpu;
    p.print_timings = false;
    p.n_threads = n_threads;
    p.image_min_tokens = image_min_tokens;
    p.image_max_tokens = image_max_tokens;
    mtmd_memory_usage mem;
    try {
        mem = mtmd_get_memory_usage(path, p);
    } catch (...) {
        return -1;
    }
    if (mem.backend_mem_usage.empty()) {
        return -1;
    }
    for (const auto & [dev, bytes] : mem.backend_mem_usage) {
        if (out->n_devices == 16) {
            break;
        }
        layerfit_mmproj_device & d = out->devices[out->n_devices++];
        const char * name = dev ? ggml_backend_dev_name(dev) : "CPU";
        std::strncpy(d.name, name, sizeof(d.name) - 1);
        d.bytes = bytes;
    }
    out->image_max_tokens = mem.image_max_tokens;
    out->non_causal = mem.use_non_causal;
    return 0;
}

}
