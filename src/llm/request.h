/*
 * request — read an LLM API request body by provider schema.
 *
 * Given the API kind (chosen by the gateway from the URL), an already parsed
 * jval document of the request body and, for Gemini, what the URL path says
 * (model, streaming endpoint), llm_request_parse() fills one llm_request_t:
 * the model, whether the response will stream, whether the client asked for
 * OpenAI's usage chunk (stream_options.include_usage), the output token cap
 * when given, an estimate of the prompt tokens, and the names of attached
 * files.  Field names follow the providers' public API documentation.
 *
 *   kind                          model          stream            max output
 *   OPENAI_CHAT (Mistral, Groq)   "model"        "stream"          max_completion_tokens,
 *                                                                  else max_tokens
 *   OPENAI_RESPONSES              "model"        "stream"          max_output_tokens
 *   OPENAI_EMBEDDINGS             "model"        false             -
 *   ANTHROPIC_MESSAGES            "model"        "stream"          max_tokens
 *   ANTHROPIC_COUNT_TOKENS        "model"        false             -
 *   GEMINI_GENERATE               URL path       URL path          generationConfig.
 *                                 (parameter)    (:streamGenerate-   maxOutputTokens
 *                                                Content)
 * Gemini's REST API accepts both lowerCamel and snake_case field names
 * (systemInstruction / system_instruction, ...): both are read.
 *
 * Prompt token estimate (an estimate, not a tokenizer):
 *   estimate = ceil(prompt_bytes / 4) + 4 * prompt_messages + prompt_token_ids
 * prompt_bytes counts the decoded UTF-8 bytes of every piece of text the model
 * reads; "JSON size" below is the length of the value serialized as compact
 * JSON (strings escaped as JSON requires, numbers in their shortest
 * round-trip form):
 *   OpenAI chat   messages[].content (a string, or the "text" / "refusal" of
 *                 each part), messages[].name, messages[].refusal,
 *                 tool_calls[].function.name + .arguments, function_call.name
 *                 + .arguments; tools[].function / functions[]: name,
 *                 description, JSON size of parameters.
 *   Responses     "instructions"; "input" as a string, or per item: content
 *                 (as above), name, arguments, input, output (string or
 *                 parts), summary parts' text; tools[]: name, description,
 *                 JSON size of parameters.
 *   Embeddings    "input" strings; integers (token ids, in a flat array or an
 *                 array of arrays) count one token each, in prompt_token_ids.
 *   Anthropic     "system" (string or text blocks); messages[].content as a
 *                 string or blocks: text, thinking, document (title, context,
 *                 source.data of a text source, source.content), tool_use
 *                 (name, JSON size of input), tool_result and search_result
 *                 (title, content, recursively); tools[]: name, description,
 *                 JSON size of input_schema.
 *   Gemini        contents[].parts[] and systemInstruction.parts[]: text,
 *                 functionCall (name, JSON size of args), functionResponse
 *                 (name, JSON size of response), executableCode.code,
 *                 codeExecutionResult.output; tools[].functionDeclarations[]:
 *                 name, description, JSON size of parameters /
 *                 parametersJsonSchema.
 * prompt_messages counts: each element of messages / contents / Responses
 * input items (a string input counts 1), plus 1 for a present Anthropic
 * "system", Responses "instructions" or Gemini systemInstruction.  Embeddings
 * have no message overhead.  Images, audio and file data are not counted.
 *
 * Attached file names (borrowed, see Memory): OpenAI chat parts of type
 * "file" (file.filename), Responses parts of type "input_file" (filename),
 * Anthropic "document" blocks (title, at any depth), Gemini parts' fileData.
 * displayName.  Empty names are skipped.  At most LLM_REQUEST_MAX_FILES are
 * kept (files_seen counts them all); a name longer than
 * LLM_REQUEST_MAX_FILE_NAME bytes is cut there at a UTF-8 boundary and
 * files_clipped counts it.
 *
 * Validation (LLM_REQUEST_EINVAL, message in err, *out then holds whatever
 * was read before the error): the body must be an object; "model: required
 * string" when the model (or Gemini's URL model) is missing, not a string or
 * empty; "messages: required array" (Anthropic, OpenAI chat), "contents:
 * required array" (Gemini), "input: required string or array" (embeddings);
 * wrongly typed stream, stream_options, max token fields, messages,
 * contents, parts, content, tools, and Responses input, each named with its
 * path (e.g. "messages[2].content: must be a string, an array or null").
 * null is accepted wherever a field is optional.  Unknown roles, unknown part
 * or block types and unknown fields are accepted (and not counted).
 *
 * Memory: llm_request_t is a plain value (no heap).  model.ptr and
 * files[].ptr point into the jval document (or, for Gemini's model, into the
 * caller's url_model string): they are valid until jval_free() of that
 * document (resp. while url_model lives), and are NOT NUL-terminated when a
 * name was cut: always use the lengths.  Recursion follows the document's
 * nesting, bounded by JVAL_MAX_DEPTH.
 */
#ifndef CDEGUARD_LLM_REQUEST_H
#define CDEGUARD_LLM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jval.h"
#include "llm/usage.h"

#define LLM_REQUEST_OK 0
#define LLM_REQUEST_EINVAL (-1) /* the body does not fit the schema; see err */

#define LLM_REQUEST_MAX_FILES 64
#define LLM_REQUEST_MAX_FILE_NAME 1024

typedef enum llm_request_kind {
    LLM_REQ_OPENAI_CHAT = 0,        /* /v1/chat/completions (also Mistral, Groq) */
    LLM_REQ_OPENAI_RESPONSES,       /* /v1/responses */
    LLM_REQ_OPENAI_EMBEDDINGS,      /* /v1/embeddings */
    LLM_REQ_ANTHROPIC_MESSAGES,     /* /v1/messages */
    LLM_REQ_ANTHROPIC_COUNT_TOKENS, /* /v1/messages/count_tokens */
    LLM_REQ_GEMINI_GENERATE,        /* models/M:generateContent | :streamGenerateContent */
} llm_request_kind_t;

/* A borrowed (pointer, length) slice; ptr is NULL when len is 0 and unset. */
typedef struct llm_request_str {
    const char *ptr;
    size_t len;
} llm_request_str_t;

typedef struct llm_request {
    llm_request_kind_t kind;
    llm_request_str_t model;
    bool stream;
    bool include_usage;  /* OpenAI chat: stream_options.include_usage was true */
    bool has_max_output; /* max_output is set */
    uint64_t max_output;

    uint64_t prompt_bytes;      /* UTF-8 bytes of text the model reads */
    uint64_t prompt_messages;   /* messages (4 tokens of overhead each) */
    uint64_t prompt_token_ids;  /* token ids given as integers (embeddings) */
    uint64_t prompt_tokens_est; /* ceil(bytes / 4) + 4 * messages + token_ids */

    size_t nfiles;        /* names in files[] */
    size_t files_seen;    /* names found, kept or not (>= nfiles) */
    size_t files_clipped; /* kept names cut to LLM_REQUEST_MAX_FILE_NAME */
    llm_request_str_t files[LLM_REQUEST_MAX_FILES];
} llm_request_t;

/* Read body (the root of a parsed request) as `kind` into *out (always
 * zeroed first).  url_model (NUL-terminated, may be NULL or "") is the
 * model the URL names: Gemini's, and an Azure OpenAI deployment's, which
 * then wins over a "model" in the body (Azure ignores that field).
 * url_stream is what the Gemini URL says and is ignored for the other
 * kinds.  Returns
 * LLM_REQUEST_OK, or LLM_REQUEST_EINVAL with a message in err (err may be
 * NULL; errlen 0 writes nothing).  On OK err is "". */
int llm_request_parse(llm_request_kind_t kind, const jval_t *body, const char *url_model,
                      bool url_stream, llm_request_t *out, char *err, size_t errlen);

/* "openai-chat", "openai-responses", "openai-embeddings", "anthropic-messages",
 * "anthropic-count-tokens", "gemini-generate"; "?" otherwise. */
const char *llm_request_kind_name(llm_request_kind_t kind);
/* The names above, plus "mistral" and "groq" (= openai-chat): 0, else -1. */
int llm_request_kind_parse(const char *name, llm_request_kind_t *out);

/* The usage reader for the response of a request of this kind. */
llm_provider_t llm_request_usage_provider(llm_request_kind_t kind);

#endif
