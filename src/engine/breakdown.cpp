// Exposes llama.cpp's per-buffer memory breakdown (model / context / compute bytes per buffer
// type) through a C function. The declarations below mirror `src/llama-ext.h` of the vendored
// llama.cpp (llama-cpp-sys-2 =0.1.160, pinned in Cargo.toml); that header is not installed by
// the -sys crate, so they are restated here and must be checked when the pin moves.
#include <cstddef>
#include <cstring>
#include <map>

struct llama_context;
struct ggml_backend_buffer_type;
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;

struct llama_memory_breakdown_data {
    size_t model   = 0;
    size_t context = 0;
    size_t compute = 0;
    size_t total() const { return model + context + compute; }
};

using llama_memory_breakdown = std::map<ggml_backend_buffer_type_t, llama_memory_breakdown_data>;

llama_memory_breakdown llama_get_memory_breakdown(const struct llama_context * ctx);
extern "C" const char * ggml_backend_buft_name(ggml_backend_buffer_type_t buft);

struct layerfit_buffer_use {
    char   name[64];
    size_t model;
    size_t context;
    size_t compute;
};

// Fills up to `cap` entries; returns how many buffer types there are (may exceed cap).
extern "C" int layerfit_memory_breakdown(const struct llama_context * ctx, layerfit_buffer_use * out, int cap) {
    llama_memory_breakdown mb = llama_get_memory_breakdown(ctx);
    int i = 0;
    for (const auto & [buft, data] : mb) {
        if (i < cap) {
            std::strncpy(out[i].name, ggml_backend_buft_name(buft), sizeof(out[i].name) - 1);
            out[i].name[sizeof(out[i].name) - 1] = '\0';
            out[i].model   = data.model;
            out[i].context = data.context;
            out[i].compute = data.compute;
        }
        i++;
    }
    return i;
}
