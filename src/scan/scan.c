/*
 * scan — `cdeguard scan`: files, directories, standard input and git
 * history through the inspection engine (src/inspect), for CI and for
 * developers (a gitleaks replacement); the options are in scan_usage below.
 *
 * Flow: options -> engine (built-in rules + --rules files, or the engine
 * of a --config file's inspect section; then --enable and --disable;
 * findings carry the config's action) -> one scratch -> for each PATH: the
 * file list (git ls-files inside a work tree, else a recursive walk) -> for
 * each file: path rules, then content (mmap; JSON documents decoded; files
 * over --max-file-size streamed with inspect_stream_*) -> findings filtered
 * (cdeguard:allow on the line, --baseline fingerprints) and collected -> one
 * report at the end (text, json or SARIF 2.1.0) in scan_out.c.  --git
 * reads `git log -p` and scans the added lines of each hunk (scan_git.c).
 *
 * Memory: the scan_t owns everything: the engine (unless a --config owns
 * it), the scratch, the baseline, and the findings (each finding owns its
 * strings).  The text of a secret is copied only with --show-secrets.
 *
 * Return values inside the module: 0 ok, -1 error (already reported on
 * stderr; the scan goes on and the exit status becomes 2).
 */
#include "scan/scan.h"

#include "scan/scan_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "inspect/json.h"

extern char **environ;

const char scan_usage[] =
    "usage: cdeguard scan [options] [PATH...|-]\n"
    "\n"
    "Finds secrets, PII and restricted files with the same rules as the proxy.\n"
    "PATH is a file or a directory (recursive); '-' or no PATH with a pipe on\n"
    "standard input scans standard input; no PATH at a terminal scans '.'.\n"
    "Binary files (a NUL byte in the first 8 KiB) are skipped, and inside a git\n"
    "work tree so is everything git ignores.\n"
    "\n"
    "  --git                 scan the history (`git log -p`, added lines only) of\n"
    "                        the repository at PATH or '.'; findings carry commit,\n"
    "                        author and date\n"
    "  --git-range RANGE     history to scan, e.g. main..HEAD (implies --git)\n"
    "  --format FMT          text (default), json or sarif (SARIF 2.1.0)\n"
    "  -o, --output FILE     write the report to FILE instead of standard output\n"
    "  --ignore-file FILE    paths (globs, gitignore-like) and fingerprints to ignore;\n"
    "                        PATH/.cdeguardignore is read when it exists\n"
    "  --baseline FILE       a previous --format json report: its fingerprints\n"
    "                        are not reported again\n"
    "  -c, --config FILE     use the rules and actions of this cdeguard config\n"
    "                        (its inspect: section; built-in rules without one)\n"
    "  --rules FILE          extra rules file (repeatable); a rule with the id of\n"
    "                        a built-in rule replaces it\n"
    "  --enable RULE         enable a rule that ships disabled (repeatable)\n"
    "  --disable RULE        disable a rule (repeatable)\n"
    "  --show-secrets        print the matched text (masked by default)\n"
    "  --no-git-ignore       walk every file, ignoring .gitignore\n"
    "  --max-file-size SIZE  files larger than SIZE (default 50MB; k, M, G) are\n"
    "                        scanned streaming, in bounded memory\n"
    "  -q, --quiet           no summary and no notices on stderr\n"
    "\n"
    "A line containing `cdeguard:allow` is never reported.\n"
    "Exit status: 0 nothing found, 1 findings, 2 error (an error wins).\n";

/* ------------------------------------------------------------------ */
/* messages                                                             */

void scan_error(scan_t *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cdeguard scan: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (sc) sc->errors++;
}

static void notice(const scan_t *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(const scan_t *sc, const char *fmt, ...)
{
    if (sc->opt.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("cdeguard scan: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* findings                                                             */

static int cmp_fp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool in_baseline(const scan_t *sc, const char *fp)
{
    return sc->nbase > 0 && bsearch(fp, sc->base, sc->nbase, 33, cmp_fp) != NULL;
}

/* Does the line of [start, end) inside buf (buf[0] at stream offset base,
 * blen bytes) say cdeguard:allow?  Only the bytes in buf are looked at. */
static bool line_allows(const char *buf, size_t blen, uint64_t base, uint64_t start)
{
    static const char mark[] = "cdeguard:allow";
    if (!buf || start < base || start - base > blen) return false;
    size_t at = (size_t)(start - base);
    size_t ls = at, le = at;
    while (ls > 0 && buf[ls - 1] != '\n')
        ls--;
    while (le < blen && buf[le] != '\n')
        le++;
    return memmem(buf + ls, le - ls, mark, sizeof mark - 1) != NULL;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int scan_add(scan_t *sc, const scan_src_t *src, const inspect_finding_t *f)
{
    if (f->category != INSPECT_PATH && line_allows(src->buf, src->blen, src->base, f->start)) {
        sc->suppressed++;
        return 0;
    }
    if (in_baseline(sc, f->fingerprint)) {
        sc->baselined++;
        return 0;
    }
    if (sc->nfind == sc->capfind) {
        size_t nc = sc->capfind ? sc->capfind * 2 : 64;
        scan_finding_t *nf = realloc(sc->find, nc * sizeof *nf);
        if (!nf) return -1;
        sc->find = nf;
        sc->capfind = nc;
    }
    scan_finding_t *g = &sc->find[sc->nfind];
    memset(g, 0, sizeof *g);
    g->f = *f;
    if (sc->cfg) g->f.action = config_inspect_action(sc->cfg, f);
    g->line = src->line0 + f->line - 1;
    g->column = f->column;
    g->file = xstrdup(src->file);
    g->commit = xstrdup(src->commit);
    g->author = xstrdup(src->author);
    g->date = xstrdup(src->date);
    if (!g->file || (src->commit && !g->commit) || (src->author && !g->author) ||
        (src->date && !g->date))
        goto oom;
    if (sc->opt.show_secrets) {
        if (f->category == INSPECT_PATH) {
            g->secret = xstrdup(src->file);
        } else if (src->buf && f->start >= src->base && f->end <= src->base + src->blen) {
            size_t n = (size_t)(f->end - f->start);
            g->secret = malloc(n + 1);
            if (g->secret) {
                memcpy(g->secret, src->buf + (f->start - src->base), n);
                g->secret[n] = 0;
                g->secret_len = n;
            }
        }
        if (g->secret && f->category == INSPECT_PATH) g->secret_len = strlen(g->secret);
    }
    sc->nfind++;
    return 0;
oom:
    free(g->file);
    free(g->commit);
    free(g->author);
    free(g->date);
    return -1;
}

int scan_on_finding(const inspect_finding_t *f, void *ctx)
{
    scan_src_t *src = ctx;
    if (scan_add(src->sc, src, f) < 0) {
        scan_error(src->sc, "out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* child processes (git), no shell                                      */

int scan_spawn(char *const argv[], bool quiet_stderr, pid_t *pid)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (quiet_stderr)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return -1;
    }
    return fds[0];
}

/* 0 when the child exited with status 0. */
int scan_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Run argv and collect its standard output (NUL-terminated, malloc'ed). */
static int run_capture(char *const argv[], bool quiet_stderr, char **out, size_t *outlen)
{
    pid_t pid;
    int fd = scan_spawn(argv, quiet_stderr, &pid);
    if (fd < 0) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    bool oom = buf == NULL;
    for (;;) {
        if (!oom && len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                oom = true;
            } else {
                buf = nb;
                cap *= 2;
            }
        }
        char sink[4096];
        ssize_t n = oom ? read(fd, sink, sizeof sink) : read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!oom) len += (size_t)n;
    }
    close(fd);
    int rc = scan_wait(pid);
    if (rc < 0 || oom) {
        free(buf);
        return -1;
    }
    buf[len] = 0;
    *out = buf;
    *outlen = len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* one file                                                             */

static bool looks_binary(const char *p, size_t n)
{
    return memchr(p, 0, n < SCAN_BINARY_PROBE ? n : SCAN_BINARY_PROBE) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A whole buffer in memory. */
static int scan_buffer(scan_t *sc, scan_src_t *src, const char *data, size_t len, bool json)
{
    src->buf = data;
    src->blen = len;
    src->base = 0;
    int rc = 1;
    if (json) {
        char err[256];
        rc = inspect_scan_json(sc->eng, sc->scratch, data, len, scan_on_finding, src, err,
                               sizeof err);
        if (rc == -2) rc = 1; /* not JSON after all: as text */
    }
    if (rc == 1) rc = inspect_scan_text(sc->eng, sc->scratch, data, len, scan_on_finding, src);
    src->buf = NULL;
    src->blen = 0;
    sc->bytes += len;
    if (rc != 0) {
        scan_error(sc, "%s: scan failed", src->file);
        return -1;
    }
    return 0;
}

/* Streaming: the last SCAN_WINDOW bytes are kept so that findings (which
 * the stream delivers within CARRY + SLICE bytes of the end) can be checked
 * for cdeguard:allow and, with --show-secrets, copied. */
typedef struct window {
    char *buf;
    size_t len;
    uint64_t base;
} window_t;

static int stream_chunk(inspect_stream_t *st, scan_src_t *src, window_t *w, const char *p, size_t n)
{
    if (w->buf) {
        if (w->len + n > SCAN_WINDOW) {
            size_t drop = w->len + n - SCAN_WINDOW;
            if (drop > w->len) drop = w->len;
            memmove(w->buf, w->buf + drop, w->len - drop);
            w->len -= drop;
            w->base += drop;
        }
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        src->buf = w->buf;
        src->blen = w->len;
        src->base = w->base;
    }
    return inspect_stream_feed(st, p, n);
}

/* Stream from a mapping (map != NULL, whole file visible) or from fd. */
static int scan_streaming(scan_t *sc, scan_src_t *src, int fd, const char *map, size_t maplen,
                          const char *head, size_t headlen)
{
    inspect_stream_t *st = inspect_stream_new(sc->eng, sc->scratch, scan_on_finding, src);
    window_t w = {0};
    int rc = 0;
    if (!st) goto oom;
    if (map) {
        src->buf = map;
        src->blen = maplen;
        src->base = 0;
        for (size_t off = 0; off < maplen && rc == 0; off += SCAN_CHUNK) {
            size_t n = maplen - off < SCAN_CHUNK ? maplen - off : SCAN_CHUNK;
            rc = inspect_stream_feed(st, map + off, n);
        }
        sc->bytes += maplen;
    } else {
        w.buf = malloc(SCAN_WINDOW);
        char *chunk = malloc(SCAN_CHUNK);
        if (!w.buf || !chunk) {
            free(chunk);
            goto oom;
        }
        for (size_t off = 0; off < headlen && rc == 0; off += SCAN_CHUNK) {
            size_t n = headlen - off < SCAN_CHUNK ? headlen - off : SCAN_CHUNK;
            rc = stream_chunk(st, src, &w, head + off, n);
        }
        sc->bytes += headlen;
        while (rc == 0) {
            ssize_t n = read(fd, chunk, SCAN_CHUNK);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                scan_error(sc, "%s: read: %s", src->file, strerror(errno));
                rc = -2;
                break;
            }
            if (n == 0) break;
            sc->bytes += (size_t)n;
            rc = stream_chunk(st, src, &w, chunk, (size_t)n);
        }
        free(chunk);
    }
    if (rc == 0) rc = inspect_stream_finish(st);
    inspect_stream_free(st);
    free(w.buf);
    src->buf = NULL;
    src->blen = 0;
    if (rc == -2) return -1;
    if (rc != 0) {
        scan_error(sc, "%s: scan failed", src->file);
        return -1;
    }
    return 0;
oom:
    inspect_stream_free(st);
    free(w.buf);
    scan_error(sc, "%s: out of memory", src->file);
    return -1;
}

/* Read fd to the end or until more than max bytes are held. */
static int read_upto(int fd, size_t max, char **out, size_t *outlen, bool *more)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    *more = false;
    for (;;) {
        if (len == cap) {
            if (len > max) {
                *more = true;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Content of an open descriptor that cannot be mapped (pipe, stdin). */
static int scan_fd_read(scan_t *sc, scan_src_t *src, int fd, bool json)
{
    char *buf = NULL;
    size_t len = 0;
    bool more = false;
    if (read_upto(fd, sc->opt.max_size, &buf, &len, &more) < 0) {
        scan_error(sc, "%s: read: %s", src->file, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (looks_binary(buf, len)) {
        sc->skipped_binary++;
    } else if (!more && len <= sc->opt.max_size) {
        sc->files++;
        rc = scan_buffer(sc, src, buf, len, json);
    } else {
        notice(sc, "%s: larger than --max-file-size, scanned streaming", src->file);
        sc->files++;
        rc = scan_streaming(sc, src, fd, NULL, 0, buf, len);
    }
    free(buf);
    return rc;
}

/* path: to open; display: for reports; rel: relative to the scan root,
 * for the path rules. */
static int scan_file(scan_t *sc, const char *path, const char *display, const char *rel)
{
    if (scan_path_ignored(sc, rel)) return 0;
    scan_src_t src = {.sc = sc, .file = display, .line0 = 1};
    if (inspect_check_path(sc->eng, rel, strlen(rel), scan_on_finding, &src) != 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        scan_error(sc, "%s: %s", display, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        scan_error(sc, "%s: %s", display, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 0; /* fifo, device, socket: not content */
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    bool json = ends_with(display, ".json");
    int rc = 0;
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        sc->files++;
        close(fd);
        return 0;
    }
    char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = scan_fd_read(sc, &src, fd, json);
        close(fd);
        return rc;
    }
    madvise(map, size, MADV_SEQUENTIAL);
    if (looks_binary(map, size)) {
        sc->skipped_binary++;
    } else if (size > sc->opt.max_size) {
        notice(sc, "%s: larger than --max-file-size (%zu bytes), scanned streaming", display, size);
        sc->files++;
        rc = scan_streaming(sc, &src, fd, map, size, NULL, 0);
    } else {
        sc->files++;
        rc = scan_buffer(sc, &src, map, size, json);
    }
    munmap(map, size);
    close(fd);
    return rc;
}

static int scan_stdin(scan_t *sc)
{
    scan_src_t src = {.sc = sc, .file = "-", .line0 = 1};
    return scan_fd_read(sc, &src, STDIN_FILENO, false);
}

/* ------------------------------------------------------------------ */
/* walking                                                              */

typedef struct dirstack {
    dev_t dev[SCAN_MAX_DEPTH];
    ino_t ino[SCAN_MAX_DEPTH];
    int n;
} dirstack_t;

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] != '/';
    char *p = malloc(la + slash + lb + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    if (slash) p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the user sees for root/rel: "rel" when root is ".", else "root/rel". */
static char *display_of(const char *root, const char *rel)
{
    if (strcmp(root, ".") == 0 || strcmp(root, "./") == 0) return strdup(rel);
    return join(root, rel);
}

static int walk_dir(scan_t *sc, const char *root, const char *rel, dirstack_t *ds)
{
    char *dir = rel[0] ? join(root, rel) : strdup(root);
    if (!dir) return -1;
    struct stat st;
    if (stat(dir, &st) < 0) {
        scan_error(sc, "%s: %s", dir, strerror(errno));
        free(dir);
        return -1;
    }
    for (int i = 0; i < ds->n; i++) {
        if (ds->dev[i] == st.st_dev && ds->ino[i] == st.st_ino) {
            notice(sc, "%s: directory loop, not entered again", dir);
            free(dir);
            return 0;
        }
    }
    if (ds->n == SCAN_MAX_DEPTH) {
        scan_error(sc, "%s: too deep", dir);
        free(dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        scan_error(sc, "%s: %s", dir, strerror(errno));
        free(dir);
        return -1;
    }
    ds->dev[ds->n] = st.st_dev;
    ds->ino[ds->n] = st.st_ino;
    ds->n++;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, ".git") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) scan_error(sc, "%s: out of memory", dir);
    if (n > 1) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *crel = rel[0] ? join(rel, names[i]) : strdup(names[i]);
        char *path = crel ? join(root, crel) : NULL;
        char *disp = crel ? display_of(root, crel) : NULL;
        struct stat cs;
        if (!crel || !path || !disp) {
            scan_error(sc, "out of memory");
            rc = -1;
        } else if (lstat(path, &cs) < 0) {
            scan_error(sc, "%s: %s", disp, strerror(errno));
        } else if (S_ISDIR(cs.st_mode)) {
            walk_dir(sc, root, crel, ds);
        } else if (S_ISLNK(cs.st_mode)) {
            /* a link to a file is scanned, a link to a directory is not followed */
            if (stat(path, &cs) == 0 && S_ISREG(cs.st_mode)) scan_file(sc, path, disp, crel);
        } else if (S_ISREG(cs.st_mode)) {
            scan_file(sc, path, disp, crel);
        }
        free(crel);
        free(path);
        free(disp);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    ds->n--;
    free(dir);
    return rc;
}

bool scan_in_git_tree(const char *dir)
{
    char *argv[] = {"git", "-C", (char *)dir, "rev-parse", "--is-inside-work-tree", NULL};
    char *out = NULL;
    size_t len = 0;
    if (run_capture(argv, true, &out, &len) < 0) return false;
    bool yes = strncmp(out, "true", 4) == 0;
    free(out);
    return yes;
}

static int walk_git(scan_t *sc, const char *root)
{
    char *argv[] = {"git",      "-C",       (char *)root,         "ls-files", "-z",
                    "--cached", "--others", "--exclude-standard", NULL};
    char *out = NULL;
    size_t len = 0;
    if (run_capture(argv, false, &out, &len) < 0) {
        scan_error(sc, "%s: git ls-files failed", root);
        return -1;
    }
    const char *prev = NULL;
    for (size_t off = 0; off < len;) {
        const char *rel = out + off;
        size_t n = strnlen(rel, len - off);
        off += n + 1;
        if (n == 0 || (prev && strcmp(prev, rel) == 0)) continue; /* unmerged entries repeat */
        prev = rel;
        char *path = join(root, rel);
        char *disp = display_of(root, rel);
        struct stat st;
        if (!path || !disp) {
            scan_error(sc, "out of memory");
        } else if (stat(path, &st) < 0) {
            if (errno != ENOENT) scan_error(sc, "%s: %s", disp, strerror(errno));
        } else if (S_ISREG(st.st_mode)) {
            scan_file(sc, path, disp, rel);
        }
        free(path);
        free(disp);
    }
    free(out);
    return 0;
}

static int scan_path(scan_t *sc, const char *path)
{
    if (strcmp(path, "-") == 0) return scan_stdin(sc);
    struct stat st;
    if (stat(path, &st) < 0) {
        scan_error(sc, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (!sc->opt.no_git_ignore && scan_in_git_tree(path)) return walk_git(sc, path);
        dirstack_t ds = {.n = 0};
        return walk_dir(sc, path, "", &ds);
    }
    if (!S_ISREG(st.st_mode)) {
        scan_error(sc, "%s: not a regular file or a directory", path);
        return -1;
    }
    return scan_file(sc, path, path, path);
}

/* ------------------------------------------------------------------ */
/* baseline                                                             */

typedef struct base_ctx {
    scan_t *sc;
    bool oom;
} base_ctx_t;

static bool is_fp(const char *s, size_t n)
{
    if (n != 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static int base_on_string(const json_string_t *s, void *ctx)
{
    base_ctx_t *b = ctx;
    scan_t *sc = b->sc;
    size_t pl = strlen(s->path);
    static const char key[] = "/fingerprint";
    if (s->is_key || pl < sizeof key - 1 || strcmp(s->path + pl - (sizeof key - 1), key) != 0 ||
        !is_fp(s->text, s->len))
        return 0;
    if (sc->nbase == sc->capbase) {
        size_t nc = sc->capbase ? sc->capbase * 2 : 64;
        char(*nb)[33] = realloc(sc->base, nc * sizeof *nb);
        if (!nb) {
            b->oom = true;
            return 1;
        }
        sc->base = nb;
        sc->capbase = nc;
    }
    memcpy(sc->base[sc->nbase], s->text, 32);
    sc->base[sc->nbase][32] = 0;
    sc->nbase++;
    return 0;
}

static int load_baseline(scan_t *sc, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        scan_error(sc, "--baseline %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    bool more = false;
    int rc = read_upto(fd, (size_t)1 << 30, &buf, &len, &more);
    close(fd);
    if (rc < 0 || more) {
        scan_error(sc, "--baseline %s: %s", path, more ? "too large" : strerror(errno));
        free(buf);
        return -1;
    }
    json_scratch_t js;
    json_scratch_init(&js);
    base_ctx_t b = {sc, false};
    char err[256] = "";
    rc = json_walk(buf, len, &js, base_on_string, &b, err, sizeof err);
    json_scratch_free(&js);
    free(buf);
    if (b.oom || rc != 0) {
        scan_error(sc, "--baseline %s: %s", path, b.oom ? "out of memory" : err);
        return -1;
    }
    if (sc->nbase) qsort(sc->base, sc->nbase, 33, cmp_fp);
    return 0;
}

/* ------------------------------------------------------------------ */
/* options                                                              */

/* ------------------------------------------------------------------ */
/* ignore files                                                         */

/*
 * One entry per line; '#' starts a comment.  A 32-hex-digit line is a
 * finding fingerprint (like a baseline entry).  Anything else is a path
 * glob in the spirit of .gitignore: "dir/" ignores a directory and all
 * below it; a pattern with a '/' is matched against the whole relative
 * path (a leading '/' anchors it) and also ignores what is below it; a
 * pattern without '/' is matched against every path component.
 */
static bool glob_ignores(const char *g, const char *rel)
{
    char pat[1024];
    size_t n = strlen(g);
    if (n == 0 || n >= sizeof pat) return false;
    memcpy(pat, g, n + 1);
    bool dir_only = pat[n - 1] == '/';
    if (dir_only) pat[--n] = 0;
    const char *p = pat[0] == '/' ? pat + 1 : pat;
    if (strchr(p, '/') || pat[0] == '/') {
        if (fnmatch(p, rel, FNM_PATHNAME) == 0) return !dir_only;
        /* a directory pattern covers everything below it */
        size_t pl = strlen(p);
        char prefix[1024];
        for (const char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
            size_t k = (size_t)(s - rel);
            if (k >= sizeof prefix) break;
            memcpy(prefix, rel, k);
            prefix[k] = 0;
            if (fnmatch(p, prefix, FNM_PATHNAME) == 0) return true;
        }
        (void)pl;
        return false;
    }
    /* no '/': any component (a directory component covers what is below) */
    const char *c = rel;
    for (;;) {
        const char *e = strchr(c, '/');
        size_t k = e ? (size_t)(e - c) : strlen(c);
        char comp[256];
        if (k < sizeof comp) {
            memcpy(comp, c, k);
            comp[k] = 0;
            if (fnmatch(p, comp, 0) == 0 && (e || !dir_only)) return true;
        }
        if (!e) return false;
        c = e + 1;
    }
}

bool scan_path_ignored(scan_t *sc, const char *rel)
{
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    for (size_t i = 0; i < sc->nignore; i++) {
        if (glob_ignores(sc->ignore_globs[i], rel)) {
            sc->ignored_files++;
            return true;
        }
    }
    return false;
}

static int add_base(scan_t *sc, const char *fp)
{
    if (sc->nbase == sc->capbase) {
        size_t nc = sc->capbase ? sc->capbase * 2 : 64;
        char(*nb)[33] = realloc(sc->base, nc * 33);
        if (!nb) return -1;
        sc->base = nb;
        sc->capbase = nc;
    }
    memcpy(sc->base[sc->nbase], fp, 32);
    sc->base[sc->nbase][32] = 0;
    sc->nbase++;
    return 0;
}

/* required: an explicit --ignore-file must exist; PATH/.cdeguardignore may not. */
static int load_ignore_file(scan_t *sc, const char *path, bool required)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT) return 0;
        scan_error(sc, "--ignore-file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1100];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strcspn(line, "\r\n");
        if (line[n] == 0 && !feof(f)) {
            scan_error(sc, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        line[n] = 0;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        if (n == 0) continue;
        if (is_fp(s, n)) {
            if (add_base(sc, s) < 0) rc = -1;
            continue;
        }
        if (sc->nignore == sc->capignore) {
            size_t nc = sc->capignore ? sc->capignore * 2 : 16;
            char **ng = realloc(sc->ignore_globs, nc * sizeof *ng);
            if (!ng) {
                rc = -1;
                break;
            }
            sc->ignore_globs = ng;
            sc->capignore = nc;
        }
        if (!(sc->ignore_globs[sc->nignore] = strdup(s))) {
            rc = -1;
            break;
        }
        sc->nignore++;
    }
    fclose(f);
    if (rc < 0 && sc->errors == 0) scan_error(sc, "%s: out of memory", path);
    return rc;
}

static int load_ignores(scan_t *sc)
{
    for (size_t i = 0; i < sc->opt.nignore_files; i++)
        if (load_ignore_file(sc, sc->opt.ignore_files[i], true) < 0) return -1;
    size_t nroots = sc->opt.npaths ? sc->opt.npaths : 1;
    for (size_t i = 0; i < nroots; i++) {
        const char *root = sc->opt.npaths ? sc->opt.paths[i] : ".";
        struct stat st;
        if (strcmp(root, "-") == 0 || stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        char *p = join(root, ".cdeguardignore");
        if (!p) return -1;
        int rc = load_ignore_file(sc, p, false);
        free(p);
        if (rc < 0) return -1;
    }
    if (sc->nbase) qsort(sc->base, sc->nbase, 33, cmp_fp);
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    double mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul < 1 || v * mul > 1e15) return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static int push(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv) return -1;
    nv[(*n)++] = s;
    nv[*n] = NULL;
    *v = nv;
    return 0;
}

/* --name VALUE or --name=VALUE; *i advances past what was used. */
static const char *optval(int argc, char **argv, int *i, const char *name, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (!a || strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != 0) return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "cdeguard scan: %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(scan_t *sc, int argc, char **argv)
{
    scan_opt_t *o = &sc->opt;
    o->max_size = SCAN_DEFAULT_MAX;
    o->format = SCAN_TEXT;
    bool bad = false, only_paths = false;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v;
        if (only_paths || a[0] != '-' || strcmp(a, "-") == 0) {
            if (push(&o->paths, &o->npaths, a) < 0) return -1;
        } else if (strcmp(a, "--") == 0) {
            only_paths = true;
        } else if (strcmp(a, "--git") == 0) {
            o->git = true;
        } else if ((v = optval(argc, argv, &i, "--git-range", &bad))) {
            o->git = true;
            o->git_range = v;
        } else if ((v = optval(argc, argv, &i, "--format", &bad)) ||
                   (v = optval(argc, argv, &i, "-f", &bad))) {
            if (strcmp(v, "text") == 0)
                o->format = SCAN_TEXT;
            else if (strcmp(v, "json") == 0)
                o->format = SCAN_JSON;
            else if (strcmp(v, "sarif") == 0)
                o->format = SCAN_SARIF;
            else {
                fprintf(stderr, "cdeguard scan: --format must be text, json or sarif\n");
                bad = true;
            }
        } else if ((v = optval(argc, argv, &i, "--output", &bad)) ||
                   (v = optval(argc, argv, &i, "-o", &bad))) {
            o->output = v;
        } else if ((v = optval(argc, argv, &i, "--ignore-file", &bad))) {
            if (push(&o->ignore_files, &o->nignore_files, v) < 0) return -1;
        } else if ((v = optval(argc, argv, &i, "--baseline", &bad))) {
            o->baseline = v;
        } else if ((v = optval(argc, argv, &i, "--config", &bad)) ||
                   (v = optval(argc, argv, &i, "-c", &bad))) {
            o->config = v;
        } else if ((v = optval(argc, argv, &i, "--rules", &bad))) {
            if (push(&o->rules, &o->nrules, v) < 0) return -1;
        } else if ((v = optval(argc, argv, &i, "--enable", &bad))) {
            if (push(&o->enable, &o->nenable, v) < 0) return -1;
        } else if ((v = optval(argc, argv, &i, "--disable", &bad))) {
            if (push(&o->disable, &o->ndisable, v) < 0) return -1;
        } else if ((v = optval(argc, argv, &i, "--max-file-size", &bad))) {
            if (parse_size(v, &o->max_size) < 0) {
                fprintf(stderr, "cdeguard scan: --max-file-size: bad size '%s'\n", v);
                bad = true;
            }
        } else if (strcmp(a, "--show-secrets") == 0) {
            o->show_secrets = true;
        } else if (strcmp(a, "--no-git-ignore") == 0) {
            o->no_git_ignore = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = true;
        } else if (!bad) {
            fprintf(stderr, "cdeguard scan: unknown option '%s'\n", a);
            bad = true;
        }
    }
    if (bad) {
        fprintf(stderr, "(see cdeguard scan --help)\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* --config: the config's engine (borrowed: the config owns it) when it has
 * an inspect section.  -1 when the file does not load (every error shown). */
static int load_config(scan_t *sc)
{
    config_errors_t errs = {0};
    sc->cfg = config_load(sc->opt.config, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    config_errors_free(&errs);
    if (!sc->cfg) {
        scan_error(sc, "--config %s: the config has errors", sc->opt.config);
        return -1;
    }
    if (sc->cfg->inspect.engine && sc->opt.nrules) {
        scan_error(sc, "--rules cannot be combined with a config that has an inspect section "
                       "(list the files in inspect.rules_files)");
        return -1;
    }
    sc->eng = sc->cfg->inspect.engine;
    return 0;
}

static int load_engine(scan_t *sc)
{
    char err[512] = "";
    if (sc->opt.config && load_config(sc) < 0) return -1;
    if (!sc->eng && inspect_engine_load_with(inspect_builtin_rules, sc->opt.rules, &sc->eng, err,
                                             sizeof err) < 0) {
        scan_error(sc, "rules: %s", err);
        return -1;
    }
    for (size_t i = 0; i < sc->opt.nenable; i++) {
        if (inspect_rule_enable(sc->eng, sc->opt.enable[i], true) < 0) {
            scan_error(sc, "--enable %s: no such rule", sc->opt.enable[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < sc->opt.ndisable; i++) {
        if (inspect_rule_enable(sc->eng, sc->opt.disable[i], false) < 0) {
            scan_error(sc, "--disable %s: no such rule", sc->opt.disable[i]);
            return -1;
        }
    }
    /* the scratch is made after the last recompilation */
    sc->scratch = inspect_scratch_new(sc->eng);
    if (!sc->scratch) {
        scan_error(sc, "out of memory");
        return -1;
    }
    return 0;
}

static void scan_free(scan_t *sc)
{
    for (size_t i = 0; i < sc->nfind; i++) {
        scan_finding_t *g = &sc->find[i];
        free(g->file);
        free(g->commit);
        free(g->author);
        free(g->date);
        if (g->secret) explicit_bzero(g->secret, g->secret_len);
        free(g->secret);
    }
    free(sc->find);
    free(sc->base);
    for (size_t i = 0; i < sc->nignore; i++)
        free(sc->ignore_globs[i]);
    free(sc->ignore_globs);
    free(sc->opt.ignore_files);
    free(sc->opt.paths);
    free(sc->opt.rules);
    free(sc->opt.enable);
    free(sc->opt.disable);
    inspect_scratch_free(sc->scratch);
    if (!sc->cfg || sc->eng != sc->cfg->inspect.engine) inspect_engine_free(sc->eng);
    config_unref(sc->cfg);
}

int scan_main(int argc, char **argv)
{
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    int status = 2;
    if (parse_args(&sc, argc, argv) < 0) goto out;
    if (load_engine(&sc) < 0) goto out;
    if (sc.opt.baseline && load_baseline(&sc, sc.opt.baseline) < 0) goto out;
    if (load_ignores(&sc) < 0) goto out;
    FILE *rep = stdout;
    if (sc.opt.output && !(rep = fopen(sc.opt.output, "w"))) {
        scan_error(&sc, "%s: %s", sc.opt.output, strerror(errno));
        goto out;
    }
    if (sc.opt.git) {
        if (sc.opt.npaths > 1) {
            scan_error(&sc, "--git takes at most one repository PATH");
        } else {
            scan_git(&sc, sc.opt.npaths ? sc.opt.paths[0] : ".");
        }
    } else if (sc.opt.npaths == 0) {
        if (isatty(STDIN_FILENO))
            scan_path(&sc, ".");
        else
            scan_stdin(&sc);
    } else {
        for (size_t i = 0; i < sc.opt.npaths; i++)
            scan_path(&sc, sc.opt.paths[i]);
    }
    if (scan_report(&sc, rep) < 0) scan_error(&sc, "writing the report failed");
    if (rep != stdout && fclose(rep) != 0)
        scan_error(&sc, "%s: %s", sc.opt.output, strerror(errno));
    if (rep == stdout && fflush(stdout) != 0)
        scan_error(&sc, "standard output: %s", strerror(errno));
    if (!sc.opt.quiet) {
        fprintf(stderr, "%zu finding%s in %zu file%s (%.1f MB scanned)", sc.nfind,
                sc.nfind == 1 ? "" : "s", sc.files, sc.files == 1 ? "" : "s",
                (double)sc.bytes / (1024.0 * 1024.0));
        if (sc.skipped_binary) fprintf(stderr, ", %zu binary skipped", sc.skipped_binary);
        if (sc.suppressed) fprintf(stderr, ", %zu allowed inline", sc.suppressed);
        if (sc.baselined) fprintf(stderr, ", %zu in baseline", sc.baselined);
        if (sc.errors) fprintf(stderr, ", %zu error%s", sc.errors, sc.errors == 1 ? "" : "s");
        fputc('\n', stderr);
    }
    status = sc.errors ? 2 : sc.nfind ? 1 : 0;
out:
    scan_free(&sc);
    return status;
}
