/*
 * The worker pool of workq.h.  Two queues, each under its own mutex: the
 * task queue that workers wait on (condition variable), and the done queue
 * that the loop drains.  A worker that puts a task on an empty done queue
 * writes the eventfd once; the loop's read callback empties the counter
 * first and then takes the whole queue, so no completion is ever missed
 * and a burst of completions costs one wake-up.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "workq.h"

/* A singly linked FIFO of tasks. */
struct workq_list {
	struct workq_task	 *wl_first;
	struct workq_task	**wl_last;
};

struct workq {
	pthread_mutex_t		 wq_lock;	/* wq_queue .. wq_stopping */
	pthread_cond_t		 wq_cond;
	struct workq_list	 wq_queue;
	size_t			 wq_waiting;
	size_t			 wq_max;
	int			 wq_stopping;

	pthread_mutex_t		 wq_done_lock;	/* wq_done */
	struct workq_list	 wq_done;

	int			 wq_efd;
	struct event		*wq_ev;		/* loop thread only */
	pthread_t		*wq_threads;
	unsigned		 wq_nthreads;
};

static void
workq_list_init(struct workq_list *l)
{
	l->wl_first = NULL;
	l->wl_last = &l->wl_first;
}

static void
workq_list_append(struct workq_list *l, struct workq_task *t)
{
	t->wt_next = NULL;
	*l->wl_last = t;
	l->wl_last = &t->wt_next;
}

/* Move everything of from into to, leaving from empty. */
static void
workq_list_take(struct workq_list *from, struct workq_list *to)
{
	*to = *from;
	if (to->wl_first == NULL)
		to->wl_last = &to->wl_first;
	workq_list_init(from);
}

static void
workq_lock(pthread_mutex_t *m)
{
	int	 rc;

	if ((rc = pthread_mutex_lock(m)) != 0) {
		errno = rc;
		fatal("pthread_mutex_lock");
	}
}

static void
workq_unlock(pthread_mutex_t *m)
{
	int	 rc;

	if ((rc = pthread_mutex_unlock(m)) != 0) {
		errno = rc;
		fatal("pthread_mutex_unlock");
	}
}

/* Put a worked task on the done queue; wake the loop if it was empty. */
static void
workq_complete(struct workq *wq, struct workq_task *t)
{
	uint64_t	 one = 1;
	int		 wake;

	workq_lock(&wq->wq_done_lock);
	wake = wq->wq_done.wl_first == NULL;
	workq_list_append(&wq->wq_done, t);
	workq_unlock(&wq->wq_done_lock);
	/* EAGAIN: the counter is far from empty, the loop wakes anyway. */
	while (wake && write(wq->wq_efd, &one, sizeof(one)) == -1 &&
	    errno == EINTR)
		;
}

/* A worker: take tasks until the pool stops. */
static void *
workq_thread(void *arg)
{
	struct workq		*wq = arg;
	struct workq_task	*t;
	int			 rc;

	for (;;) {
		workq_lock(&wq->wq_lock);
		while (wq->wq_queue.wl_first == NULL && !wq->wq_stopping)
			if ((rc = pthread_cond_wait(&wq->wq_cond,
			    &wq->wq_lock)) != 0) {
				errno = rc;
				fatal("pthread_cond_wait");
			}
		if ((t = wq->wq_queue.wl_first) == NULL) {
			workq_unlock(&wq->wq_lock);
			return NULL;
		}
		if ((wq->wq_queue.wl_first = t->wt_next) == NULL)
			wq->wq_queue.wl_last = &wq->wq_queue.wl_first;
		wq->wq_waiting--;
		workq_unlock(&wq->wq_lock);

		t->wt_work(t->wt_arg);
		t->wt_ran = 1;
		workq_complete(wq, t);
	}
}

/* Hand the tasks of the done queue back to their owners. */
static void
workq_run_done(struct workq *wq)
{
	struct workq_list	 done;
	struct workq_task	*t, *next;

	workq_lock(&wq->wq_done_lock);
	workq_list_take(&wq->wq_done, &done);
	workq_unlock(&wq->wq_done_lock);
	for (t = done.wl_first; t != NULL; t = next) {
		next = t->wt_next;	/* done may free t */
		t->wt_done(t->wt_arg, t->wt_ran);
	}
}

/* The eventfd is readable: completions are waiting. */
static void
workq_wake_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t	 n;

	(void)ev;
	while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	workq_run_done(arg);
}

/*
 * Start the workers with the asynchronous signals blocked, so that the
 * loop thread takes them; faults still reach the thread that caused them.
 */
static int
workq_start_threads(struct workq *wq, unsigned nthreads)
{
	sigset_t	 all, old;
	int		 rc = 0;

	sigfillset(&all);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return -1;
	while (wq->wq_nthreads < nthreads) {
		if ((rc = pthread_create(&wq->wq_threads[wq->wq_nthreads], NULL,
		    workq_thread, wq)) != 0)
			break;
		wq->wq_nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("worker thread %u of %u", wq->wq_nthreads + 1,
		    nthreads);
		return -1;
	}
	return 0;
}

struct workq *
workq_new(struct event_base *base, unsigned nthreads, size_t max_queue)
{
	struct workq	*wq;

	if (nthreads > WORKQ_MAX_THREADS || (wq = calloc(1,
	    sizeof(*wq))) == NULL)
		return NULL;
	workq_list_init(&wq->wq_queue);
	workq_list_init(&wq->wq_done);
	wq->wq_max = max_queue;
	wq->wq_efd = -1;
	if (pthread_mutex_init(&wq->wq_lock, NULL) != 0) {
		free(wq);
		return NULL;
	}
	if (pthread_mutex_init(&wq->wq_done_lock, NULL) != 0) {
		pthread_mutex_destroy(&wq->wq_lock);
		free(wq);
		return NULL;
	}
	if (pthread_cond_init(&wq->wq_cond, NULL) != 0) {
		pthread_mutex_destroy(&wq->wq_done_lock);
		pthread_mutex_destroy(&wq->wq_lock);
		free(wq);
		return NULL;
	}
	if ((wq->wq_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (wq->wq_ev = event_new(base, wq->wq_efd, EV_READ | EV_PERSIST,
	    workq_wake_cb, wq)) == NULL || event_add(wq->wq_ev, NULL) == -1 ||
	    (nthreads > 0 && (wq->wq_threads = calloc(nthreads,
	    sizeof(*wq->wq_threads))) == NULL) ||
	    workq_start_threads(wq, nthreads) == -1) {
		workq_free(wq);
		return NULL;
	}
	return wq;
}

int
workq_post(struct workq *wq, struct workq_task *t)
{
	int	 inline_work = 0;

	t->wt_ran = 0;
	workq_lock(&wq->wq_lock);
	if (wq->wq_stopping) {
		workq_unlock(&wq->wq_lock);
		return -1;
	}
	if (wq->wq_nthreads == 0 || wq->wq_waiting >= wq->wq_max)
		inline_work = 1;
	else {
		workq_list_append(&wq->wq_queue, t);
		wq->wq_waiting++;
		pthread_cond_signal(&wq->wq_cond);
	}
	workq_unlock(&wq->wq_lock);
	if (inline_work) {
		t->wt_work(t->wt_arg);
		t->wt_ran = 1;
		workq_lock(&wq->wq_done_lock);
		workq_list_append(&wq->wq_done, t);
		workq_unlock(&wq->wq_done_lock);
		event_active(wq->wq_ev, EV_READ, 0);
	}
	return 0;
}

void
workq_free(struct workq *wq)
{
	struct workq_list	 cancelled;
	struct workq_task	*t, *next;
	unsigned		 i;

	if (wq == NULL)
		return;
	workq_lock(&wq->wq_lock);
	wq->wq_stopping = 1;
	workq_list_take(&wq->wq_queue, &cancelled);
	wq->wq_waiting = 0;
	pthread_cond_broadcast(&wq->wq_cond);
	workq_unlock(&wq->wq_lock);
	for (i = 0; i < wq->wq_nthreads; i++)
		if (pthread_join(wq->wq_threads[i], NULL) != 0)
			fatalx("pthread_join");
	workq_run_done(wq);
	for (t = cancelled.wl_first; t != NULL; t = next) {
		next = t->wt_next;
		t->wt_ran = 0;
		t->wt_done(t->wt_arg, 0);
	}
	if (wq->wq_ev != NULL)
		event_free(wq->wq_ev);
	if (wq->wq_efd != -1)
		close(wq->wq_efd);
	free(wq->wq_threads);
	pthread_cond_destroy(&wq->wq_cond);
	pthread_mutex_destroy(&wq->wq_done_lock);
	pthread_mutex_destroy(&wq->wq_lock);
	free(wq);
}

unsigned
workq_nthreads(const struct workq *wq)
{
	return wq->wq_nthreads;
}

unsigned
workq_online_cpus(void)
{
	long	 n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WORKQ_MAX_THREADS ? WORKQ_MAX_THREADS : (unsigned)n;
}
