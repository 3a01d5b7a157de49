/*
 * libFuzzer harness for the config loader: arbitrary bytes → config_load_buffer.
 * Checks the loader's contract (a config xor at least one error, every error
 * "NAME:LINE: ..." with LINE >= 1, a loaded config is fully resolved) and frees
 * everything, so ASan/LSan catch leaks, overflows and double frees.
 * Seeds: fuzz/corpus/fuzz_config/, dictionary: fuzz/fuzz_config.dict.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char name[] = "fuzz.yaml";

static void check_errors(const config_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        const char *m = errs->msgs[i];
        size_t nl = sizeof name - 1;
        if (strncmp(m, name, nl) != 0 || m[nl] != ':' || m[nl + 1] < '1' || m[nl + 1] > '9')
            __builtin_trap();
    }
}

static void check_config(const config_t *c)
{
    if (!c->path || !c->audit_path || !c->global_deny) __builtin_trap();
    for (size_t i = 0; i < c->nworkspaces; i++) {
        const config_workspace_t *w = &c->workspaces[i];
        if (!w->id || !w->group || !w->policy || w->policy < c->policies ||
            w->policy >= c->policies + c->npolicies)
            __builtin_trap();
        if (w->sources.n == 0 && w->ntokens == 0) __builtin_trap();
    }
    for (size_t i = 0; i < c->npolicies; i++) {
        const config_policy_t *p = &c->policies[i];
        if (!p->name || p->ngroups == 0 || !p->allow || !p->deny) __builtin_trap();
        /* every id a set can return indexes its pattern array */
        for (size_t k = 0; k < p->nallow; k++)
            if (!p->allow_patterns[k]) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_errors_t errs = {0};
    config_t *c = config_load_buffer(name, (const char *)data, size, &errs);
    if ((c == NULL) == (errs.n == 0)) __builtin_trap();
    check_errors(&errs);
    if (c) {
        check_config(c);
        config_t *r = config_ref(c);
        config_unref(c);
        config_unref(r);
    }
    config_errors_free(&errs);
    return 0;
}
