/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "payload-writer-workers.h"

typedef struct WorkerThread {
        Workers *w;
        unsigned index;
        pthread_t thread;
} WorkerThread;

struct Workers {
        pthread_mutex_t lock;
        pthread_cond_t queued, finished;
        WorkItem *head, *tail;
        bool stop;
        unsigned n_started; /* 0: items run inline in workers_submit() */
        WorkerThread threads[WORKERS_MAX];
};

unsigned workers_cpus(void) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

static void *worker_main(void *userdata) {
        WorkerThread *t = userdata;
        Workers *w = t->w;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->head && !w->stop)
                        pthread_cond_wait(&w->queued, &w->lock);
                if (!w->head)
                        break;
                WorkItem *item = w->head;
                w->head = item->next;
                if (!w->head)
                        w->tail = NULL;
                pthread_mutex_unlock(&w->lock);
                item->func(item, t->index);
                pthread_mutex_lock(&w->lock);
                item->pending = false;
                pthread_cond_broadcast(&w->finished);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int workers_new(unsigned n_threads, Workers **ret) {
        Workers *w;

        if (n_threads == 0)
                n_threads = workers_cpus();
        n_threads = MIN(n_threads, WORKERS_MAX);
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->queued, NULL);
        pthread_cond_init(&w->finished, NULL);
        if (n_threads > 1)
                for (unsigned i = 0; i < n_threads; i++) {
                        w->threads[i] = (WorkerThread) { .w = w, .index = i };
                        int r = pthread_create(&w->threads[i].thread, NULL, worker_main, &w->threads[i]);
                        if (r == EAGAIN)
                                break; /* a thread limit (TasksMax=, RLIMIT_NPROC): work with what we got */
                        if (r != 0) {
                                workers_free(w);
                                return -r;
                        }
                        w->n_started++;
                }
        /* One thread beside the caller is no gain over running inline, and costs a task. */
        if (w->n_started == 1) {
                workers_free(w);
                return workers_new(1, ret);
        }
        *ret = w;
        return 0;
}

Workers *workers_free(Workers *w) {
        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->queued);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->n_started; i++)
                pthread_join(w->threads[i].thread, NULL);
        pthread_cond_destroy(&w->queued);
        pthread_cond_destroy(&w->finished);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

unsigned workers_threads(const Workers *w) {
        return MAX(w->n_started, 1u);
}

void workers_submit(Workers *w, WorkItem *item, WorkFunc func) {
        item->func = func;
        item->next = NULL;
        if (w->n_started == 0) {
                item->pending = false;
                func(item, 0);
                return;
        }
        pthread_mutex_lock(&w->lock);
        item->pending = true;
        if (w->tail)
                w->tail->next = item;
        else
                w->head = item;
        w->tail = item;
        pthread_cond_signal(&w->queued);
        pthread_mutex_unlock(&w->lock);
}

void workers_wait(Workers *w, WorkItem *item) {
        if (w->n_started == 0)
                return;
        pthread_mutex_lock(&w->lock);
        while (item->pending)
                pthread_cond_wait(&w->finished, &w->lock);
        pthread_mutex_unlock(&w->lock);
}
