/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small fixed pool of worker threads for CPU-bound steps (decoding, compressing) whose results the
 * caller consumes in its own order: the caller submits items and later waits for each one it needs,
 * so I/O, hashing of the stream and everything order-dependent stays on the calling thread. The caller
 * owns the items (typically a ring of a few, which bounds the memory in flight). */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define WORKERS_MAX 64u

typedef struct WorkItem WorkItem;
/* worker: which thread runs the item, from 0 to workers_threads() - 1 (0 when run inline), so that
 * callers can keep per-thread state (decoder memory) without locks. */
typedef void (*WorkFunc)(WorkItem *item, unsigned worker);

struct WorkItem {
        WorkFunc func;
        WorkItem *next; /* queue link, owned by the pool */
        bool pending;   /* submitted and not yet finished */
};

typedef struct Workers Workers;

/* n_threads == 0 picks the number of online CPUs; n_threads == 1 runs every item inline in submit.
 * When the system refuses more threads (EAGAIN: TasksMax=, RLIMIT_NPROC), the pool keeps the ones it
 * got, or runs inline if it got fewer than two; workers_threads() tells how many it has. */
int workers_new(unsigned n_threads, Workers **ret);
/* Finishes the queued items, stops and joins the threads. */
Workers *workers_free(Workers *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Workers *, workers_free);
unsigned workers_threads(const Workers *w);
void workers_submit(Workers *w, WorkItem *item, WorkFunc func);
/* Blocks until item (submitted earlier, or never submitted) is finished. */
void workers_wait(Workers *w, WorkItem *item);
/* Number of CPUs this process may run on (at least 1). */
unsigned workers_cpus(void);
