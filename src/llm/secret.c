/*
 * secret — provider keys from env: or file: references (see secret.h).
 */
#include "llm/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64 * 1024)

static int secret_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int secret_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Check and copy the key [v, v + n) into out. */
static int secret_take(const char *ref, const char *v, size_t n, llm_secret_t *out, char *err,
                       size_t errlen)
{
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    while (n && (v[0] == ' ' || v[0] == '\t'))
        v++, n--;
    if (n == 0) return secret_fail(err, errlen, "%.200s: the key is empty", ref);
    if (n > LLM_SECRET_MAX)
        return secret_fail(err, errlen, "%.200s: the key is longer than %d bytes", ref,
                           LLM_SECRET_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return secret_fail(err, errlen,
                               "%.200s: the key has a byte that is not visible ASCII (at %zu)", ref,
                               i);
    out->value = malloc(n + 1);
    if (!out->value) return secret_fail(err, errlen, "%.200s: out of memory", ref);
    memcpy(out->value, v, n);
    out->value[n] = '\0';
    out->len = n;
    return 0;
}

static int secret_from_file(const char *ref, const char *path, llm_secret_t *out, char *err,
                            size_t errlen)
{
    char buf[SECRET_FILE_MAX + 1];
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return secret_fail(err, errlen, "%.200s: %s", ref, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        secret_fail(err, errlen, "%.200s: %s", ref, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        secret_fail(err, errlen, "%.200s: not a regular file", ref);
        goto out;
    }
    if (st.st_mode & S_IWOTH) {
        secret_fail(err, errlen, "%.200s: world-writable (anyone could replace the key)", ref);
        goto out;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            secret_fail(err, errlen, "%.200s: %s", ref, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > SECRET_FILE_MAX) {
            secret_fail(err, errlen, "%.200s: larger than %d bytes: not a key file", ref,
                        SECRET_FILE_MAX);
            goto out;
        }
    }
    const char *nl = memchr(buf, '\n', n);
    rc = secret_take(ref, buf, nl ? (size_t)(nl - buf) : n, out, err, errlen);
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

int llm_secret_load(const char *ref, llm_secret_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!ref) return secret_fail(err, errlen, "no key reference");
    if (strncmp(ref, "env:", 4) == 0) {
        const char *name = ref + 4;
        if (!*name) return secret_fail(err, errlen, "env: needs a variable name");
        const char *v = getenv(name);
        if (!v) return secret_fail(err, errlen, "%.200s: not set", ref);
        return secret_take(ref, v, strlen(v), out, err, errlen);
    }
    if (strncmp(ref, "file:", 5) == 0) {
        if (!ref[5]) return secret_fail(err, errlen, "file: needs a path");
        return secret_from_file(ref, ref + 5, out, err, errlen);
    }
    return secret_fail(err, errlen,
                       "a key is given as env:NAME or file:PATH, never as the value itself");
}

void llm_secret_free(llm_secret_t *s)
{
    if (!s) return;
    if (s->value) {
        explicit_bzero(s->value, s->len);
        free(s->value);
    }
    s->value = NULL;
    s->len = 0;
}
