/*
 * progress.h — `penstock run --progress`: the run's figures drawn in place
 * at the bottom of a terminal (the load's tables, rows, rate and ETA, then
 * the stream's lag), from the run's status (core/status.h).
 *
 * NOTES ON THE DESIGN
 *
 *  1. One thread redraws a block of lines 4 times a second; log records
 *     (util/log.h hook) take the block away, are written, and the block is
 *     drawn again below them, so the scrollback keeps every log line and the
 *     block stays last. All writes to stderr hold its stdio lock.
 *  2. auto draws only on a terminal (stderr is a tty, TERM is not "dumb")
 *     with text logs; elsewhere the run logs plain progress lines, as
 *     without this display. always draws anyway (escape sequences and all);
 *     never does not draw.
 *  3. Lines are cut to the terminal's width, and the table list to what
 *     fits its height, so a line never wraps (a wrapped line would break
 *     the cursor arithmetic of the redraw).
 */
#ifndef PS_CLI_PROGRESS_H
#define PS_CLI_PROGRESS_H

#include <stdbool.h>

#include "core/status.h"

typedef enum ps_progress_mode {
	PS_PROGRESS_AUTO = 0,
	PS_PROGRESS_ALWAYS,
	PS_PROGRESS_NEVER
} ps_progress_mode;

/* "auto" | "always" | "never"; -1 when it is none of them. */
int ps_progress_mode_parse(const char *s);

/* Whether mode draws here and now (note 2). */
bool ps_progress_wanted(int mode);

typedef struct ps_progress ps_progress;

/* Starts drawing status (borrowed: it must outlive ps_progress_stop). */
int ps_progress_start(ps_progress **out, ps_run_status *status);
/* Takes the block away and ends the thread; p may be NULL. */
void ps_progress_stop(ps_progress *p);

/* The block's lines for status (a copy), at most width columns (cut to
 * PS_PROGRESS_WIDTH - 1) and max_lines lines (cut to PS_PROGRESS_LINES).
 * Exposed for tests. */
#define PS_PROGRESS_LINES 12
#define PS_PROGRESS_WIDTH 240
typedef struct ps_progress_block {
	int n;
	char line[PS_PROGRESS_LINES][PS_PROGRESS_WIDTH];
} ps_progress_block;

void ps_progress_render(const ps_run_status *copy, int width, int max_lines,
                        ps_progress_block *out);

#endif
