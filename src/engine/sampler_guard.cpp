// llama.cpp's sampler calls that can throw, made safe to call from Rust: a grammar sampler
// throws (`llama_grammar_accept_impl`: "Unexpected empty grammar stack ...") when it is handed
// a token its grammar cannot take (a lazy grammar whose trigger text does not continue into
// it, a generation prompt that does not start it). A C++ exception must not unwind into Rust
// (the process would abort and take every other request with it), so it stops here and
// becomes an error message for the one request.
#include "llama.h"

#include <cstring>
#include <exception>

namespace {
void copy_out(const char * s, char * out, int cap) {
    if (cap <= 0) {
        return;
    }
    size_t n = std::strlen(s);
    n        = n < (size_t) (cap - 1) ? n : (size_t) (cap - 1);
    std::memcpy(out, s, n);
    out[n] = '\0';
}
}  // namespace

// `llama_sampler_sample`; LLAMA_TOKEN_NULL with `err` filled when a sampler threw.
extern "C" llama_token layerfit_sampler_sample(llama_sampler * smpl, llama_context * ctx, int32_t idx, char * err,
                                               int err_cap) {
    try {
        return llama_sampler_sample(smpl, ctx, idx);
    } catch (const std::exception & e) {
        copy_out(e.what(), err, err_cap);
    } catch (...) {
        copy_out("unknown error", err, err_cap);
    }
    return LLAMA_TOKEN_NULL;
}

// `llama_sampler_accept`; false with `err` filled when the sampler threw.
extern "C" bool layerfit_sampler_accept(llama_sampler * smpl, llama_token token, char * err, int err_cap) {
    try {
        llama_sampler_accept(smpl, token);
        return true;
    } catch (const std::exception & e) {
        copy_out(e.what(), err, err_cap);
    } catch (...) {
        copy_out("unknown error", err, err_cap);
    }
    return false;
}
