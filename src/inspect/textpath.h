/*
 * textpath — file paths mentioned in free text, checked against the path
 * rules.
 *
 * What an agent sends to an LLM often says which file it read even when the
 * file's name is in no JSON field: `cat` output with headers, shell
 * transcripts, code-fence titles, tool-call arguments serialised inside a
 * string.  inspect_textpath_candidates() finds those mentions:
 *
 *   ==> .env <==                          head/tail with several files
 *   $ cat ~/.aws/credentials              cat (also after `, ', ", |, &&, ;)
 *   File: config/.env                     "File:" / "file:" at a line start
 *   ```yaml path=deploy/.env              code-fence info: path=, file=,
 *   ```python title="app/.env"            filename=, title=, name=, lang:PATH,
 *   ```.env   ```js src/app.js            or a token with '/' or '.'
 *   {"file_path": "/home/u/.ssh/id_rsa"}  tool-call arguments: a quoted key
 *                                         naming a file, then a quoted value
 *
 * and inspect_textpath_scan() checks each with inspect_check_path(),
 * reporting findings whose start/end are the path's byte range in the text
 * (line and column 1-based, column in bytes), sorted by position.
 *
 * Bounds: a mention is at most TEXTPATH_MAX_PATH bytes; at most
 * TEXTPATH_MAX_CANDIDATES mentions are checked per call (the rest are
 * ignored); the work is linear: bytes read while extracting paths are
 * capped at TEXTPATH_WORK_FACTOR x len + 64 KiB (crafted text that would
 * need more gets no further mentions).  Memory: one array of candidates per call, freed before
 * returning; nothing is kept.  Pure and re-entrant; the engine is only read.
 *
 * Return convention (as inspect_scan_text): 0 done, the callback's non-zero
 * value if it stopped the scan, -1 out of memory.
 */
#ifndef CDEGUARD_INSPECT_TEXTPATH_H
#define CDEGUARD_INSPECT_TEXTPATH_H

#include <stddef.h>

#include "inspect/inspect.h"

#define TEXTPATH_MAX_PATH 1024
#define TEXTPATH_MAX_CANDIDATES 65536
#define TEXTPATH_WORK_FACTOR 8

/* Trigger literals (compare case-insensitively): every mention's context
 * contains at least one.  The engine finds them in its Vectorscan pass and
 * hands their positions to inspect_textpath_scan_at(), so only the lines
 * around them are looked at. */
size_t inspect_textpath_ntriggers(void);
const char *inspect_textpath_trigger(size_t i); /* NULL past the end */

typedef struct inspect_textpath_hit {
    size_t start;     /* offset of the trigger literal in the text */
    unsigned trigger; /* its index */
} inspect_textpath_hit_t;

/* A mention [start, end) of data; non-zero stops the search. */
typedef int (*inspect_textpath_fn)(size_t start, size_t end, void *ctx);

/* Every mention, sorted by start, without duplicates. */
int inspect_textpath_candidates(const char *data, size_t len, inspect_textpath_fn fn, void *ctx);

/* The same, looking only around the given trigger hits (every hit of
 * every trigger in data, in any order: the array is sorted in place);
 * equal to inspect_textpath_candidates() when the hits are complete. */
int inspect_textpath_candidates_at(const char *data, size_t len, inspect_textpath_hit_t *hits,
                                   size_t nhits, inspect_textpath_fn fn, void *ctx);

/* Every mention that a path rule of `e` matches, as findings. */
int inspect_textpath_scan(const inspect_engine_t *e, const char *data, size_t len, inspect_cb cb,
                          void *ctx);
int inspect_textpath_scan_at(const inspect_engine_t *e, const char *data, size_t len,
                             inspect_textpath_hit_t *hits, size_t nhits, inspect_cb cb, void *ctx);

#endif
