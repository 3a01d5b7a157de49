/*
 * scan — `cdeguard scan`: the inspection engine as a command-line scanner
 * for files, directories, standard input and git history (a gitleaks
 * replacement for CI).
 *
 * Exit status (gitleaks' convention): 0 nothing found, 1 findings, 2 error.
 */
#ifndef CDEGUARD_SCAN_SCAN_H
#define CDEGUARD_SCAN_SCAN_H

/* argv[0] is "scan". */
int scan_main(int argc, char **argv);

extern const char scan_usage[];

#endif
