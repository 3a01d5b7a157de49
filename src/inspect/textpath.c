/*
 * textpath — file paths mentioned in free text (see textpath.h for the
 * shapes recognised and the contract).
 *
 * One pass over the lines finds the line-anchored shapes (head/tail
 * headers, "File:" lines, code-fence info strings) and the commands that
 * print a file (at a line start, after a prompt or a shell separator); one
 * memchr() pass over double quotes finds quoted keys naming a file.
 * Each mention becomes a candidate [start, end); candidates are sorted and
 * deduplicated before the callback sees them, so the output does not
 * depend on which pass found a path.
 *
 * A path token is either quoted ('…' or "…", the quotes excluded) or runs
 * to the next blank or shell metacharacter; trailing punctuation that ends
 * a sentence (".,:;)") is dropped.  Nothing is unescaped or expanded:
 * "~/.aws/credentials" is checked as written, and the path rules match any
 * suffix that starts at a '/', which covers "~", "$HOME" and absolute
 * prefixes alike.
 */
#include "inspect/textpath.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct tp_span {
    size_t start, end;
} tp_span_t;

typedef struct tp_list {
    tp_span_t *v;
    size_t n, cap;
    bool oom;
    size_t work, budget; /* bytes scanned for tokens; stop past the budget */
} tp_list_t;

static void tp_add(tp_list_t *l, size_t start, size_t end)
{
    if (end <= start || end - start > TEXTPATH_MAX_PATH || l->oom) return;
    if (l->n >= TEXTPATH_MAX_CANDIDATES) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        tp_span_t *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (tp_span_t){start, end};
}

static size_t tp_line_end(const char *d, size_t len, size_t i)
{
    const char *nl = memchr(d + i, '\n', len - i);
    return nl ? (size_t)(nl - d) : len;
}

static bool tp_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Ends an unquoted path: blanks, line ends and shell metacharacters. */
static bool tp_stop(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '|' || c == '&' ||
           c == '<' || c == '>' || c == '"' || c == '\'' || c == '`' || c == ')' || c == '(' ||
           c == '{' || c == '}' || c == ',' || c == '\0';
}

/* The path token at p (< end); its range is added to l.  Returns the
 * position after the token (p itself when there is none). */
static size_t tp_token(const char *d, size_t p, size_t end, tp_list_t *l)
{
    if (p >= end || l->work > l->budget) return p;
    if (d[p] == '"' || d[p] == '\'') {
        /* bounded: a quoted token may span separators, so later mentions
         * may scan the same bytes again */
        char q = d[p];
        size_t s = p + 1, e = s;
        while (e < end && d[e] != q && d[e] != '\n' && e - s <= TEXTPATH_MAX_PATH)
            e++;
        l->work += e - s;
        if (e >= end || d[e] != q) return p;
        tp_add(l, s, e);
        return e + 1;
    }
    /* unbounded but linear: an unquoted token ends at every separator, so
     * no two mentions scan the same token; one too long is skipped whole */
    size_t s = p, e = p;
    while (e < end && !tp_stop(d[e]))
        e++;
    l->work += e - s;
    size_t after = e;
    while (e > s && (d[e - 1] == '.' || d[e - 1] == ':' || d[e - 1] == ',' || d[e - 1] == ';'))
        e--;
    /* "." alone or ".." is a directory, not a file; a leading '.' of a file
     * name (".env") is kept because only trailing dots are dropped */
    if (e > s) tp_add(l, s, e);
    return after > p ? after : p;
}

/* ---------------------------------------------------------------- */
/* commands that print a file                                        */

typedef struct tp_word {
    const char *w;
    size_t n;
} tp_word_t;
#define TP_WORD(s)                                                                                 \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static const tp_word_t tp_commands[] = {TP_WORD("cat"),    TP_WORD("head"),    TP_WORD("tail"),
                                        TP_WORD("less"),   TP_WORD("more"),    TP_WORD("bat"),
                                        TP_WORD("tac"),    TP_WORD("nl"),      TP_WORD("xxd"),
                                        TP_WORD("base64"), TP_WORD("strings"), {NULL, 0}};
/* first letters of the commands, to reject most words with one load */
static const bool tp_command_first[256] = {
    ['c'] = true, ['h'] = true, ['t'] = true, ['l'] = true, ['m'] = true,
    ['b'] = true, ['n'] = true, ['x'] = true, ['s'] = true};

/* After a command word: options, then every operand up to a separator;
 * `end` is the end of the line. */
static void tp_operands(const char *d, size_t i, size_t end, tp_list_t *l)
{
    for (int args = 0; args < 16 && i < end; args++) {
        while (i < end && tp_blank(d[i]))
            i++;
        if (i >= end || d[i] == ';' || d[i] == '|' || d[i] == '&' || d[i] == '>' || d[i] == '<' ||
            d[i] == ')' || d[i] == '`' || d[i] == '\r')
            return;
        if (d[i] == '-') { /* an option: -n, --lines=5 ("-n 5" reads 5 as a file: harmless) */
            while (i < end && !tp_blank(d[i]))
                i++;
            continue;
        }
        size_t next = tp_token(d, i, end, l);
        if (next == i) return;
        i = next;
    }
}

/* A command word at i (after blanks): its operands are candidates. */
static void tp_command_at(const char *d, size_t i, size_t end, tp_list_t *l)
{
    while (i < end && tp_blank(d[i]))
        i++;
    if (i >= end || !tp_command_first[(unsigned char)d[i]]) return;
    for (size_t c = 0; tp_commands[c].w; c++) {
        size_t wl = tp_commands[c].n;
        if (end - i > wl && d[i] == tp_commands[c].w[0] && tp_blank(d[i + wl]) &&
            memcmp(d + i, tp_commands[c].w, wl) == 0) {
            tp_operands(d, i + wl, end, l);
            return;
        }
    }
}

/* Commands at the start of a line [s, end) (s after leading blanks) and
 * after a shell prompt ("$ ", "user@host:~/src$ ", "# ", "% ", "> "). */
static void tp_line_commands(const char *d, size_t s, size_t end, tp_list_t *l)
{
    tp_command_at(d, s, end, l);
    /* the prompt: the line's first word ends in $ # % > and a blank follows */
    size_t w = s;
    while (w < end && !tp_blank(d[w]) && w - s < 96)
        w++;
    if (w > s && w < end && strchr("$#%>", d[w - 1])) tp_command_at(d, w, end, l);
}

/* Commands after a separator (| || && ; ` $( ( ) or at the start of a
 * quoted string (a tool-call argument such as "cat .env"). */
static void tp_after_separator(const char *d, size_t len, size_t i, size_t *line_end, tp_list_t *l)
{
    size_t j = i + 1;
    while (j < len && tp_blank(d[j]))
        j++;
    if (j >= len || !tp_command_first[(unsigned char)d[j]]) return;
    /* j only grows: the line end found last is still j's until j passes
     * it (no quadratic rescans of one long line) */
    if (*line_end < j || *line_end == 0) *line_end = tp_line_end(d, len, j);
    tp_command_at(d, j, *line_end, l);
}

static void tp_separator_commands(const char *d, size_t len, tp_list_t *l)
{
    static const bool sep[256] = {['|'] = true, ['&'] = true, [';'] = true, ['`'] = true,
                                  ['('] = true, ['"'] = true, ['\''] = true};
    size_t base = 0, line_end = 0;
#ifdef __SSE2__
    /* 16 bytes at a time; every separator of a block from one mask */
    for (; base + 16 <= len; base += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(d + base));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('|')),
                                                           _mm_cmpeq_epi8(v, _mm_set1_epi8('&'))),
                                              _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(';')),
                                                           _mm_cmpeq_epi8(v, _mm_set1_epi8('`')))),
                                 _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('(')),
                                                           _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
                                              _mm_cmpeq_epi8(v, _mm_set1_epi8('\''))));
        for (unsigned bits = (unsigned)_mm_movemask_epi8(m); bits; bits &= bits - 1)
            tp_after_separator(d, len, base + (size_t)__builtin_ctz(bits), &line_end, l);
    }
#endif
    for (size_t i = base; i < len; i++)
        if (sep[(unsigned char)d[i]]) tp_after_separator(d, len, i, &line_end, l);
}

/* Every shape below contains one of these (compared case-insensitively):
 * a command word and the blank after it, "==> ", a "file:"-style label,
 * a fence, or a quoted key naming a file.  Keep in step with tp_commands,
 * tp_file_line, tp_fence and tp_file_key: a shape without a trigger is
 * never looked for. */
typedef enum { TP_K_COMMAND, TP_K_HEADER, TP_K_LABEL, TP_K_FENCE, TP_K_KEY } tp_kind_t;

static const struct {
    const char *lit;
    tp_kind_t kind;
} tp_triggers[] = {{"cat ", TP_K_COMMAND},
                   {"cat\t", TP_K_COMMAND},
                   {"head ", TP_K_COMMAND},
                   {"head\t", TP_K_COMMAND},
                   {"tail ", TP_K_COMMAND},
                   {"tail\t", TP_K_COMMAND},
                   {"less ", TP_K_COMMAND},
                   {"less\t", TP_K_COMMAND},
                   {"more ", TP_K_COMMAND},
                   {"more\t", TP_K_COMMAND},
                   {"bat ", TP_K_COMMAND},
                   {"bat\t", TP_K_COMMAND},
                   {"tac ", TP_K_COMMAND},
                   {"tac\t", TP_K_COMMAND},
                   {"nl ", TP_K_COMMAND},
                   {"nl\t", TP_K_COMMAND},
                   {"xxd ", TP_K_COMMAND},
                   {"xxd\t", TP_K_COMMAND},
                   {"base64 ", TP_K_COMMAND},
                   {"base64\t", TP_K_COMMAND},
                   {"strings ", TP_K_COMMAND},
                   {"strings\t", TP_K_COMMAND},
                   {"==> ", TP_K_HEADER},
                   {"file:", TP_K_LABEL},
                   {"filename:", TP_K_LABEL},
                   {"path:", TP_K_LABEL},
                   {"```", TP_K_FENCE},
                   {"~~~", TP_K_FENCE},
                   {"\"path\"", TP_K_KEY},
                   {"\"file\"", TP_K_KEY},
                   {"\"filename\"", TP_K_KEY},
                   {"\"file_path\"", TP_K_KEY},
                   {"\"filepath\"", TP_K_KEY},
                   {"\"file_name\"", TP_K_KEY},
                   {"\"target_file\"", TP_K_KEY},
                   {"\"source\"", TP_K_KEY},
                   {"\"source_path\"", TP_K_KEY},
                   {"\"target\"", TP_K_KEY},
                   {"\"target_path\"", TP_K_KEY},
                   {"\"notebook_path\"", TP_K_KEY},
                   {"\"absolute_path\"", TP_K_KEY},
                   {"\"relative_path\"", TP_K_KEY}};

#define TP_NTRIGGERS (sizeof tp_triggers / sizeof tp_triggers[0])

size_t inspect_textpath_ntriggers(void)
{
    return TP_NTRIGGERS;
}

const char *inspect_textpath_trigger(size_t i)
{
    return i < TP_NTRIGGERS ? tp_triggers[i].lit : NULL;
}

/* ---------------------------------------------------------------- */
/* line-anchored shapes                                              */

static bool tp_prefix(const char *d, size_t i, size_t end, const char *p)
{
    size_t n = strlen(p);
    return end - i >= n && memcmp(d + i, p, n) == 0;
}

/* "==> PATH <==" (head/tail with several files). */
static void tp_header(const char *d, size_t i, size_t end, tp_list_t *l)
{
    if (!tp_prefix(d, i, end, "==> ")) return;
    size_t s = i + 4, e = end;
    while (e > s && (d[e - 1] == '\r' || tp_blank(d[e - 1])))
        e--;
    if (e - s < 5 || memcmp(d + e - 4, " <==", 4) != 0) return;
    tp_add(l, s, e - 4);
}

/* "File: PATH", "file: PATH", "FILE: PATH", also after "// ", "# ", "-- ",
 * "* ", "> " (a comment or quote marker). */
static void tp_file_line(const char *d, size_t i, size_t end, tp_list_t *l)
{
    static const bool first[256] = {
        ['/'] = true, ['#'] = true, ['-'] = true, ['*'] = true, ['>'] = true,
        ['F'] = true, ['f'] = true, ['P'] = true, ['p'] = true};
    static const tp_word_t marks[] = {TP_WORD("// "), TP_WORD("# "), TP_WORD("-- "),
                                      TP_WORD("* "),  TP_WORD("> "), TP_WORD("### "),
                                      TP_WORD("## "), {NULL, 0}};
    if (!first[(unsigned char)d[i]]) return;
    for (size_t m = 0; marks[m].w; m++)
        if (end - i >= marks[m].n && memcmp(d + i, marks[m].w, marks[m].n) == 0) {
            i += marks[m].n;
            break;
        }
    if (!(tp_prefix(d, i, end, "File:") || tp_prefix(d, i, end, "file:") ||
          tp_prefix(d, i, end, "FILE:") || tp_prefix(d, i, end, "Filename:") ||
          tp_prefix(d, i, end, "filename:") || tp_prefix(d, i, end, "Path:") ||
          tp_prefix(d, i, end, "path:")))
        return;
    i = (const char *)memchr(d + i, ':', end - i) - d + 1;
    while (i < end && tp_blank(d[i]))
        i++;
    if (i < end && d[i] == '`') { /* File: `config/.env` */
        const char *bt = memchr(d + i + 1, '`', end - i - 1);
        if (bt) tp_add(l, i + 1, (size_t)(bt - d));
        return;
    }
    tp_token(d, i, end, l);
}

/* Does the token [s, e) look like a path (has '/' or a '.' not at its end)? */
static bool tp_pathish(const char *d, size_t s, size_t e)
{
    for (size_t k = s; k < e; k++)
        if (d[k] == '/' || (d[k] == '.' && k + 1 < e)) return true;
    return false;
}

/* A code fence: ``` or ~~~ then an info string. */
static void tp_fence(const char *d, size_t i, size_t end, tp_list_t *l)
{
    if (!tp_prefix(d, i, end, "```") && !tp_prefix(d, i, end, "~~~")) return;
    char f = d[i];
    while (i < end && d[i] == f)
        i++;
    static const char *const keys[] = {"path=", "file=", "filename=", "title=", "name=", NULL};
    bool first = true;
    while (i < end) {
        while (i < end && (tp_blank(d[i]) || d[i] == '{' || d[i] == '}' || d[i] == ','))
            i++;
        if (i >= end || d[i] == '\r') return;
        size_t key = 0;
        for (size_t k = 0; keys[k]; k++)
            if (end - i > strlen(keys[k]) && strncasecmp(d + i, keys[k], strlen(keys[k])) == 0)
                key = strlen(keys[k]);
        if (key) {
            size_t next = tp_token(d, i + key, end, l);
            i = next > i + key ? next : i + key;
            first = false;
            continue;
        }
        size_t s = i, e = i;
        while (e < end && !tp_blank(d[e]) && d[e] != '\r' && d[e] != '{' && d[e] != ',')
            e++;
        /* "lang:PATH" (```yaml:deploy/.env), or the first word itself a
         * path (```.env, ```src/app.js) */
        const char *colon = memchr(d + s, ':', e - s);
        if (first && colon && (size_t)(colon - d) + 1 < e)
            tp_add(l, (size_t)(colon - d) + 1, e);
        else if (tp_pathish(d, s, e))
            tp_add(l, s, e);
        first = false;
        i = e;
    }
}

static void tp_find_lines(const char *d, size_t len, tp_list_t *l)
{
    size_t i = 0;
    while (i < len) {
        size_t end = tp_line_end(d, len, i);
        size_t s = i;
        while (s < end && tp_blank(d[s]))
            s++;
        if (s < end) {
            switch (d[s]) {
            case '=':
                tp_header(d, s, end, l);
                break;
            case '`':
            case '~':
                tp_fence(d, s, end, l);
                break;
            default:
                tp_file_line(d, s, end, l);
                break;
            }
            tp_line_commands(d, s, end, l);
        }
        i = end + 1;
    }
}

/* ---------------------------------------------------------------- */
/* quoted keys naming a file: "file_path": "…"                       */

static bool tp_file_key(const char *k, size_t n)
{
    static const tp_word_t keys[] = {
        TP_WORD("path"),          TP_WORD("file"),          TP_WORD("filename"),
        TP_WORD("file_path"),     TP_WORD("filepath"),      TP_WORD("file_name"),
        TP_WORD("target_file"),   TP_WORD("source"),        TP_WORD("source_path"),
        TP_WORD("target"),        TP_WORD("target_path"),   TP_WORD("notebook_path"),
        TP_WORD("absolute_path"), TP_WORD("relative_path"), {NULL, 0}};
    if (n < 4 || n > 13) return false;
    for (size_t i = 0; keys[i].w; i++)
        if (keys[i].n == n && strncasecmp(keys[i].w, k, n) == 0) return true;
    return false;
}

/* A quoted key naming a file at the quote q, then ':' or '=' and a quoted
 * value: the value is a candidate.  Returns where to look next. */
static size_t tp_key_at(const char *d, size_t len, size_t q, tp_list_t *l)
{
    size_t ks = q + 1;
    const char *qe = memchr(d + ks, '"', len - ks < 32 ? len - ks : 32);
    if (!qe) return ks;
    size_t ke = (size_t)(qe - d), i = ke; /* the closing quote may open the next string */
    if (!tp_file_key(d + ks, ke - ks)) return i;
    size_t j = ke + 1;
    while (j < len && tp_blank(d[j]))
        j++;
    if (j >= len || (d[j] != ':' && d[j] != '=')) return i;
    j++;
    while (j < len && tp_blank(d[j]))
        j++;
    if (j < len && d[j] == '"') i = tp_token(d, j, tp_line_end(d, len, j), l);
    return i > ke ? i : ke + 1;
}

static void tp_find_keys(const char *d, size_t len, tp_list_t *l)
{
    size_t i = 0;
    while (i < len) {
        const char *q = memchr(d + i, '"', len - i);
        if (!q) return;
        i = tp_key_at(d, len, (size_t)(q - d), l);
    }
}

static int tp_cmp(const void *pa, const void *pb)
{
    const tp_span_t *a = pa, *b = pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* Sort, drop duplicates, hand to fn; frees the list. */
static int tp_deliver(tp_list_t *l, inspect_textpath_fn fn, void *ctx)
{
    int rc = 0;
    if (l->oom) {
        free(l->v);
        return -1;
    }
    if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, tp_cmp);
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        if (i > 0 && l->v[i].start == l->v[i - 1].start && l->v[i].end == l->v[i - 1].end) continue;
        rc = fn(l->v[i].start, l->v[i].end, ctx);
    }
    free(l->v);
    return rc;
}

int inspect_textpath_candidates(const char *data, size_t len, inspect_textpath_fn fn, void *ctx)
{
    tp_list_t l = {.budget = TEXTPATH_WORK_FACTOR * len + 65536};
    if (!data || len == 0) return 0;
    tp_find_lines(data, len, &l);
    tp_separator_commands(data, len, &l);
    tp_find_keys(data, len, &l);
    return tp_deliver(&l, fn, ctx);
}

/* The line around the hits, tracked as they advance (hits sorted by start):
 * line start, first non-blank, the command position after a prompt. */
typedef struct tp_line {
    size_t known;  /* newlines before this offset have been looked at */
    size_t start;  /* line start */
    size_t end;    /* line end (valid while > the hit; 0 = unknown) */
    size_t first;  /* first non-blank byte of the line */
    size_t prompt; /* where a command after a shell prompt would start, or SIZE_MAX */
} tp_line_t;

static void tp_line_at(const char *d, size_t len, size_t h, tp_line_t *ln)
{
    bool moved = false;
    if (h > ln->known) {
        const char *nl = memrchr(d + ln->known, '\n', h - ln->known);
        if (nl) {
            ln->start = (size_t)(nl - d) + 1;
            moved = true;
        }
        ln->known = h;
    }
    if (moved || ln->end == 0) {
        ln->end = tp_line_end(d, len, ln->start);
        size_t f = ln->start;
        while (f < ln->end && tp_blank(d[f]))
            f++;
        ln->first = f;
        ln->prompt = SIZE_MAX;
        size_t w = f;
        while (w < ln->end && !tp_blank(d[w]) && w - f < 96)
            w++;
        if (w > f && w < ln->end &&
            (d[w - 1] == '$' || d[w - 1] == '#' || d[w - 1] == '%' || d[w - 1] == '>')) {
            while (w < ln->end && tp_blank(d[w]))
                w++;
            ln->prompt = w;
        }
    }
}

/* Is a command word at h in command position? (see tp_line_commands and
 * tp_separator_commands, which find the same positions by scanning) */
static bool tp_command_position(const char *d, size_t h, const tp_line_t *ln)
{
    static const bool sep[256] = {['|'] = true, ['&'] = true, [';'] = true, ['`'] = true,
                                  ['('] = true, ['"'] = true, ['\''] = true};
    if (h == ln->first || h == ln->prompt) return true;
    size_t j = h;
    while (j > ln->start && tp_blank(d[j - 1]))
        j--;
    return j > ln->start && sep[(unsigned char)d[j - 1]];
}

static int tp_hit_cmp(const void *pa, const void *pb)
{
    const inspect_textpath_hit_t *a = pa, *b = pb;
    return a->start < b->start ? -1 : a->start > b->start;
}

int inspect_textpath_candidates_at(const char *data, size_t len, inspect_textpath_hit_t *hits,
                                   size_t nhits, inspect_textpath_fn fn, void *ctx)
{
    tp_list_t l = {.budget = TEXTPATH_WORK_FACTOR * len + 65536};
    tp_line_t ln = {0};
    size_t next_key = 0; /* a key hit before this was consumed by the previous one */
    if (!data || len == 0 || nhits == 0) return 0;
    qsort(hits, nhits, sizeof *hits, tp_hit_cmp);
    for (size_t i = 0; i < nhits; i++) {
        size_t h = hits[i].start;
        if (h >= len || hits[i].trigger >= TP_NTRIGGERS) continue;
        tp_line_at(data, len, h, &ln);
        switch (tp_triggers[hits[i].trigger].kind) {
        case TP_K_COMMAND:
            if (tp_command_position(data, h, &ln)) tp_command_at(data, h, ln.end, &l);
            break;
        case TP_K_HEADER:
            if (h == ln.first) tp_header(data, h, ln.end, &l);
            break;
        case TP_K_LABEL:
            tp_file_line(data, ln.first, ln.end, &l);
            break;
        case TP_K_FENCE:
            if (h == ln.first) tp_fence(data, h, ln.end, &l);
            break;
        case TP_K_KEY:
            if (h >= next_key) next_key = tp_key_at(data, len, h, &l);
            break;
        }
    }
    return tp_deliver(&l, fn, ctx);
}

/* ---------------------------------------------------------------- */
/* findings                                                          */

typedef struct tp_scan {
    const inspect_engine_t *e;
    const char *data;
    inspect_cb cb;
    void *ctx;
    size_t start, end;          /* the mention being checked */
    size_t scanned, line_start; /* line counting, monotonic */
    uint32_t line;
} tp_scan_t;

static int tp_on_path(const inspect_finding_t *f, void *ctx)
{
    tp_scan_t *t = ctx;
    inspect_finding_t g = *f;
    g.start = t->start;
    g.end = t->end;
    g.line = t->line;
    g.column = (uint32_t)(t->start - t->line_start) + 1;
    return t->cb(&g, t->ctx);
}

static int tp_on_candidate(size_t start, size_t end, void *ctx)
{
    tp_scan_t *t = ctx;
    while (t->scanned < start) {
        const char *nl = memchr(t->data + t->scanned, '\n', start - t->scanned);
        if (!nl) {
            t->scanned = start;
            break;
        }
        t->line++;
        t->scanned = (size_t)(nl - t->data) + 1;
        t->line_start = t->scanned;
    }
    t->start = start;
    t->end = end;
    return inspect_check_path(t->e, t->data + start, end - start, tp_on_path, t);
}

int inspect_textpath_scan_at(const inspect_engine_t *e, const char *data, size_t len,
                             inspect_textpath_hit_t *hits, size_t nhits, inspect_cb cb, void *ctx)
{
    tp_scan_t t = {.e = e, .data = data, .cb = cb, .ctx = ctx, .line = 1};
    return inspect_textpath_candidates_at(data, len, hits, nhits, tp_on_candidate, &t);
}

int inspect_textpath_scan(const inspect_engine_t *e, const char *data, size_t len, inspect_cb cb,
                          void *ctx)
{
    tp_scan_t t = {.e = e, .data = data, .cb = cb, .ctx = ctx, .line = 1};
    return inspect_textpath_candidates(data, len, tp_on_candidate, &t);
}
