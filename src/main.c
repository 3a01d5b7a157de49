/*
 * main — the cdeguard command line: serve, check-config, hash-token, scan,
 * inspect, usage.
 *
 * Exit status: 0 success, 1 the command failed (bad config, cannot listen),
 * 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "identity/identity.h"
#include "limits/limiter.h"
#include "scan/scan.h"

static const char usage_main[] =
    "usage: cdeguard <command> [options]\n"
    "\n"
    "cdeguard is the egress control point for cloud development environments:\n"
    "an egress proxy with per-workspace policies, SSRF guard and audit trail,\n"
    "an LLM gateway (workspace identity, provider keys, content filter, rate\n"
    "limits and token/cost budgets, Envoy ext_authz), and a secret / PII /\n"
    "restricted-file inspection engine.\n"
    "\n"
    "commands:\n"
    "  serve --config FILE       run the daemon (egress proxy, LLM gateway, admin/metrics)\n"
    "  check-config FILE         validate a config file and report every error\n"
    "  hash-token [TOKEN]        print the sha256:<hex> form of a workspace token\n"
    "  scan [PATH...|-]          find secrets, PII and restricted files (files, stdin, --git)\n"
    "  inspect [FILE|-]          judge one payload as the gateway would (verdict, --redact)\n"
    "  usage --config FILE       LLM usage (tokens, cost, requests) by workspace, team, ...\n"
    "  version                   print the version (also --version)\n"
    "  help [COMMAND]            this text, or a command's help (also COMMAND --help)\n";

static const char usage_serve[] =
    "usage: cdeguard serve --config FILE [--workers N]\n"
    "\n"
    "Runs the daemon in the foreground; logs go to stderr, audit records to the\n"
    "configured sink.\n"
    "  -c, --config FILE   configuration file (YAML); required\n"
    "  -w, --workers N     event-loop threads (overrides `workers:`; default: cores)\n"
    "signals: SIGHUP reloads the config (an invalid file is refused and the\n"
    "running config stays); SIGTERM/SIGINT drain in-flight requests and exit.\n";

static const char usage_check[] =
    "usage: cdeguard check-config FILE\n"
    "\n"
    "Loads and validates FILE exactly as `serve` would. Prints \"FILE: ok\" and exits 0,\n"
    "or prints every problem as FILE:LINE: message on stderr and exits 1.\n";

static const char usage_hash[] =
    "usage: cdeguard hash-token [TOKEN]\n"
    "\n"
    "Prints sha256:<hex> for TOKEN (or for the first line of standard input), the\n"
    "form in which workspace tokens are stored in the config. Passing the token on\n"
    "stdin keeps it out of the shell history.\n";

static const char usage_usage[] =
    "usage: cdeguard usage --config FILE [--by DIM] [--since WHEN] [--until WHEN] [--json]\n"
    "\n"
    "Reports the LLM usage the gateway recorded in the limits store of FILE (the\n"
    "embedded database, read while the daemon runs, or Redis): requests, input,\n"
    "output and cached tokens and cost, summed by one dimension.\n"
    "  --by DIM       workspace (default), team, project, agent, model or provider\n"
    "  --since WHEN   start (default: today 00:00 UTC); WHEN is 2026-12-01,\n"
    "                 2026-12-01T10:00:00Z, a Unix time, or 7d / 24h / 30m ago\n"
    "  --until WHEN   end (default: now); usage is kept per UTC hour\n"
    "  --json         the JSON of the admin endpoint GET /v1/usage\n";

static int want_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    int workers = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else if ((strcmp(a, "--workers") == 0 || strcmp(a, "-w") == 0) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "cdeguard serve: --workers takes a number from 1 to 256\n");
                return 2;
            }
            workers = (int)v;
        } else {
            fprintf(stderr, "cdeguard serve: unexpected argument '%s'\n\n%s", a, usage_serve);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "cdeguard serve: --config FILE is required\n\n%s", usage_serve);
        return 2;
    }
    return daemon_serve(path, workers);
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "%s", usage_check);
        return 2;
    }
    config_errors_t errs = {0};
    config_t *c = config_load(argv[2], &errs);
    if (!c) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (errs.n == 0) fprintf(stderr, "%s: cannot be loaded\n", argv[2]);
        config_errors_free(&errs);
        return 1;
    }
    config_errors_free(&errs);
    printf("%s: ok (%zu workspaces, %zu policies)\n", argv[2], c->nworkspaces, c->npolicies);
    config_unref(c);
    return 0;
}

static int cmd_hash(int argc, char **argv)
{
    char line[4096];
    const char *tok;
    size_t len;
    if (argc == 3) {
        tok = argv[2];
        len = strlen(tok);
    } else if (argc == 2) {
        if (!fgets(line, sizeof line, stdin)) {
            fprintf(stderr, "cdeguard hash-token: no token on standard input\n");
            return 1;
        }
        len = strcspn(line, "\r\n");
        line[len] = 0;
        tok = line;
    } else {
        fprintf(stderr, "%s", usage_hash);
        return 2;
    }
    if (len == 0) {
        fprintf(stderr, "cdeguard hash-token: empty token\n");
        return 1;
    }
    uint8_t d[32];
    ident_hash_token(tok, len, d);
    printf("sha256:");
    for (int i = 0; i < 32; i++)
        printf("%02x", d[i]);
    printf("\n");
    return 0;
}

static int cmd_usage(int argc, char **argv)
{
    const char *path = NULL;
    lim_by_t by = LIM_BY_WORKSPACE;
    int64_t now = lim_now(), since = now / 86400 * 86400, until = now + 3600;
    bool json = false;
    for (int i = 2; i < argc && argv[i]; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && v) {
            path = v;
            i++;
        } else if (strcmp(a, "--by") == 0 && v) {
            if (lim_by_parse(v, &by) < 0) {
                fprintf(stderr, "cdeguard usage: --by takes workspace, team, project, agent, "
                                "model or provider\n");
                return 2;
            }
            i++;
        } else if ((strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) && v) {
            if (lim_parse_when(v, strlen(v), now, a[2] == 's' ? &since : &until) < 0) {
                fprintf(stderr,
                        "cdeguard usage: %s '%s': want 2026-12-01, 2026-12-01T10:00:00Z, "
                        "a Unix time, or 7d / 24h / 30m\n",
                        a, v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "cdeguard usage: unexpected argument '%s'\n\n%s", a, usage_usage);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "cdeguard usage: --config FILE is required\n\n%s", usage_usage);
        return 2;
    }
    config_errors_t errs = {0};
    config_t *c = config_load(path, &errs);
    if (!c) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (errs.n == 0) fprintf(stderr, "%s: cannot be loaded\n", path);
        config_errors_free(&errs);
        return 1;
    }
    config_errors_free(&errs);
    char *out = NULL, err[512];
    int rc = lim_report(NULL, c, by, since, until, json, &out, err, sizeof err);
    config_unref(c);
    if (rc < 0) {
        fprintf(stderr, "cdeguard usage: %s\n", err);
        return 1;
    }
    fputs(out, stdout);
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s", usage_main);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("cdeguard %s\n", CDEGUARD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const char *sub = argc > 2 ? argv[2] : "";
        if (strcmp(sub, "serve") == 0)
            fputs(usage_serve, stdout);
        else if (strcmp(sub, "check-config") == 0)
            fputs(usage_check, stdout);
        else if (strcmp(sub, "hash-token") == 0)
            fputs(usage_hash, stdout);
        else if (strcmp(sub, "scan") == 0)
            fputs(scan_usage, stdout);
        else if (strcmp(sub, "inspect") == 0)
            fputs(payload_usage, stdout);
        else if (strcmp(sub, "usage") == 0)
            fputs(usage_usage, stdout);
        else
            fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) {
        if (want_help(argc, argv)) return fputs(usage_serve, stdout), 0;
        return cmd_serve(argc, argv);
    }
    if (strcmp(cmd, "check-config") == 0) {
        if (want_help(argc, argv)) return fputs(usage_check, stdout), 0;
        return cmd_check(argc, argv);
    }
    if (strcmp(cmd, "hash-token") == 0) {
        if (want_help(argc, argv)) return fputs(usage_hash, stdout), 0;
        return cmd_hash(argc, argv);
    }
    if (strcmp(cmd, "scan") == 0) {
        if (want_help(argc, argv)) return fputs(scan_usage, stdout), 0;
        return scan_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "inspect") == 0) {
        if (want_help(argc, argv)) return fputs(payload_usage, stdout), 0;
        return payload_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "usage") == 0) {
        if (want_help(argc, argv)) return fputs(usage_usage, stdout), 0;
        return cmd_usage(argc, argv);
    }
    fprintf(stderr, "cdeguard: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
