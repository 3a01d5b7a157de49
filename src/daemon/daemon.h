/*
 * daemon — `cdeguard serve`: worker threads, signals, reload, drain.
 *
 * The main thread owns the config file path, the current config, the admin
 * listener and the signal handlers; each worker thread owns one event loop
 * (see worker.h).  SIGHUP loads the file into a new config and hands a
 * reference to every worker only if it is valid; SIGTERM/SIGINT drains.
 */
#ifndef CDEGUARD_DAEMON_DAEMON_H
#define CDEGUARD_DAEMON_DAEMON_H

/* Runs until drained; returns the process exit status. */
int daemon_serve(const char *config_path, int workers_override);

#endif
