/*
 * scan_int — what scan.c, scan_git.c and scan_out.c share (not a public
 * API; scan.h is).
 *
 * A scan_t lives for one `cdeguard scan` run and owns everything in it.
 * A scan_src_t describes where findings come from while one buffer is
 * scanned: the bytes visible around them (buf/blen at stream offset base,
 * for the cdeguard:allow check and --show-secrets), the line number of
 * buf's first line, and for history scans the commit.
 */
#ifndef CDEGUARD_SCAN_SCAN_INT_H
#define CDEGUARD_SCAN_SCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "inspect/inspect.h"

#define SCAN_DEFAULT_MAX ((size_t)50 * 1024 * 1024)
#define SCAN_BINARY_PROBE 8192
#define SCAN_CHUNK ((size_t)64 * 1024)
/* >= INSPECT_STREAM_CARRY + INSPECT_STREAM_SLICE + SCAN_CHUNK, with room */
#define SCAN_WINDOW ((size_t)512 * 1024)
#define SCAN_MAX_DEPTH 256

typedef enum { SCAN_TEXT, SCAN_JSON, SCAN_SARIF } scan_format_t;

typedef struct scan_opt {
    const char **paths, **rules, **enable, **disable, **ignore_files; /* point into argv */
    size_t npaths, nrules, nenable, ndisable, nignore_files;
    bool git, show_secrets, no_git_ignore, quiet;
    const char *git_range, *output, *baseline, *config;
    scan_format_t format;
    size_t max_size;
} scan_opt_t;

typedef struct scan_finding {
    inspect_finding_t f; /* as the engine gave it (start/end relative to what was scanned) */
    uint32_t line, column;
    char *file;
    char *commit, *author, *date; /* --git only */
    char *secret;                 /* --show-secrets only */
    size_t secret_len;
} scan_finding_t;

typedef struct scan {
    scan_opt_t opt;
    struct config *cfg;    /* --config, or NULL */
    inspect_engine_t *eng; /* the config's when it has one (then not freed here) */
    inspect_scratch_t *scratch;
    char (*base)[33]; /* sorted baseline and ignore-file fingerprints */
    size_t nbase, capbase;
    char **ignore_globs; /* from .cdeguardignore / --ignore-file, relative to the scan root */
    size_t nignore, capignore;
    size_t ignored_files;
    scan_finding_t *find;
    size_t nfind, capfind;
    size_t files, skipped_binary, suppressed, baselined, errors;
    uint64_t bytes;
} scan_t;

typedef struct scan_src {
    scan_t *sc;
    const char *file;
    const char *buf;
    size_t blen;
    uint64_t base;
    uint32_t line0;
    const char *commit, *author, *date;
} scan_src_t;

void scan_error(scan_t *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Filter (cdeguard:allow, baseline) and keep a finding. -1 out of memory. */
int scan_add(scan_t *sc, const scan_src_t *src, const inspect_finding_t *f);
/* inspect_cb with a scan_src_t as ctx. */
int scan_on_finding(const inspect_finding_t *f, void *ctx);

/* Is this path (relative to the scan root or repository) ignored by an
 * ignore file?  Counts it when it is. */
bool scan_path_ignored(scan_t *sc, const char *rel);

/* Start argv (no shell) with its stdout on the returned fd; -1 on error. */
int scan_spawn(char *const argv[], bool quiet_stderr, pid_t *pid);
int scan_wait(pid_t pid);
bool scan_in_git_tree(const char *dir);

/* History of the repository at repo (scan_git.c). -1 on error (reported). */
int scan_git(scan_t *sc, const char *repo);

/* s[0..n) as a JSON string (quotes included; invalid UTF-8 becomes
 * U+FFFD), scan_out.c. */
void scan_json_str(FILE *o, const char *s, size_t n);

/* The report in sc->opt.format (scan_out.c). -1 on a write error. */
int scan_report(const scan_t *sc, FILE *out);

#endif
