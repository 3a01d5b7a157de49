/*
 * scan_git — `cdeguard scan --git`: the history of a repository.
 *
 * Runs (no shell)
 *   git -c core.quotepath=off -C REPO log -p --no-color --no-ext-diff -U0
 *       --format=%x01cdeguard %H %aI %an <%ae> [RANGE] --
 * and reads it line by line with a small state machine:
 *   "\x01cdeguard ..."  a commit: hash, ISO date, author (a line no diff
 *                       line can start with: those start with ' ', '+',
 *                       '-', '@', '\\' or a header word)
 *   "diff --git"        a new file diff: flush the hunk, forget the file
 *   "new file mode"     the file is added in this commit
 *   "+++ b/PATH"        the new-side path (C-quoted when it has to be);
 *                       "+++ /dev/null" is a deletion: nothing to scan
 *   "rename to PATH", "Binary files /dev/null and b/PATH differ"
 *   "@@ -a,b +c,d @@"   a hunk: added lines are numbered from c
 *   "+..."              an added line, appended to the hunk buffer
 * Each hunk's added lines are joined with '\n' and scanned as one text, so
 * a PEM block added in one go is found whole; a finding's line is c plus
 * its line in the buffer.  Paths of added (or renamed-to) files go through
 * the path rules.  Only added lines are scanned: a secret deleted later is
 * still found in the commit that added it.
 *
 * Memory: one line buffer (getline) and one hunk buffer, capped at
 * --max-file-size (a larger hunk is scanned in pieces).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/scan_int.h"

#define COMMIT_MARK                                                                                \
    "\x01"                                                                                         \
    "cdeguard "

typedef struct git_state {
    scan_t *sc;
    char commit[64];
    char date[64];
    char *author;
    char *file; /* new-side path of the current diff, NULL when none */
    bool is_new;
    bool in_hunk; /* after an @@ line, until the next diff or commit */
    char *hunk;   /* added lines of the current hunk */
    size_t hlen, hcap;
    uint32_t hline; /* new-side line of hunk[0] */
    uint32_t next;  /* new-side line of the next added line */
    int stop;       /* an error from the engine */
} git_state_t;

static void set_src(git_state_t *g, scan_src_t *src, const char *file)
{
    memset(src, 0, sizeof *src);
    src->sc = g->sc;
    src->file = file;
    src->line0 = 1;
    src->commit = g->commit[0] ? g->commit : NULL;
    src->author = g->author;
    src->date = g->date[0] ? g->date : NULL;
}

static void flush_hunk(git_state_t *g)
{
    if (g->hlen == 0 || !g->file) {
        g->hlen = 0;
        return;
    }
    scan_src_t src;
    set_src(g, &src, g->file);
    src.buf = g->hunk;
    src.blen = g->hlen;
    src.line0 = g->hline;
    if (inspect_scan_text(g->sc->eng, g->sc->scratch, g->hunk, g->hlen, scan_on_finding, &src) !=
        0) {
        scan_error(g->sc, "%s (commit %.12s): scan failed", g->file, g->commit);
        g->stop = -1;
    }
    g->sc->bytes += g->hlen;
    g->hlen = 0;
}

static int hunk_add(git_state_t *g, const char *p, size_t n)
{
    if (g->hlen == 0) g->hline = g->next;
    if (g->hlen + n + 1 > g->hcap) {
        size_t nc = g->hcap ? g->hcap : 4096;
        while (nc < g->hlen + n + 1)
            nc *= 2;
        char *nb = realloc(g->hunk, nc);
        if (!nb) return -1;
        g->hunk = nb;
        g->hcap = nc;
    }
    memcpy(g->hunk + g->hlen, p, n);
    g->hlen += n;
    g->hunk[g->hlen++] = '\n';
    g->next++;
    if (g->hlen > g->sc->opt.max_size) flush_hunk(g); /* a huge hunk, in pieces */
    return 0;
}

static void check_path(git_state_t *g, const char *path)
{
    scan_src_t src;
    set_src(g, &src, path);
    if (inspect_check_path(g->sc->eng, path, strlen(path), scan_on_finding, &src) != 0)
        g->stop = -1;
}

/* A path from a diff header: "b/PATH" or "\"b/PA\\tTH\"" (C-quoted);
 * prefix is "b/".  Returns a malloc'ed path or NULL. */
static char *diff_path(const char *s, size_t n, const char *prefix)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        for (size_t i = 1; i + 1 < n; i++) {
            char c = s[i];
            if (c == '\\' && i + 2 < n) {
                c = s[++i];
                if (c >= '0' && c <= '7') {
                    int v = 0;
                    for (int d = 0; d < 3 && i + 1 < n && s[i] >= '0' && s[i] <= '7'; d++, i++)
                        v = v * 8 + (s[i] - '0');
                    i--;
                    c = (char)v;
                } else if (c == 'n') {
                    c = '\n';
                } else if (c == 't') {
                    c = '\t';
                } else if (c == 'r') {
                    c = '\r';
                } else if (c == 'a') {
                    c = '\a';
                } else if (c == 'b') {
                    c = '\b';
                } else if (c == 'f') {
                    c = '\f';
                } else if (c == 'v') {
                    c = '\v';
                }
            }
            out[k++] = c;
        }
    } else {
        memcpy(out, s, n);
        k = n;
    }
    out[k] = 0;
    size_t pl = strlen(prefix);
    if (strncmp(out, prefix, pl) == 0) memmove(out, out + pl, k - pl + 1);
    return out;
}

static void on_commit(git_state_t *g, const char *p, size_t n)
{
    /* "<hash> <date> <author...>" */
    const char *sp1 = memchr(p, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p)) : NULL;
    g->commit[0] = g->date[0] = 0;
    free(g->author);
    g->author = NULL;
    if (!sp1 || !sp2) return;
    snprintf(g->commit, sizeof g->commit, "%.*s", (int)(sp1 - p), p);
    snprintf(g->date, sizeof g->date, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
    g->author = strndup(sp2 + 1, n - (size_t)(sp2 + 1 - p));
}

static void set_file(git_state_t *g, char *path)
{
    free(g->file);
    g->file = path;
}

static int on_line(git_state_t *g, char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == '\n')) /* keep '\r': it is part of the content */
        n--;
    line[n] = 0;
    if (n >= sizeof COMMIT_MARK - 1 && memcmp(line, COMMIT_MARK, sizeof COMMIT_MARK - 1) == 0) {
        flush_hunk(g);
        set_file(g, NULL);
        g->in_hunk = false;
        on_commit(g, line + sizeof COMMIT_MARK - 1, n - (sizeof COMMIT_MARK - 1));
        return 0;
    }
    if (g->in_hunk) {
        /* inside a hunk every '+' line is content, even "+++ x" */
        if (line[0] == '+') return g->file ? hunk_add(g, line + 1, n - 1) : 0;
        if (line[0] == '-' || line[0] == ' ' || line[0] == '\\') return 0;
    }
    if (strncmp(line, "diff --git ", 11) == 0) {
        flush_hunk(g);
        set_file(g, NULL);
        g->in_hunk = false;
        g->is_new = false;
        g->sc->files++;
    } else if (strncmp(line, "new file mode", 13) == 0) {
        g->is_new = true;
    } else if (strncmp(line, "+++ ", 4) == 0) {
        flush_hunk(g);
        if (strcmp(line + 4, "/dev/null") == 0) {
            set_file(g, NULL);
        } else {
            set_file(g, diff_path(line + 4, n - 4, "b/"));
            if (!g->file) return -1;
            if (scan_path_ignored(g->sc, g->file)) {
                set_file(g, NULL); /* its hunks are skipped */
                return 0;
            }
            if (g->is_new) check_path(g, g->file);
        }
    } else if (strncmp(line, "rename to ", 10) == 0) {
        char *p = diff_path(line + 10, n - 10, "");
        if (!p) return -1;
        check_path(g, p);
        free(p);
    } else if (strncmp(line, "Binary files /dev/null and ", 27) == 0 && n > 27 + 7 &&
               strcmp(line + n - 7, " differ") == 0) {
        char *p = diff_path(line + 27, n - 27 - 7, "b/");
        if (!p) return -1;
        check_path(g, p);
        free(p);
    } else if (strncmp(line, "@@ ", 3) == 0) {
        flush_hunk(g);
        g->in_hunk = true;
        const char *plus = strstr(line + 3, " +");
        g->next = plus ? (uint32_t)strtoul(plus + 2, NULL, 10) : 1;
    }
    return 0;
}

int scan_git(scan_t *sc, const char *repo)
{
    char *argv[16];
    int k = 0;
    argv[k++] = "git";
    argv[k++] = "-c";
    argv[k++] = "core.quotepath=off";
    argv[k++] = "-C";
    argv[k++] = (char *)repo;
    argv[k++] = "log";
    argv[k++] = "-p";
    argv[k++] = "--no-color";
    argv[k++] = "--no-ext-diff";
    argv[k++] = "--no-textconv";
    argv[k++] = "-U0";
    argv[k++] = "--format=%x01cdeguard %H %aI %an <%ae>";
    if (sc->opt.git_range) argv[k++] = (char *)sc->opt.git_range;
    argv[k++] = "--";
    argv[k] = NULL;

    pid_t pid;
    int fd = scan_spawn(argv, false, &pid);
    if (fd < 0) {
        scan_error(sc, "cannot run git: %s", strerror(errno));
        return -1;
    }
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        scan_wait(pid);
        scan_error(sc, "out of memory");
        return -1;
    }
    git_state_t g = {.sc = sc, .next = 1};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        if (rc == 0 && g.stop == 0 && on_line(&g, line, (size_t)n) < 0) {
            scan_error(sc, "out of memory");
            rc = -1;
        }
        /* after an error, keep reading so that git does not die of SIGPIPE */
    }
    if (rc == 0 && g.stop == 0) flush_hunk(&g);
    free(line);
    fclose(in);
    if (scan_wait(pid) < 0) {
        scan_error(sc, "git log failed in %s", repo);
        rc = -1;
    }
    free(g.hunk);
    free(g.file);
    free(g.author);
    return rc || g.stop ? -1 : 0;
}
