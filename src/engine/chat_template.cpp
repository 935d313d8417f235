// The model's own chat template (Jinja), applied by llama.cpp's chat layer (`common/chat.h`):
// the code llama-server formats a conversation with, offers tools with and reads tool calls
// back with. The legacy `llama_chat_apply_template` of the C API matches a template against a
// list of known ones and skips what it cannot express (SmolLM2's default system message, for
// one). Built against the vendored llama.cpp's headers (build.rs finds them).
//
// Every call takes and gives JSON text, as llama-server's own request handling does
// (tools/server/server-common.cpp, `oaicompat_chat_params_parse`), so the Rust side builds
// and reads plain JSON. Every C++ exception stops at this boundary and becomes an error:
// a returned string is `{"error": MESSAGE}` then. Returned strings are freed with
// `layerfit_chat_string_free`.
#include "chat.h"
#include "json-schema-to-grammar.h"

#include <cstring>
#include <random>
#include <set>
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

char * dup(const std::string & s) {
    char * p = static_cast<char *>(std::malloc(s.size() + 1));
    if (p != nullptr) {
        std::memcpy(p, s.data(), s.size());
        p[s.size()] = '\0';
    }
    return p;
}

char * error_json(const char * what) {
    common_json e = common_json::object();
    e["error"]    = std::string(what);
    return dup(e.dump());
}

// Runs `f` (which returns JSON text), turning any exception into `{"error": ...}`.
template <typename F> char * guarded(F f) {
    try {
        return dup(f());
    } catch (const std::exception & e) {
        return error_json(e.what());
    } catch (...) {
        return error_json("unknown error");
    }
}

const char * trigger_kind(common_grammar_trigger_type t) {
    switch (t) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:
            return "token";
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:
            return "word";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
            return "pattern";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL:
            return "pattern_full";
    }
    return "pattern";
}

// The regular expression a trigger becomes in the lazy grammar sampler, as
// common/sampling.cpp (`common_sampler_init`) builds it.
std::string trigger_pattern(const common_grammar_trigger & t) {
    switch (t.type) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:
            return regex_escape(t.value);
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL:
            {
                const auto & p = t.value;
                if (p.empty()) {
                    return "^$";
                }
                return (p.front() != '^' ? "^" : "") + p + (p.back() != '$' ? "$" : "");
            }
        default:
            return t.value;
    }
}

// llama-server's tool-call ids: a random string (server-common.cpp, `gen_tool_call_id`).
std::string tool_call_id() {
    static const char   chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937 rng{ std::random_device{}() };
    std::uniform_int_distribution<int> pick(0, (int) sizeof(chars) - 2);
    std::string id = "call_";
    for (int i = 0; i < 24; i++) {
        id += chars[pick(rng)];
    }
    return id;
}

common_json msg_json(const common_chat_msg & m) {
    common_json calls = common_json::array();
    for (const auto & c : m.tool_calls) {
        common_json tc   = common_json::object();
        tc["id"]         = c.id;
        tc["name"]       = c.name;
        tc["arguments"]  = c.arguments;
        calls.push_back(tc);
    }
    common_json out          = common_json::object();
    out["content"]           = m.content;
    out["reasoning_content"] = m.reasoning_content;
    out["tool_calls"]        = calls;
    return out;
}

// One streamed step, as llama-server's `task_result_state::update_chat_msg` shapes it with
// `filter_tool_calls`: a tool call's id and name go out once, before its first arguments.
struct parser_state {
    common_chat_parser_params params;
    std::string               text;
    common_chat_msg           msg;
    std::vector<std::string>  ids;
    std::set<size_t>          named;
};

common_json diff_json(const common_chat_msg_diff & d) {
    common_json o                = common_json::object();
    o["content"]                 = d.content_delta;
    o["reasoning_content"]       = d.reasoning_content_delta;
    o["index"]                   = d.tool_call_index == std::string::npos ? (int64_t) -1 : (int64_t) d.tool_call_index;
    o["id"]                      = d.tool_call_delta.id;
    o["name"]                    = d.tool_call_delta.name;
    o["arguments"]               = d.tool_call_delta.arguments;
    return o;
}

std::vector<common_chat_msg_diff> update(parser_state & st, const std::string & added, bool is_partial) {
    st.text += added;
    std::vector<common_chat_msg_diff> diffs;
    auto new_msg = common_chat_parse(st.text, is_partial, st.params);
    if (new_msg.empty()) {
        return diffs;
    }
    new_msg.set_tool_call_ids(st.ids, tool_call_id);
    auto prev = st.msg;
    st.msg    = new_msg;
    auto header = [&](size_t i) {
        common_chat_msg_diff h;
        h.tool_call_index      = i;
        h.tool_call_delta.id   = st.msg.tool_calls[i].id;
        h.tool_call_delta.name = st.msg.tool_calls[i].name;
        diffs.push_back(std::move(h));
        st.named.insert(i);
    };
    for (auto & d : common_chat_msg_diff::compute_diffs(prev, st.msg)) {
        for (size_t i = 0; i < st.msg.tool_calls.size(); ++i) {
            if (st.named.count(i) || st.msg.tool_calls[i].name.empty()) {
                continue;
            }
            if (d.tool_call_index != i || !d.tool_call_delta.arguments.empty()) {
                header(i);
            }
        }
        if (d.tool_call_index == std::string::npos) {
            diffs.push_back(std::move(d));
            continue;
        }
        size_t i = d.tool_call_index;
        if (st.named.count(i)) {
            if (!d.tool_call_delta.arguments.empty()) {
                d.tool_call_delta.name = "";
                d.tool_call_delta.id   = "";
                diffs.push_back(std::move(d));
            }
        } else if (!d.tool_call_delta.arguments.empty() || !is_partial) {
            d.tool_call_delta.name = st.msg.tool_calls[i].name;
            d.tool_call_delta.id   = st.msg.tool_calls[i].id;
            diffs.push_back(std::move(d));
            st.named.insert(i);
        }
    }
    if (!is_partial) {
        for (size_t i = 0; i < st.msg.tool_calls.size(); ++i) {
            if (!st.named.count(i) && !st.msg.tool_calls[i].name.empty()) {
                header(i);
            }
        }
    }
    return diffs;
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

// Templates from Jinja source with no model (BOS and EOS given), or NULL (with `err` filled).
extern "C" void * layerfit_chat_init_source(const char * src, const char * bos, const char * eos, char * err,
                                            int err_cap) {
    try {
        return common_chat_templates_init(nullptr, src, bos, eos).release();
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

extern "C" void layerfit_chat_string_free(char * s) {
    std::free(s);
}

// Formats a conversation, with what llama-server's chat endpoint takes from an OpenAI request:
// `{"messages": [OpenAI messages], "tools": [OpenAI tools], "tool_choice": "auto"|"none"|
// "required", "parallel_tool_calls": bool, "json_schema": schema or null, "grammar": GBNF,
// "add_generation_prompt": bool, "enable_thinking": bool, "chat_template_kwargs": {..}}`.
// Returns `{"prompt", "grammar", "grammar_lazy", "grammar_triggers": [{"kind", "value",
// "pattern"}], "preserved_tokens", "additional_stops", "format", "format_name",
// "generation_prompt", "parser", "parallel_tool_calls"}` (the parser fields go back into
// `layerfit_chat_parser_new`).
extern "C" char * layerfit_chat_apply_json(const void * tmpls_v, const char * request) {
    return guarded([&]() {
        const auto * tmpls = static_cast<const common_chat_templates *>(tmpls_v);
        auto         body  = common_json::parse(request);
        auto         caps  = common_chat_templates_get_caps(tmpls);
        common_chat_templates_inputs in;
        in.messages    = common_chat_msgs_parse_oaicompat(body.at("messages"));
        common_json tools = body.value("tools", common_json());
        in.tools       = common_chat_tools_parse_oaicompat(tools);
        in.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
        in.parallel_tool_calls =
            body.value("parallel_tool_calls", (bool) caps["supports_parallel_tool_calls"]);
        common_json schema = body.value("json_schema", common_json());
        if (schema.is_object() && schema.empty()) {
            schema["type"] = "object";
        }
        in.json_schema           = schema.is_null() ? "" : schema.dump();
        in.grammar               = body.value("grammar", std::string());
        in.add_generation_prompt = body.value("add_generation_prompt", true);
        in.use_jinja             = true;
        in.reasoning_format      = COMMON_REASONING_FORMAT_AUTO;
        in.enable_thinking       = body.value("enable_thinking", true);
        common_json kwargs       = body.value("chat_template_kwargs", common_json::object());
        for (const auto & item : kwargs.items()) {
            in.chat_template_kwargs[item.key()] = item.value().dump();
        }
        auto p = common_chat_templates_apply(tmpls, in);

        common_json triggers = common_json::array();
        for (const auto & t : p.grammar_triggers) {
            common_json o = common_json::object();
            o["kind"]     = std::string(trigger_kind(t.type));
            o["value"]    = t.value;
            o["pattern"]  = trigger_pattern(t);
            triggers.push_back(o);
        }
        common_json out             = common_json::object();
        out["prompt"]               = p.prompt;
        out["grammar"]              = p.grammar;
        out["grammar_lazy"]         = p.grammar_lazy;
        out["grammar_triggers"]     = triggers;
        out["preserved_tokens"]     = p.preserved_tokens;
        out["additional_stops"]     = p.additional_stops;
        out["format"]               = (int64_t) p.format;
        out["format_name"]          = std::string(common_chat_format_name(p.format));
        out["generation_prompt"]    = p.generation_prompt;
        out["parser"]               = p.parser;
        out["parallel_tool_calls"]  = in.parallel_tool_calls;
        out["supports_tool_calls"]  = (bool) caps["supports_tool_calls"];
        return out.dump();
    });
}

// A JSON schema as a GBNF grammar (llama.cpp's json-schema-to-grammar): `{"grammar": GBNF}`.
extern "C" char * layerfit_json_schema_to_grammar(const char * schema) {
    return guarded([&]() {
        auto s = common_json::parse(schema);
        if (s.is_object() && s.empty()) {
            s["type"] = "object";
        }
        common_json out   = common_json::object();
        out["grammar"]    = json_schema_to_grammar(s);
        return out.dump();
    });
}

// A reader of one answer, from what `layerfit_chat_apply_json` returned plus
// `"parse_tool_calls": bool`; NULL (with `err` filled) when the parser cannot be loaded.
extern "C" void * layerfit_chat_parser_new(const char * params_json, char * err, int err_cap) {
    try {
        auto  p  = common_json::parse(params_json);
        auto * st = new parser_state();
        st->params.format            = static_cast<common_chat_format>(p.value("format", (int64_t) 0));
        st->params.generation_prompt = p.value("generation_prompt", std::string());
        st->params.reasoning_format  = COMMON_REASONING_FORMAT_AUTO;
        st->params.parse_tool_calls  = p.value("parse_tool_calls", false);
        auto parser                  = p.value("parser", std::string());
        if (!parser.empty()) {
            st->params.parser.load(parser);
        }
        return st;
    } catch (const std::exception & e) {
        copy_out(e.what(), err, err_cap);
    } catch (...) {
        copy_out("unknown error", err, err_cap);
    }
    return nullptr;
}

extern "C" void layerfit_chat_parser_free(void * st) {
    delete static_cast<parser_state *>(st);
}

// Adds `text` to the answer and parses it all again (`common_chat_parse`, partial until the
// answer ends): `{"message": {"content", "reasoning_content", "tool_calls": [{"id", "name",
// "arguments"}]}, "deltas": [{"content", "reasoning_content", "index", "id", "name",
// "arguments"}]}` (index -1: not a tool call).
extern "C" char * layerfit_chat_parser_feed(void * st_v, const char * text, bool is_partial) {
    return guarded([&]() {
        auto & st     = *static_cast<parser_state *>(st_v);
        auto   diffs  = update(st, text, is_partial);
        common_json d = common_json::array();
        for (const auto & x : diffs) {
            d.push_back(diff_json(x));
        }
        common_json out = common_json::object();
        out["message"]  = msg_json(st.msg);
        out["deltas"]   = d;
        return out.dump();
    });
}
