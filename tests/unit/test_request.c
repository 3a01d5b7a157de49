/*
 * test_request.c — unit tests of src/llm/request through its public API:
 * realistic request bodies for every API kind (shapes as in the providers'
 * public API documentation), the stream and include_usage flags, output
 * token caps, exact prompt token estimates on small bodies (computed by hand
 * in the comments), attached file names with their bounds, the compact JSON
 * size of schemas, Gemini's snake_case spellings, and every error path.
 *
 * Usage: test_request [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jval.h"
#include "llm/request.h"

static jval_doc_t *parse_ok(const char *s)
{
    jval_doc_t *doc = NULL;
    char err[128];
    int rc = jval_parse(s, strlen(s), 0, &doc, err, sizeof err);
    if (rc != JVAL_OK) fprintf(stderr, "parse failed: %s\n", err);
    assert_int_equal(rc, JVAL_OK);
    return doc;
}

/* Parse body as kind (OK expected) into *r; returns the document to free. */
static jval_doc_t *req_ok(llm_request_kind_t kind, const char *body, const char *url_model,
                          bool url_stream, llm_request_t *r)
{
    jval_doc_t *doc = parse_ok(body);
    char err[160] = "junk";
    int rc = llm_request_parse(kind, jval_root(doc), url_model, url_stream, r, err, sizeof err);
    if (rc != LLM_REQUEST_OK) fprintf(stderr, "request failed: %s\n", err);
    assert_int_equal(rc, LLM_REQUEST_OK);
    assert_string_equal(err, "");
    assert_int_equal(r->kind, kind);
    return doc;
}

/* Parse body as kind and expect LLM_REQUEST_EINVAL with message want. */
static void req_err(llm_request_kind_t kind, const char *body, const char *want)
{
    jval_doc_t *doc = parse_ok(body);
    llm_request_t r;
    char err[160] = "";
    int rc = llm_request_parse(kind, jval_root(doc),
                               kind == LLM_REQ_GEMINI_GENERATE ? "gemini-2.0-flash" : NULL, false,
                               &r, err, sizeof err);
    assert_int_equal(rc, LLM_REQUEST_EINVAL);
    assert_string_equal(err, want);
    jval_free(doc);
}

static void assert_slice(llm_request_str_t s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

/* ---- OpenAI chat -------------------------------------------------------------- */

static void test_openai_chat_basic(void **state)
{
    (void)state;
    llm_request_t r;
    jval_doc_t *doc = req_ok(LLM_REQ_OPENAI_CHAT,
                             "{\"model\":\"gpt-4o\",\"messages\":["
                             "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                             "{\"role\":\"user\",\"content\":\"Hello\"}],"
                             "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                             "\"max_tokens\":100,\"temperature\":0.2}",
                             NULL, false, &r);
    assert_slice(r.model, "gpt-4o");
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 100);
    /* "Be brief." 9 + "Hello" 5 = 14 bytes -> 4; 2 messages -> 8 */
    assert_int_equal(r.prompt_bytes, 14);
    assert_int_equal(r.prompt_messages, 2);
    assert_int_equal(r.prompt_token_ids, 0);
    assert_int_equal(r.prompt_tokens_est, 12);
    assert_int_equal(r.nfiles, 0);
    jval_free(doc);
}

static void test_openai_chat_flags(void **state)
{
    (void)state;
    llm_request_t r;
    /* no stream, no options, no cap */
    jval_doc_t *doc =
        req_ok(LLM_REQ_OPENAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", NULL, false, &r);
    assert_false(r.stream);
    assert_false(r.include_usage);
    assert_false(r.has_max_output);
    assert_int_equal(r.prompt_tokens_est, 0);
    jval_free(doc);

    /* stream without include_usage; include_usage false; nulls are "absent" */
    doc = req_ok(LLM_REQ_OPENAI_CHAT,
                 "{\"model\":\"m\",\"messages\":[],\"stream\":true,"
                 "\"stream_options\":{\"include_usage\":false},\"max_tokens\":null}",
                 NULL, false, &r);
    assert_true(r.stream);
    assert_false(r.include_usage);
    assert_false(r.has_max_output);
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_CHAT,
                 "{\"model\":\"m\",\"messages\":[],\"stream\":null,\"stream_options\":null,"
                 "\"tools\":null,\"functions\":null}",
                 NULL, false, &r);
    assert_false(r.stream);
    jval_free(doc);

    /* stream_options without include_usage */
    doc = req_ok(LLM_REQ_OPENAI_CHAT,
                 "{\"model\":\"m\",\"messages\":[],\"stream\":true,\"stream_options\":{}}", NULL,
                 false, &r);
    assert_false(r.include_usage);
    jval_free(doc);

    /* max_completion_tokens wins over the deprecated max_tokens, in any order */
    doc = req_ok(LLM_REQ_OPENAI_CHAT,
                 "{\"max_completion_tokens\":20,\"model\":\"o3\",\"messages\":[],"
                 "\"max_tokens\":10}",
                 NULL, false, &r);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 20);
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_CHAT, "{\"model\":\"o3\",\"messages\":[],\"max_tokens\":0}", NULL,
                 false, &r);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 0);
    jval_free(doc);
}

static void test_openai_chat_parts_tools_files(void **state)
{
    (void)state;
    llm_request_t r;
    jval_doc_t *doc = req_ok(
        LLM_REQ_OPENAI_CHAT,
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}},"
        "{\"type\":\"file\",\"file\":{\"filename\":\"report.pdf\","
        "\"file_data\":\"data:application/pdf;base64,AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":"
        "\"Get it\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
        "\"integer\"}}}}}]}",
        NULL, false, &r);
    /* abcd 4 + get 3 + {"a":1} 7 + ok 2 + tool: get 3 + "Get it" 6 + schema 55 = 80 -> 20;
     * 3 messages -> 12 */
    assert_int_equal(r.prompt_bytes, 80);
    assert_int_equal(r.prompt_messages, 3);
    assert_int_equal(r.prompt_tokens_est, 32);
    assert_int_equal(r.nfiles, 1);
    assert_int_equal(r.files_seen, 1);
    assert_slice(r.files[0], "report.pdf");
    jval_free(doc);
}

static void test_openai_chat_legacy_and_roles(void **state)
{
    (void)state;
    llm_request_t r;
    /* unknown roles are fine; name, refusal, legacy function_call and functions count */
    jval_doc_t *doc =
        req_ok(LLM_REQ_OPENAI_CHAT,
               "{\"model\":\"mistral-large-latest\",\"messages\":["
               "{\"role\":\"developer\",\"content\":\"ab\"},"
               "{\"role\":\"wizard\",\"name\":\"bob\",\"content\":[{\"type\":\"text\",\"text\":"
               "\"c\"},{\"type\":\"refusal\",\"refusal\":\"no\"}]},"
               "{\"role\":\"assistant\",\"refusal\":\"nope\",\"function_call\":{\"name\":\"f\","
               "\"arguments\":\"{}\"}}],"
               "\"functions\":[{\"name\":\"f\",\"description\":\"d\",\"parameters\":{}}]}",
               NULL, false, &r);
    /* ab 2 + bob 3 + c 1 + no 2 + nope 4 + f 1 + {} 2 + f 1 + d 1 + {} 2 = 19 -> 5; 3 msgs */
    assert_int_equal(r.prompt_bytes, 19);
    assert_int_equal(r.prompt_tokens_est, 17);
    jval_free(doc);
}

static void test_json_size(void **state)
{
    (void)state;
    llm_request_t r;
    /* serialized: {"s":"a\"\n\u0001","n":0.1,"i":-12,"b":false,"z":null,"e":100,
     * "arr":[1,2]} = 74 bytes (1e2 is integral: "100") */
    jval_doc_t *doc = req_ok(LLM_REQ_OPENAI_CHAT,
                             "{\"model\":\"m\",\"messages\":[],\"functions\":[{\"parameters\":"
                             "{\"s\":\"a\\\"\\n\\u0001\",\"n\":0.1,\"i\":-12,\"b\":false,"
                             "\"z\":null,\"e\":1e2,\"arr\":[1,2]}}]}",
                             NULL, false, &r);
    assert_int_equal(r.prompt_bytes, 74);
    assert_int_equal(r.prompt_messages, 0);
    assert_int_equal(r.prompt_tokens_est, 19);
    jval_free(doc);

    /* UTF-8 counts bytes: "é" is 2, "€" is 3; a key with \t escapes to 2 */
    doc = req_ok(LLM_REQ_OPENAI_CHAT,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\xa9\xe2\x82"
                 "\xac\"}],\"functions\":[{\"parameters\":{\"\\t\":true,\"x\":[]}}]}",
                 NULL, false, &r);
    /* 5 + {"\t":true,"x":[]} = 1+4+1+4+1+4+2+1 = 18 -> 23 bytes -> 6 + 4 */
    assert_int_equal(r.prompt_bytes, 23);
    assert_int_equal(r.prompt_tokens_est, 10);
    jval_free(doc);
}

/* ---- OpenAI Responses and embeddings ------------------------------------------ */

static void test_openai_responses(void **state)
{
    (void)state;
    llm_request_t r;
    jval_doc_t *doc =
        req_ok(LLM_REQ_OPENAI_RESPONSES,
               "{\"model\":\"gpt-4.1\",\"instructions\":\"Be nice\",\"input\":["
               "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Summarize\"},"
               "{\"type\":\"input_file\",\"filename\":\"a.pdf\",\"file_id\":\"file-1\"},"
               "{\"type\":\"input_image\",\"image_url\":\"https://x/i.png\"}]},"
               "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"{}\"},"
               "{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":\"done\"}],"
               "\"stream\":true,\"max_output_tokens\":50,"
               "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"description\":\"d\","
               "\"parameters\":{}},{\"type\":\"web_search\"}]}",
               NULL, false, &r);
    assert_slice(r.model, "gpt-4.1");
    assert_true(r.stream);
    assert_false(r.include_usage);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 50);
    /* Be nice 7 + Summarize 9 + f 1 + {} 2 + done 4 + tool f 1 d 1 {} 2 = 27 -> 7;
     * instructions + 3 items = 4 messages -> 16 */
    assert_int_equal(r.prompt_bytes, 27);
    assert_int_equal(r.prompt_messages, 4);
    assert_int_equal(r.prompt_tokens_est, 23);
    assert_int_equal(r.nfiles, 1);
    assert_slice(r.files[0], "a.pdf");
    jval_free(doc);

    /* a string input; reasoning summary and output given as parts */
    doc = req_ok(LLM_REQ_OPENAI_RESPONSES, "{\"model\":\"o3\",\"input\":\"Hi there\"}", NULL, false,
                 &r);
    assert_false(r.stream);
    assert_false(r.has_max_output);
    assert_int_equal(r.prompt_tokens_est, 2 + 4); /* 8 bytes, 1 message */
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_RESPONSES,
                 "{\"model\":\"o3\",\"previous_response_id\":\"resp_1\",\"input\":["
                 "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
                 "\"abc\"}]},{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":"
                 "[{\"type\":\"input_text\",\"text\":\"xy\"}]}]}",
                 NULL, false, &r);
    assert_int_equal(r.prompt_bytes, 5);
    assert_int_equal(r.prompt_tokens_est, 2 + 8);
    jval_free(doc);

    /* no input at all (a stored prompt) is accepted */
    doc = req_ok(LLM_REQ_OPENAI_RESPONSES, "{\"model\":\"o3\",\"input\":null}", NULL, false, &r);
    assert_int_equal(r.prompt_tokens_est, 0);
    jval_free(doc);
}

static void test_openai_embeddings(void **state)
{
    (void)state;
    llm_request_t r;
    jval_doc_t *doc = req_ok(LLM_REQ_OPENAI_EMBEDDINGS,
                             "{\"model\":\"text-embedding-3-small\",\"input\":\"hello world\","
                             "\"encoding_format\":\"float\"}",
                             NULL, false, &r);
    assert_slice(r.model, "text-embedding-3-small");
    assert_false(r.stream);
    assert_false(r.has_max_output);
    assert_int_equal(r.prompt_messages, 0);
    assert_int_equal(r.prompt_tokens_est, 3); /* 11 bytes */
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":[\"abc\",\"defgh\"]}", NULL,
                 false, &r);
    assert_int_equal(r.prompt_tokens_est, 2); /* 8 bytes */
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":[[1,2,3],[4]]}", NULL,
                 false, &r);
    assert_int_equal(r.prompt_bytes, 0);
    assert_int_equal(r.prompt_token_ids, 4);
    assert_int_equal(r.prompt_tokens_est, 4);
    jval_free(doc);

    doc = req_ok(LLM_REQ_OPENAI_EMBEDDINGS, "{\"model\":\"e\",\"input\":[1,2]}", NULL, false, &r);
    assert_int_equal(r.prompt_tokens_est, 2);
    jval_free(doc);

    /* stream / max_tokens mean nothing here */
    doc = req_ok(LLM_REQ_OPENAI_EMBEDDINGS,
                 "{\"model\":\"e\",\"input\":[],\"stream\":\"x\",\"max_tokens\":-1}", NULL, false,
                 &r);
    assert_false(r.stream);
    assert_false(r.has_max_output);
    jval_free(doc);
}

/* ---- Anthropic ---------------------------------------------------------------- */

static const char anthropic_body[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":true,"
    "\"system\":\"You are terse.\",\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{\"type\":\"text\","
    "\"media_type\":\"text/plain\",\"data\":\"The grass is green.\"},\"title\":\"Notes\","
    "\"context\":\"ctx\",\"citations\":{\"enabled\":true}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
    "\"data\":\"iVBORw0KGgo=\"}},"
    "{\"type\":\"text\",\"text\":\"Color?\"}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
    "\"name\":\"look\",\"input\":{\"q\":\"x\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
    "\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}]}],"
    "\"tools\":[{\"name\":\"look\",\"description\":\"Look\",\"input_schema\":"
    "{\"type\":\"object\"}}]}";

static void test_anthropic_messages(void **state)
{
    (void)state;
    llm_request_t r;
    jval_doc_t *doc = req_ok(LLM_REQ_ANTHROPIC_MESSAGES, anthropic_body, NULL, false, &r);
    assert_slice(r.model, "claude-sonnet-4-5");
    assert_true(r.stream);
    assert_false(r.include_usage);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 1024);
    /* system 14 + Notes 5 + ctx 3 + data 19 + Color? 6 + look 4 + {"q":"x"} 9 + ok 2 +
     * tool: look 4 + Look 4 + {"type":"object"} 17 = 87 -> 22; system + 3 msgs -> 16 */
    assert_int_equal(r.prompt_bytes, 87);
    assert_int_equal(r.prompt_messages, 4);
    assert_int_equal(r.prompt_tokens_est, 38);
    assert_int_equal(r.nfiles, 1);
    assert_slice(r.files[0], "Notes");
    jval_free(doc);

    /* system as text blocks; string content; thinking; nested document in tool_result */
    doc = req_ok(LLM_REQ_ANTHROPIC_MESSAGES,
                 "{\"model\":\"claude-opus-4-1\",\"max_tokens\":10,\"stream\":false,"
                 "\"system\":[{\"type\":\"text\",\"text\":\"abc\",\"cache_control\":"
                 "{\"type\":\"ephemeral\"}}],\"messages\":["
                 "{\"role\":\"user\",\"content\":\"hi\"},"
                 "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
                 "\"hmm\",\"signature\":\"sig\"}]},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                 "\"t\",\"content\":[{\"type\":\"document\",\"title\":\"inner.txt\",\"source\":"
                 "{\"type\":\"content\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]}}]}]}]}",
                 NULL, false, &r);
    assert_false(r.stream);
    /* abc 3 + hi 2 + hmm 3 + inner.txt 9 + q 1 = 18 -> 5; 4 messages -> 16 */
    assert_int_equal(r.prompt_bytes, 18);
    assert_int_equal(r.prompt_tokens_est, 21);
    assert_int_equal(r.nfiles, 1);
    assert_slice(r.files[0], "inner.txt");
    jval_free(doc);

    /* a PDF document without a title: no name */
    doc = req_ok(LLM_REQ_ANTHROPIC_MESSAGES,
                 "{\"model\":\"c\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":"
                 "[{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
                 "\"application/pdf\",\"data\":\"JVBERi0=\"}}]}]}",
                 NULL, false, &r);
    assert_int_equal(r.nfiles, 0);
    assert_int_equal(r.prompt_bytes, 0);
    assert_false(r.stream);
    jval_free(doc);
}

static void test_anthropic_count_tokens(void **state)
{
    (void)state;
    llm_request_t r;
    /* the same body: stream and max_tokens are not read */
    jval_doc_t *doc = req_ok(LLM_REQ_ANTHROPIC_COUNT_TOKENS, anthropic_body, NULL, false, &r);
    assert_false(r.stream);
    assert_false(r.has_max_output);
    assert_int_equal(r.prompt_tokens_est, 38);
    jval_free(doc);
    doc = req_ok(LLM_REQ_ANTHROPIC_COUNT_TOKENS,
                 "{\"model\":\"c\",\"stream\":\"yes\",\"max_tokens\":\"x\",\"messages\":"
                 "[{\"role\":\"user\",\"content\":\"Hello, world\"}]}",
                 NULL, false, &r);
    assert_int_equal(r.prompt_tokens_est, 3 + 4);
    jval_free(doc);
}

/* ---- Gemini ------------------------------------------------------------------- */

static void test_gemini(void **state)
{
    (void)state;
    llm_request_t r;
    const char *body =
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Describe\"},"
        "{\"fileData\":{\"mimeType\":\"application/pdf\",\"fileUri\":"
        "\"https://generativelanguage.googleapis.com/v1beta/files/abc\",\"displayName\":"
        "\"spec.pdf\"}},{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBOR\"}}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"x\":1}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":"
        "{\"y\":true}}}]}],"
        "\"systemInstruction\":{\"parts\":[{\"text\":\"Sys\"}]},"
        "\"generationConfig\":{\"maxOutputTokens\":256,\"temperature\":0.2},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\",\"description\":\"fn\","
        "\"parameters\":{\"type\":\"OBJECT\"}}]},{\"googleSearch\":{}}],"
        "\"model\":\"ignored\",\"stream\":false}";
    jval_doc_t *doc = req_ok(LLM_REQ_GEMINI_GENERATE, body, "gemini-2.5-flash", true, &r);
    assert_slice(r.model, "gemini-2.5-flash");
    assert_true(r.stream);
    assert_true(r.has_max_output);
    assert_int_equal(r.max_output, 256);
    /* Describe 8 + f 1 + {"x":1} 7 + f 1 + {"y":true} 10 + Sys 3 + tool f 1 fn 2
     * {"type":"OBJECT"} 17 = 50 -> 13; 3 contents + systemInstruction -> 16 */
    assert_int_equal(r.prompt_bytes, 50);
    assert_int_equal(r.prompt_messages, 4);
    assert_int_equal(r.prompt_tokens_est, 29);
    assert_int_equal(r.nfiles, 1);
    assert_slice(r.files[0], "spec.pdf");
    jval_free(doc);

    /* generateContent: not streaming */
    doc = req_ok(LLM_REQ_GEMINI_GENERATE, body, "gemini-2.5-flash", false, &r);
    assert_false(r.stream);
    jval_free(doc);

    /* snake_case spellings, as in the REST docs' curl examples */
    doc = req_ok(LLM_REQ_GEMINI_GENERATE,
                 "{\"system_instruction\":{\"parts\":[{\"text\":\"You are a cat.\"}]},"
                 "\"contents\":[{\"parts\":[{\"text\":\"Hello there\"},{\"file_data\":"
                 "{\"mime_type\":\"text/plain\",\"file_uri\":\"u\",\"display_name\":\"n.txt\"}},"
                 "{\"executable_code\":{\"language\":\"PYTHON\",\"code\":\"1+1\"}},"
                 "{\"code_execution_result\":{\"outcome\":\"OUTCOME_OK\",\"output\":\"2\"}}]}],"
                 "\"generation_config\":{\"max_output_tokens\":5},"
                 "\"tools\":[{\"function_declarations\":[{\"name\":\"g\","
                 "\"parametersJsonSchema\":{}}]}]}",
                 "models/gemini-2.0-flash", false, &r);
    assert_slice(r.model, "models/gemini-2.0-flash");
    assert_int_equal(r.max_output, 5);
    /* 14 + 11 + 3 + 1 + g 1 + {} 2 = 32 -> 8; 2 messages -> 8 */
    assert_int_equal(r.prompt_bytes, 32);
    assert_int_equal(r.prompt_tokens_est, 16);
    assert_int_equal(r.nfiles, 1);
    assert_slice(r.files[0], "n.txt");
    jval_free(doc);

    /* a content without parts, a string systemInstruction */
    doc = req_ok(LLM_REQ_GEMINI_GENERATE,
                 "{\"systemInstruction\":\"abcde\",\"contents\":[{\"role\":\"user\"}]}", "g", false,
                 &r);
    assert_int_equal(r.prompt_tokens_est, 2 + 8);
    assert_false(r.has_max_output);
    jval_free(doc);
}

/* ---- file name bounds --------------------------------------------------------- */

static void test_file_bounds(void **state)
{
    (void)state;
    size_t cap = 128 * 1024;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t n = (size_t)snprintf(body, cap,
                                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                "\"content\":[");
    /* 1030 x 'a'; 1023 x 'b' + U+00E9 (bytes 1023..1024 of the name); 68 short ones */
    n += (size_t)snprintf(body + n, cap - n, "{\"type\":\"file\",\"file\":{\"filename\":\"");
    memset(body + n, 'a', 1030);
    n += 1030;
    n += (size_t)snprintf(body + n, cap - n, "\"}},{\"type\":\"file\",\"file\":{\"filename\":\"");
    memset(body + n, 'b', 1023);
    n += 1023;
    n += (size_t)snprintf(body + n, cap - n,
                          "\xc3\xa9\"}},{\"type\":\"file\",\"file\":"
                          "{\"filename\":\"\"}}");
    for (int i = 0; i < 68; i++)
        n += (size_t)snprintf(body + n, cap - n,
                              ",{\"type\":\"file\",\"file\":{\"filename\":\"f%d.txt\"}}", i);
    n += (size_t)snprintf(body + n, cap - n, "]}]}");
    assert_true(n < cap);

    llm_request_t r;
    jval_doc_t *doc = req_ok(LLM_REQ_OPENAI_CHAT, body, NULL, false, &r);
    assert_int_equal(r.files_seen, 70); /* the empty name is skipped */
    assert_int_equal(r.nfiles, LLM_REQUEST_MAX_FILES);
    assert_int_equal(r.files_clipped, 2);
    assert_int_equal(r.files[0].len, 1024);
    assert_int_equal(r.files[0].ptr[1023], 'a');
    assert_int_equal(r.files[1].len, 1023); /* the split U+00E9 is dropped whole */
    assert_int_equal(r.files[1].ptr[1022], 'b');
    assert_slice(r.files[2], "f0.txt");
    assert_slice(r.files[63], "f61.txt");
    jval_free(doc);
    free(body);
}

/* ---- errors ------------------------------------------------------------------- */

static void test_errors_common(void **state)
{
    (void)state;
    llm_request_t r;
    char err[160];
    /* not an object */
    req_err(LLM_REQ_OPENAI_CHAT, "[]", "body: must be a JSON object, not array");
    req_err(LLM_REQ_GEMINI_GENERATE, "\"x\"", "body: must be a JSON object, not string");
    assert_int_equal(llm_request_parse(LLM_REQ_OPENAI_CHAT, NULL, NULL, false, &r, err, sizeof err),
                     LLM_REQUEST_EINVAL);
    assert_string_equal(err, "body: must be a JSON object, not none");

    /* model, for every kind that reads it from the body */
    static const llm_request_kind_t body_model[] = {
        LLM_REQ_OPENAI_CHAT, LLM_REQ_OPENAI_RESPONSES, LLM_REQ_OPENAI_EMBEDDINGS,
        LLM_REQ_ANTHROPIC_MESSAGES, LLM_REQ_ANTHROPIC_COUNT_TOKENS};
    for (size_t i = 0; i < sizeof body_model / sizeof body_model[0]; i++) {
        req_err(body_model[i], "{\"messages\":[],\"input\":\"x\"}", "model: required string");
        req_err(body_model[i], "{\"model\":4,\"messages\":[],\"input\":\"x\"}",
                "model: required string");
        req_err(body_model[i], "{\"model\":\"\",\"messages\":[],\"input\":\"x\"}",
                "model: required string");
        req_err(body_model[i], "{\"model\":null,\"messages\":[],\"input\":\"x\"}",
                "model: required string");
    }
    /* Gemini: from the URL */
    jval_doc_t *doc = parse_ok("{\"contents\":[]}");
    assert_int_equal(
        llm_request_parse(LLM_REQ_GEMINI_GENERATE, jval_root(doc), NULL, true, &r, err, sizeof err),
        LLM_REQUEST_EINVAL);
    assert_string_equal(err, "model: required string");
    assert_int_equal(
        llm_request_parse(LLM_REQ_GEMINI_GENERATE, jval_root(doc), "", true, &r, err, sizeof err),
        LLM_REQUEST_EINVAL);
    assert_string_equal(err, "model: required string");

    /* unknown kind, no output, no error buffer */
    assert_int_equal(
        llm_request_parse((llm_request_kind_t)99, jval_root(doc), "g", false, &r, err, sizeof err),
        LLM_REQUEST_EINVAL);
    assert_string_equal(err, "unknown request kind 99");
    assert_int_equal(llm_request_parse(LLM_REQ_GEMINI_GENERATE, jval_root(doc), "g", false, NULL,
                                       err, sizeof err),
                     LLM_REQUEST_EINVAL);
    assert_string_equal(err, "no output");
    assert_int_equal(
        llm_request_parse(LLM_REQ_GEMINI_GENERATE, jval_root(doc), NULL, false, &r, NULL, 0),
        LLM_REQUEST_EINVAL);
    assert_int_equal(
        llm_request_parse(LLM_REQ_GEMINI_GENERATE, jval_root(doc), "g", false, &r, NULL, 0),
        LLM_REQUEST_OK);
    /* a 1-byte buffer gets just the NUL */
    err[0] = 'x';
    assert_int_equal(
        llm_request_parse(LLM_REQ_OPENAI_CHAT, jval_root(doc), NULL, false, &r, err, 1),
        LLM_REQUEST_EINVAL);
    assert_int_equal(err[0], '\0');
    jval_free(doc);
}

static void test_errors_openai(void **state)
{
    (void)state;
    const llm_request_kind_t K = LLM_REQ_OPENAI_CHAT;
    req_err(K, "{\"model\":\"m\"}", "messages: required array");
    req_err(K, "{\"model\":\"m\",\"messages\":{}}", "messages: required array");
    req_err(K, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},\"hi\"]}",
            "messages[1]: must be an object");
    req_err(K, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
            "messages[0].content: must be a string, an array or null");
    req_err(K,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
            "\"text\":\"a\"},\"b\"]}]}",
            "messages[0].content[1]: must be an object");
    req_err(K, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}",
            "messages[0].tool_calls: must be an array");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"stream\":\"true\"}",
            "stream: must be a boolean");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"stream\":1}", "stream: must be a boolean");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"stream_options\":true}",
            "stream_options: must be an object");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"stream_options\":{\"include_usage\":1}}",
            "stream_options.include_usage: must be a boolean");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":-1}",
            "max_tokens: must be a non-negative integer");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":1.5}",
            "max_tokens: must be a non-negative integer");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":\"10\"}",
            "max_tokens: must be a non-negative integer");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"max_completion_tokens\":1e30}",
            "max_completion_tokens: must be a non-negative integer");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"tools\":{}}", "tools: must be an array");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"tools\":[{},1]}", "tools[1]: must be an object");
    req_err(K, "{\"model\":\"m\",\"messages\":[],\"functions\":\"f\"}",
            "functions: must be an array");

    const llm_request_kind_t R = LLM_REQ_OPENAI_RESPONSES;
    req_err(R, "{\"model\":\"m\",\"input\":5}", "input: must be a string or an array");
    req_err(R, "{\"model\":\"m\",\"input\":[\"x\"]}", "input[0]: must be an object");
    req_err(R, "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":{}}]}",
            "input[0].content: must be a string, an array or null");
    req_err(R, "{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"output\":1}]}",
            "input[0].output: must be a string, an array or null");
    req_err(R, "{\"model\":\"m\",\"input\":[{\"type\":\"reasoning\",\"summary\":[1]}]}",
            "input[0].summary[0]: must be an object");
    req_err(R, "{\"model\":\"m\",\"stream\":{}}", "stream: must be a boolean");
    req_err(R, "{\"model\":\"m\",\"max_output_tokens\":-5}",
            "max_output_tokens: must be a non-negative integer");
    req_err(R, "{\"model\":\"m\",\"tools\":[null]}", "tools[0]: must be an object");

    const llm_request_kind_t E = LLM_REQ_OPENAI_EMBEDDINGS;
    req_err(E, "{\"model\":\"m\"}", "input: required string or array");
    req_err(E, "{\"model\":\"m\",\"input\":{}}", "input: required string or array");
    req_err(E, "{\"model\":\"m\",\"input\":[\"a\",true]}",
            "input[1]: must be a string, an integer or an array of integers");
    req_err(E, "{\"model\":\"m\",\"input\":[1,-2]}", "input[1]: must be a non-negative integer");
    req_err(E, "{\"model\":\"m\",\"input\":[[1,\"x\"]]}",
            "input[0][1]: must be a non-negative integer");
}

static void test_errors_anthropic_gemini(void **state)
{
    (void)state;
    const llm_request_kind_t A = LLM_REQ_ANTHROPIC_MESSAGES;
    req_err(A, "{\"model\":\"c\",\"max_tokens\":1}", "messages: required array");
    req_err(LLM_REQ_ANTHROPIC_COUNT_TOKENS, "{\"model\":\"c\",\"messages\":\"x\"}",
            "messages: required array");
    req_err(A, "{\"model\":\"c\",\"messages\":[[]]}", "messages[0]: must be an object");
    req_err(A, "{\"model\":\"c\",\"system\":1,\"messages\":[]}",
            "system: must be a string or an array");
    req_err(A, "{\"model\":\"c\",\"system\":[\"x\"],\"messages\":[]}",
            "system[0]: must be an object");
    req_err(A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":{}}]}",
            "messages[0].content: must be a string or an array");
    req_err(A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[1]}]}",
            "messages[0].content[0]: must be an object");
    req_err(A,
            "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"tool_result\",\"content\":7}]}]}",
            "messages[0].content[0].content: must be a string or an array");
    req_err(A,
            "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"document\",\"source\":{\"type\":\"content\",\"content\":[2]}}]}]}",
            "messages[0].content[0].source.content[0]: must be an object");
    req_err(A, "{\"model\":\"c\",\"messages\":[],\"stream\":\"no\"}", "stream: must be a boolean");
    req_err(A, "{\"model\":\"c\",\"messages\":[],\"max_tokens\":true}",
            "max_tokens: must be a non-negative integer");
    req_err(A, "{\"model\":\"c\",\"messages\":[],\"tools\":[\"t\"]}",
            "tools[0]: must be an object");

    const llm_request_kind_t G = LLM_REQ_GEMINI_GENERATE;
    req_err(G, "{}", "contents: required array");
    req_err(G, "{\"contents\":{\"parts\":[]}}", "contents: required array");
    req_err(G, "{\"contents\":[1]}", "contents[0]: must be an object");
    req_err(G, "{\"contents\":[{\"parts\":{\"text\":\"x\"}}]}",
            "contents[0].parts: must be an array");
    req_err(G, "{\"contents\":[{\"parts\":[\"x\"]}]}", "contents[0].parts[0]: must be an object");
    req_err(G, "{\"contents\":[],\"systemInstruction\":5}", "systemInstruction: must be an object");
    req_err(G, "{\"contents\":[],\"systemInstruction\":{\"parts\":7}}",
            "systemInstruction.parts: must be an array");
    req_err(G, "{\"contents\":[],\"generationConfig\":[]}", "generationConfig: must be an object");
    req_err(G, "{\"contents\":[],\"generationConfig\":{\"maxOutputTokens\":-1}}",
            "generationConfig.maxOutputTokens: must be a non-negative integer");
    req_err(G, "{\"contents\":[],\"generation_config\":{\"max_output_tokens\":\"8\"}}",
            "generationConfig.maxOutputTokens: must be a non-negative integer");
    req_err(G, "{\"contents\":[],\"tools\":{}}", "tools: must be an array");
    req_err(G, "{\"contents\":[],\"tools\":[1]}", "tools[0]: must be an object");
    req_err(G, "{\"contents\":[],\"tools\":[{\"functionDeclarations\":{}}]}",
            "tools[0].functionDeclarations: must be an array");
    req_err(G, "{\"contents\":[],\"tools\":[{\"functionDeclarations\":[3]}]}",
            "tools[0].functionDeclarations[0]: must be an object");
}

static void test_kind_names(void **state)
{
    (void)state;
    llm_request_kind_t k;
    for (int i = LLM_REQ_OPENAI_CHAT; i <= LLM_REQ_GEMINI_GENERATE; i++) {
        const char *name = llm_request_kind_name((llm_request_kind_t)i);
        assert_string_not_equal(name, "?");
        assert_int_equal(llm_request_kind_parse(name, &k), 0);
        assert_int_equal(k, i);
    }
    assert_string_equal(llm_request_kind_name(LLM_REQ_ANTHROPIC_COUNT_TOKENS),
                        "anthropic-count-tokens");
    assert_string_equal(llm_request_kind_name((llm_request_kind_t)42), "?");
    assert_int_equal(llm_request_kind_parse("groq", &k), 0);
    assert_int_equal(k, LLM_REQ_OPENAI_CHAT);
    k = LLM_REQ_GEMINI_GENERATE;
    assert_int_equal(llm_request_kind_parse("mistral", &k), 0);
    assert_int_equal(k, LLM_REQ_OPENAI_CHAT);
    assert_int_equal(llm_request_kind_parse("openai", &k), -1);
    assert_int_equal(llm_request_kind_parse(NULL, &k), -1);
    assert_int_equal(llm_request_kind_parse("groq", NULL), -1);

    assert_int_equal(llm_request_usage_provider(LLM_REQ_OPENAI_CHAT), LLM_OPENAI_CHAT);
    assert_int_equal(llm_request_usage_provider(LLM_REQ_OPENAI_EMBEDDINGS), LLM_OPENAI_CHAT);
    assert_int_equal(llm_request_usage_provider(LLM_REQ_OPENAI_RESPONSES), LLM_OPENAI_RESPONSES);
    assert_int_equal(llm_request_usage_provider(LLM_REQ_ANTHROPIC_MESSAGES), LLM_ANTHROPIC);
    assert_int_equal(llm_request_usage_provider(LLM_REQ_ANTHROPIC_COUNT_TOKENS), LLM_ANTHROPIC);
    assert_int_equal(llm_request_usage_provider(LLM_REQ_GEMINI_GENERATE), LLM_GEMINI);
}

/* An Azure deployment in the URL names the model, body "model" or not. */
static void test_url_model_azure(void **state)
{
    (void)state;
    const char *bodies[] = {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                            "{\"model\":\"other\",\"messages\":[]}"};
    for (size_t i = 0; i < 2; i++) {
        jval_doc_t *doc = NULL;
        char err[160];
        assert_int_equal(jval_parse(bodies[i], strlen(bodies[i]), 1000, &doc, err, sizeof err),
                         JVAL_OK);
        llm_request_t r;
        assert_int_equal(llm_request_parse(LLM_REQ_OPENAI_CHAT, jval_root(doc), "gpt-4o-deploy",
                                           false, &r, err, sizeof err),
                         LLM_REQUEST_OK);
        assert_int_equal(r.model.len, strlen("gpt-4o-deploy"));
        assert_memory_equal(r.model.ptr, "gpt-4o-deploy", r.model.len);
        jval_free(doc);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_model_azure),
        cmocka_unit_test(test_openai_chat_basic),
        cmocka_unit_test(test_openai_chat_flags),
        cmocka_unit_test(test_openai_chat_parts_tools_files),
        cmocka_unit_test(test_openai_chat_legacy_and_roles),
        cmocka_unit_test(test_json_size),
        cmocka_unit_test(test_openai_responses),
        cmocka_unit_test(test_openai_embeddings),
        cmocka_unit_test(test_anthropic_messages),
        cmocka_unit_test(test_anthropic_count_tokens),
        cmocka_unit_test(test_gemini),
        cmocka_unit_test(test_file_bounds),
        cmocka_unit_test(test_errors_common),
        cmocka_unit_test(test_errors_openai),
        cmocka_unit_test(test_errors_anthropic_gemini),
        cmocka_unit_test(test_kind_names),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
