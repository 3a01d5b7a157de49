/*
 * scan — `cdeguard scan`: the inspection engine as a command-line scanner
 * for files, directories, standard input and git history (a gitleaks
 * replacement for CI).
 *
 * Exit status (gitleaks' convention): 0 nothing found, 1 findings, 2 error.
 * Also `cdeguard inspect`, the same engine on one payload with actions.
 */
#ifndef CDEGUARD_SCAN_SCAN_H
#define CDEGUARD_SCAN_SCAN_H

/* argv[0] is "scan". */
int scan_main(int argc, char **argv);

extern const char scan_usage[];

/* `cdeguard inspect`: one payload judged as the gateway judges a request
 * body (payload.c).  Exit status: 0 may leave as is, 1 blocked, 3
 * redacted, 2 error.  argv[0] is "inspect". */
int payload_main(int argc, char **argv);

extern const char payload_usage[];

#endif
