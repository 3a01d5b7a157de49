/*
 * Every shipped rule against its own examples: each positive example must
 * produce a finding of that rule, each negative (near miss) must not.  The
 * rules are loaded by the real engine (prefilter + exact match + filters),
 * so this also proves every regex compiles in both PCRE2 and Vectorscan.
 * Runs over every rules/ *.yaml file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "inspect/inspect.h"

#define MAX_FILES 32

static char *files[MAX_FILES + 1];
static size_t nfiles;
static inspect_engine_t *engine;
static inspect_scratch_t *scratch;

typedef struct hits {
    const char *want;
    int found;
} hits_t;

static int on_finding(const inspect_finding_t *f, void *ctx)
{
    hits_t *h = ctx;
    if (strcmp(f->rule_id, h->want) == 0) h->found++;
    return 0;
}

static int found_by(const char *rule, const char *category, const char *sample)
{
    hits_t h = {rule, 0};
    if (strcmp(category, "path") == 0)
        inspect_check_path(engine, sample, strlen(sample), on_finding, &h);
    else
        inspect_scan_text(engine, scratch, sample, strlen(sample), on_finding, &h);
    return h.found;
}

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
    (void)d;
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        if (k && strcmp(k, key) == 0) return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* Returns the number of failures; counts examples in *nex. */
static int check_file(const char *path, int *nrules, int *nex)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    assert_true(yaml_parser_load(&p, &d));
    int failures = 0;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_SEQUENCE_NODE);
    for (yaml_node_item_t *it = root->data.sequence.items.start; it < root->data.sequence.items.top;
         it++) {
        yaml_node_t *r = yaml_document_get_node(&d, *it);
        const char *id = scalar(&d, map_get(&d, r, "id"));
        const char *cat = scalar(&d, map_get(&d, r, "category"));
        const char *enabled = scalar(&d, map_get(&d, r, "enabled"));
        yaml_node_t *ex = map_get(&d, r, "examples");
        assert_non_null(id);
        (*nrules)++;
        bool off = enabled && strcmp(enabled, "false") == 0;
        if (off) {
            /* enabling recompiles the database: scratches must be re-made */
            inspect_rule_enable(engine, id, true);
            inspect_scratch_free(scratch);
            scratch = inspect_scratch_new(engine);
            assert_non_null(scratch);
        }
        int npos = 0, nneg = 0;
        for (int pass = 0; pass < 2; pass++) {
            yaml_node_t *list = map_get(&d, ex, pass == 0 ? "positive" : "negative");
            if (!list || list->type != YAML_SEQUENCE_NODE) continue;
            for (yaml_node_item_t *e = list->data.sequence.items.start;
                 e < list->data.sequence.items.top; e++) {
                const char *sample = scalar(&d, yaml_document_get_node(&d, *e));
                if (!sample) continue;
                (*nex)++;
                int n = found_by(id, cat ? cat : "secret", sample);
                if (pass == 0) {
                    npos++;
                    if (n == 0) {
                        print_error("%s: rule %s misses positive example: %.120s\n", path, id,
                                    sample);
                        failures++;
                    }
                } else {
                    nneg++;
                    if (n != 0) {
                        print_error("%s: rule %s fires on negative example: %.120s\n", path, id,
                                    sample);
                        failures++;
                    }
                }
            }
        }
        if (npos == 0 || nneg == 0) {
            print_error("%s: rule %s needs at least one positive and one negative example\n", path,
                        id);
            failures++;
        }
        if (off) {
            inspect_rule_enable(engine, id, false);
            inspect_scratch_free(scratch);
            scratch = inspect_scratch_new(engine);
            assert_non_null(scratch);
        }
    }
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    fclose(f);
    return failures;
}

static void test_every_rule_has_working_examples(void **state)
{
    (void)state;
    int failures = 0, nrules = 0, nex = 0;
    for (size_t i = 0; i < nfiles; i++)
        failures += check_file(files[i], &nrules, &nex);
    print_message("%d rules, %d examples checked in %zu files\n", nrules, nex, nfiles);
    assert_int_equal(failures, 0);
    assert_true(nrules > 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int setup(void **state)
{
    (void)state;
    DIR *dir = opendir("rules");
    if (!dir) return -1;
    struct dirent *de;
    while ((de = readdir(dir)) && nfiles < MAX_FILES) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".yaml") == 0) {
            char *p = malloc(n + 8);
            snprintf(p, n + 8, "rules/%s", de->d_name);
            files[nfiles++] = p;
        }
    }
    closedir(dir);
    qsort(files, nfiles, sizeof files[0], cmp_str);
    char err[512];
    if (inspect_engine_load((const char *const *)files, &engine, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    scratch = inspect_scratch_new(engine);
    return scratch ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    inspect_scratch_free(scratch);
    inspect_engine_free(engine);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_has_working_examples),
    };
    return cmocka_run_group_tests_name("rules_data", tests, setup, teardown);
}
