/*
 * secret — provider API keys, read once at start from the environment or
 * from a file, held for injection upstream and never shown.
 *
 * A key is named in the config by reference, never by value:
 *
 *   env:OPENAI_API_KEY            the variable's value
 *   file:/run/secrets/anthropic   the file's first line (a Kubernetes or
 *                                 Docker secret mount), trailing CR/LF and
 *                                 blanks stripped
 *
 * Closed by default: an unset or empty variable, a missing, unreadable,
 * non-regular, world-writable or larger than 64 KiB file, and a key that
 * is empty, longer than LLM_SECRET_MAX or has bytes outside visible ASCII
 * are errors.  Error messages name the reference, never the value.
 *
 * Memory: the key is copied into heap memory owned by the llm_secret_t;
 * llm_secret_free() wipes it (explicit_bzero) before freeing.  The buffers
 * used to read a file are wiped too.
 */
#ifndef CDEGUARD_LLM_SECRET_H
#define CDEGUARD_LLM_SECRET_H

#include <stddef.h>

#define LLM_SECRET_MAX 1024

typedef struct llm_secret {
    char *value; /* NUL-terminated */
    size_t len;
} llm_secret_t;

/* 0 ok; -1 with err ("env:NAME: not set", "file:PATH: world-writable", ...). */
int llm_secret_load(const char *ref, llm_secret_t *out, char *err, size_t errlen);
void llm_secret_free(llm_secret_t *s);

#endif
