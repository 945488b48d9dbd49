/*
 * A small pool of worker threads for work that must not block the event
 * loop (private-key operations), in the shape of nginx's thread pool: a
 * task queue under a mutex and condition variable, workers that run each
 * task's work function, and a done queue whose tasks the loop thread hands
 * back through one eventfd registered as a libevent event.
 *
 * A task belongs to the pool from workq_post until its done function is
 * called, on the loop thread; its work function runs on a worker and may
 * touch only the task's own data.  Workers never touch libevent objects,
 * the store, logs or metrics.
 */
#ifndef QROAM_WORKQ_H
#define QROAM_WORKQ_H

#include <stddef.h>
#include <event2/event.h>

#define WORKQ_MAX_THREADS	256
#define WORKQ_MAX_QUEUE		4096	/* tasks waiting for a worker */

struct workq;

/* One piece of work; usually embedded in the caller's own struct. */
struct workq_task {
	/* On a worker thread (or on the loop thread, see workq_post). */
	void		 (*wt_work)(void *arg);
	/* On the loop thread; ran is 0 if the pool stopped before the work. */
	void		 (*wt_done)(void *arg, int ran);
	void		  *wt_arg;
	/* The pool's own, from workq_post until wt_done. */
	struct workq_task *wt_next;
	int		   wt_ran;
};

/*
 * A pool of nthreads workers (0: none, every task runs on the loop thread)
 * on base, holding at most max_queue tasks waiting; NULL on failure.
 */
struct workq	*workq_new(struct event_base *base, unsigned nthreads,
		    size_t max_queue);

/*
 * Queue t (on the loop thread only).  While max_queue tasks wait, or
 * without workers, the work runs at once on the calling thread: the loop
 * slowing down is then the backpressure.  Either way wt_done runs later,
 * never inside this call.  0, or -1 if the pool is stopping.
 */
int		 workq_post(struct workq *, struct workq_task *t);

/*
 * Stop the pool: tasks still waiting are not worked, the workers finish
 * the task each runs and are joined, then every outstanding done function
 * runs here (those of the tasks that ran first), and the pool is freed.
 */
void		 workq_free(struct workq *);

unsigned	 workq_nthreads(const struct workq *);

/* Online processors, at least 1 and at most WORKQ_MAX_THREADS. */
unsigned	 workq_online_cpus(void);

#endif
