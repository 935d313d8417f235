// The model's own chat template (Jinja), applied by llama.cpp's chat layer (`common/chat.h`,
// `common_chat_templates_apply`): the code llama-server formats a conversation with. The
// legacy `llama_chat_apply_template` of the C API matches a template against a list of
// known ones and skips what it cannot express (SmolLM2's default system message, for one).
// Built against the vendored llama.cpp's headers (build.rs finds them); every C++ exception
// stops at this boundary and becomes an error string.
#include "chat.h"

#include <cstring>
#include <string>

namespace {
void copy_out(const std::string & s, char * out, int cap) {
    if (cap <= 0) {
        return;
    }
    size_t n = s.size() < (size_t) (cap - 1) ? s.size() : (size_t) (cap - 1);
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
}
}  // namespace

// The model's templates, or NULL (with `err` filled) when llama.cpp cannot read them.
extern "C" void * layerfit_chat_init(const llama_model * model, char * err, int err_cap) {
    try {
        return common_chat_templates_init(model, "").release();
    } catch (const std::exception & e) {
        copy_out(e.what(), err, err_cap);
    } catch (...) {
        copy_out("unknown error", err, err_cap);
    }
    return nullptr;
}

extern "C" void layerfit_chat_free(void * tmpls) {
    common_chat_templates_free(static_cast<common_chat_templates *>(tmpls));
}

// Formats `n` messages; returns the prompt's length (it is copied into `out` when it fits
// `cap` with its NUL), or -1 with `out` holding the error.
extern "C" long layerfit_chat_apply(const void * tmpls, const char * const * roles,
                                    const char * const * contents, int n,
                                    bool add_generation_prompt, char * out, long cap) {
    try {
        common_chat_templates_inputs in;
        for (int i = 0; i < n; i++) {
            common_chat_msg m;
            m.role    = roles[i];
            m.content = contents[i];
            in.messages.push_back(m);
        }
        in.add_generation_prompt = add_generation_prompt;
        in.use_jinja             = true;
        auto params = common_chat_templates_apply(static_cast<const common_chat_templates *>(tmpls), in);
        if ((long) params.prompt.size() < cap) {
            std::memcpy(out, params.prompt.data(), params.prompt.size());
            out[params.prompt.size()] = '\0';
        }
        return (long) params.prompt.size();
    } catch (const std::exception & e) {
        copy_out(e.what(), out, (int) (cap > 1 << 20 ? 1 << 20 : cap));
    } catch (...) {
        copy_out("unknown error", out, (int) (cap > 1 << 20 ? 1 << 20 : cap));
    }
    return -1;
}
