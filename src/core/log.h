/*
 * log — the daemon's own diagnostic log (stderr), not the audit trail.
 *
 * One line per event: "2026-11-23T11:49:04.123Z info message".  Lines are
 * formatted into a bounded stack buffer and written with a single write(2), so
 * lines from several threads never interleave.  Never pass secrets here.
 */
#ifndef CDEGUARD_CORE_LOG_H
#define CDEGUARD_CORE_LOG_H

#include <stdint.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level_t;

void log_set_level(log_level_t min);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Wall clock in ms since the epoch, and a monotonic clock in ns. */
uint64_t clock_wall_ms(void);
uint64_t clock_mono_ns(void);

#endif
