/*
 * scan_out — the `cdeguard scan` report: text, JSON or SARIF 2.1.0.
 *
 * Every string that reaches a JSON document goes through json_str(), which
 * escapes quotes, backslashes and control characters and replaces bytes
 * that are not valid UTF-8 with U+FFFD, so the output always parses.  The
 * matched text of a finding is printed only when --show-secrets copied it
 * (scan_finding_t.secret); otherwise only the engine's masked preview and
 * the fingerprint appear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void scan_json_str(FILE *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', o);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', o);
            fputc(c, o);
            i++;
        } else if (c == '\n') {
            fputs("\\n", o), i++;
        } else if (c == '\r') {
            fputs("\\r", o), i++;
        } else if (c == '\t') {
            fputs("\\t", o), i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(o, "\\u%04x", c), i++;
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k == 0) {
                fputs("\\ufffd", o), i++;
            } else {
                fwrite(p + i, 1, k, o);
                i += k;
            }
        }
    }
    fputc('"', o);
}

static void json_str(FILE *o, const char *s)
{
    if (!s)
        fputs("null", o);
    else
        scan_json_str(o, s, strlen(s));
}

/* Text output: printable ASCII as is, the rest as \xNN, so a finding is
 * always one line. */
static void text_str(FILE *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, o);
        else
            fprintf(o, "\\x%02x", c);
    }
}

static void rule_text(const scan_t *sc, const scan_finding_t *g, char *buf, size_t n)
{
    const char *d = inspect_rule_description(sc->eng, g->f.rule);
    if (d && *d)
        snprintf(buf, n, "%s", d);
    else
        snprintf(buf, n, "%s (%s)", g->f.rule_id, inspect_category_name(g->f.category));
}

static int report_text(const scan_t *sc, FILE *o)
{
    for (size_t i = 0; i < sc->nfind; i++) {
        const scan_finding_t *g = &sc->find[i];
        text_str(o, g->file, strlen(g->file));
        fprintf(o, ":%u:%u: [%s] %s ", g->line, g->column, g->f.rule_id,
                inspect_category_name(g->f.category));
        text_str(o, g->f.preview, strlen(g->f.preview));
        fprintf(o, " %s", g->f.fingerprint);
        if (g->commit) {
            fprintf(o, " commit=%.12s author=\"", g->commit);
            text_str(o, g->author ? g->author : "", g->author ? strlen(g->author) : 0);
            fprintf(o, "\" date=%s", g->date ? g->date : "");
        }
        if (g->secret) {
            fputs(" secret=", o);
            text_str(o, g->secret, g->secret_len);
        }
        fputc('\n', o);
    }
    return ferror(o) ? -1 : 0;
}

static int report_json(const scan_t *sc, FILE *o)
{
    fputs("{\"version\":1,\"findings\":[", o);
    for (size_t i = 0; i < sc->nfind; i++) {
        const scan_finding_t *g = &sc->find[i];
        fputs(i ? ",\n{" : "\n{", o);
        fputs("\"rule_id\":", o);
        json_str(o, g->f.rule_id);
        fprintf(o, ",\"category\":\"%s\",\"action\":\"%s\",\"file\":",
                inspect_category_name(g->f.category), inspect_action_name(g->f.action));
        json_str(o, g->file);
        fprintf(o,
                ",\"line\":%u,\"column\":%u,\"start\":%llu,\"end\":%llu,\"fingerprint\":\"%s\","
                "\"preview\":",
                g->line, g->column, (unsigned long long)g->f.start, (unsigned long long)g->f.end,
                g->f.fingerprint);
        json_str(o, g->f.preview);
        if (g->secret) {
            fputs(",\"secret\":", o);
            scan_json_str(o, g->secret, g->secret_len);
        }
        if (g->commit) {
            fputs(",\"commit\":", o);
            json_str(o, g->commit);
            fputs(",\"author\":", o);
            json_str(o, g->author);
            fputs(",\"date\":", o);
            json_str(o, g->date);
        }
        fputc('}', o);
    }
    fprintf(o, "%s],\"files_scanned\":%zu,\"bytes_scanned\":%llu}\n", sc->nfind ? "\n" : "",
            sc->files, (unsigned long long)sc->bytes);
    return ferror(o) ? -1 : 0;
}

/* SARIF artifactLocation.uri: a relative reference with forward slashes,
 * percent-encoded outside RFC 3986 unreserved characters and '/'. */
static void sarif_uri(FILE *o, const char *path)
{
    static const char hexd[] = "0123456789ABCDEF";
    fputc('"', o);
    if (path[0] == '/') fputs("file://", o);
    if (strcmp(path, "-") == 0) path = "stdin";
    if (path[0] == '.' && path[1] == '/') path += 2;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        unsigned char c = *p == '\\' ? '/' : *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/')
            fputc(c, o);
        else
            fprintf(o, "%%%c%c", hexd[c >> 4], hexd[c & 15]);
    }
    fputc('"', o);
}

static const char *sarif_level(inspect_category_t c)
{
    return c == INSPECT_SECRET ? "error" : "warning";
}

static int report_sarif(const scan_t *sc, FILE *o)
{
    /* one reportingDescriptor per rule used, in first-use order */
    size_t nr = inspect_rule_count(sc->eng);
    int *index = malloc((nr ? nr : 1) * sizeof *index);
    int *order = malloc((nr ? nr : 1) * sizeof *order);
    if (!index || !order) {
        free(index);
        free(order);
        return -1;
    }
    for (size_t i = 0; i < nr; i++)
        index[i] = -1;
    int nused = 0;
    for (size_t i = 0; i < sc->nfind; i++) {
        int r = sc->find[i].f.rule;
        if (r >= 0 && (size_t)r < nr && index[r] < 0) {
            index[r] = nused;
            order[nused++] = r;
        }
    }
    fputs("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
          "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"cdeguard\",\"version\":\"" CDEGUARD_VERSION
          "\",\"informationUri\":\"https://github.com/cdeguard/cdeguard\",\"rules\":[",
          o);
    for (int k = 0; k < nused; k++) {
        const scan_finding_t *g = NULL;
        for (size_t i = 0; i < sc->nfind && !g; i++)
            if (sc->find[i].f.rule == order[k]) g = &sc->find[i];
        char desc[512];
        rule_text(sc, g, desc, sizeof desc);
        fputs(k ? ",\n{\"id\":" : "\n{\"id\":", o);
        json_str(o, g->f.rule_id);
        fputs(",\"name\":", o);
        json_str(o, g->f.rule_id);
        fputs(",\"shortDescription\":{\"text\":", o);
        json_str(o, desc);
        fprintf(o,
                "},\"defaultConfiguration\":{\"level\":\"%s\"},"
                "\"properties\":{\"category\":\"%s\",\"tags\":[\"%s\",\"security\"]}}",
                sarif_level(g->f.category), inspect_category_name(g->f.category),
                inspect_category_name(g->f.category));
    }
    fputs("]}},\"results\":[", o);
    for (size_t i = 0; i < sc->nfind; i++) {
        const scan_finding_t *g = &sc->find[i];
        char desc[512], msg[700];
        rule_text(sc, g, desc, sizeof desc);
        snprintf(msg, sizeof msg, "%s: %s", desc, g->f.preview);
        fputs(i ? ",\n{\"ruleId\":" : "\n{\"ruleId\":", o);
        json_str(o, g->f.rule_id);
        int ri = g->f.rule >= 0 && (size_t)g->f.rule < nr ? index[g->f.rule] : -1;
        if (ri >= 0) fprintf(o, ",\"ruleIndex\":%d", ri);
        fprintf(o, ",\"level\":\"%s\",\"message\":{\"text\":", sarif_level(g->f.category));
        json_str(o, msg);
        fputs("},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":", o);
        sarif_uri(o, g->file);
        fprintf(o, "},\"region\":{\"startLine\":%u,\"startColumn\":%u}}}],", g->line ? g->line : 1,
                g->column ? g->column : 1);
        fprintf(o, "\"partialFingerprints\":{\"cdeguard/v1\":\"%s\"}", g->f.fingerprint);
        if (g->commit || g->secret) {
            fputs(",\"properties\":{", o);
            const char *sep = "";
            if (g->commit) {
                fputs("\"commit\":", o);
                json_str(o, g->commit);
                fputs(",\"author\":", o);
                json_str(o, g->author);
                fputs(",\"date\":", o);
                json_str(o, g->date);
                sep = ",";
            }
            if (g->secret) {
                fprintf(o, "%s\"secret\":", sep);
                scan_json_str(o, g->secret, g->secret_len);
            }
            fputc('}', o);
        }
        fputc('}', o);
    }
    fprintf(o, "%s]}]}\n", sc->nfind ? "\n" : "");
    free(index);
    free(order);
    return ferror(o) ? -1 : 0;
}

int scan_report(const scan_t *sc, FILE *out)
{
    switch (sc->opt.format) {
    case SCAN_JSON:
        return report_json(sc, out);
    case SCAN_SARIF:
        return report_sarif(sc, out);
    default:
        return report_text(sc, out);
    }
}
