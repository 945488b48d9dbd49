/*
 * Unit tests of the worker pool: many tasks worked on the workers and
 * handed back on the loop thread exactly once each, completions in any
 * order, work on the calling thread without workers or with a full queue,
 * and a shutdown that cancels the tasks still waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include <event2/event.h>

#include "workq.h"

#include "testutil.h"

#define WAIT_MS		20000
#define MANY		3000

/* A gate that work functions wait on until the test opens it. */
struct gate {
	pthread_mutex_t	 g_lock;
	pthread_cond_t	 g_cond;
	int		 g_open;
	int		 g_waiting;	/* work functions blocked on it */
};

static void
gate_init(struct gate *g)
{
	pthread_mutex_init(&g->g_lock, NULL);
	pthread_cond_init(&g->g_cond, NULL);
	g->g_open = 0;
	g->g_waiting = 0;
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->g_lock);
	g->g_open = 1;
	pthread_cond_broadcast(&g->g_cond);
	pthread_mutex_unlock(&g->g_lock);
}

static void
gate_pass(struct gate *g)
{
	pthread_mutex_lock(&g->g_lock);
	g->g_waiting++;
	pthread_cond_broadcast(&g->g_cond);
	while (!g->g_open)
		pthread_cond_wait(&g->g_cond, &g->g_lock);
	pthread_mutex_unlock(&g->g_lock);
}

/* Wait until n work functions are blocked on g. */
static void
gate_wait_blocked(struct gate *g, int n)
{
	pthread_mutex_lock(&g->g_lock);
	while (g->g_waiting < n)
		pthread_cond_wait(&g->g_cond, &g->g_lock);
	pthread_mutex_unlock(&g->g_lock);
}

static void
gate_free(struct gate *g)
{
	pthread_cond_destroy(&g->g_cond);
	pthread_mutex_destroy(&g->g_lock);
}

/* The state every test shares; only the loop thread touches it. */
struct world {
	pthread_t	 w_loop;
	int		 w_done;	/* done calls */
	int		 w_ran;		/* of them with ran set */
	int		 w_off_loop;	/* done calls not on the loop thread */
	int		 w_order[MANY];	/* task ids in the order handed back */
	struct workq	*w_wq;
	int		 w_post_rc;	/* workq_post from a done function */
};

/* One task and the data it owns while queued. */
struct job {
	struct workq_task	 j_task;
	struct world		*j_world;
	struct gate		*j_gate;	/* NULL: do not wait */
	int			 j_id;
	uint64_t		 j_in;
	uint64_t		 j_out;		/* written by the work */
	pthread_t		 j_worker;	/* the thread that did the work */
	int			 j_worked;	/* times the work ran */
	int			 j_done;	/* times done ran */
	int			 j_ran;		/* done's ran argument */
	int			 j_repost;	/* post again from done */
};

/* Some arithmetic the loop can check: a splitmix64 chain from j_in. */
static void
job_work(void *arg)
{
	struct job	*j = arg;
	uint64_t	 x = j->j_in;
	int		 i;

	if (j->j_gate != NULL)
		gate_pass(j->j_gate);
	for (i = 0; i < 1000; i++) {
		x += 0x9e3779b97f4a7c15ull;
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		x ^= x >> 31;
	}
	j->j_out = x;
	j->j_worker = pthread_self();
	j->j_worked++;
}

static uint64_t
job_expect(uint64_t in)
{
	struct job	 j;

	memset(&j, 0, sizeof(j));
	j.j_in = in;
	job_work(&j);
	return j.j_out;
}

static void
job_done(void *arg, int ran)
{
	struct job	*j = arg;
	struct world	*w = j->j_world;

	if (!pthread_equal(pthread_self(), w->w_loop))
		w->w_off_loop++;
	if (w->w_done < MANY)
		w->w_order[w->w_done] = j->j_id;
	w->w_done++;
	w->w_ran += ran != 0;
	j->j_done++;
	j->j_ran = ran;
	if (j->j_repost)
		w->w_post_rc = workq_post(w->w_wq, &j->j_task);
}

static void
job_init(struct job *j, struct world *w, int id)
{
	memset(j, 0, sizeof(*j));
	j->j_task.wt_work = job_work;
	j->j_task.wt_done = job_done;
	j->j_task.wt_arg = j;
	j->j_world = w;
	j->j_id = id;
	j->j_in = (uint64_t)id * 7919u + 1;
}

static void
world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->w_loop = pthread_self();
}

/* Many tasks on four workers: each worked once off the loop, each handed
 * back once on the loop, with the right result. */
static void
test_many_tasks(void **state)
{
	struct event_base	*base;
	struct world		 w;
	struct job		*jobs;
	int			 i, off_loop = 0;

	(void)state;
	world_init(&w);
	assert_non_null(base = event_base_new());
	assert_non_null(w.w_wq = workq_new(base, 4, MANY));
	assert_int_equal(workq_nthreads(w.w_wq), 4);
	assert_non_null(jobs = calloc(MANY, sizeof(*jobs)));
	for (i = 0; i < MANY; i++) {
		job_init(&jobs[i], &w, i);
		assert_int_equal(workq_post(w.w_wq, &jobs[i].j_task), 0);
	}
	tu_wait_count(base, &w.w_done, MANY, WAIT_MS);
	assert_int_equal(w.w_ran, MANY);
	assert_int_equal(w.w_off_loop, 0);
	for (i = 0; i < MANY; i++) {
		assert_int_equal(jobs[i].j_worked, 1);
		assert_int_equal(jobs[i].j_done, 1);
		assert_int_equal(jobs[i].j_ran, 1);
		assert_true(jobs[i].j_out == job_expect(jobs[i].j_in));
		off_loop += !pthread_equal(jobs[i].j_worker, w.w_loop);
	}
	/* The queue never filled, so no work ran on the loop thread. */
	assert_int_equal(off_loop, MANY);
	tu_run_for(base, 20);
	assert_int_equal(w.w_done, MANY);
	workq_free(w.w_wq);
	assert_int_equal(w.w_done, MANY);
	free(jobs);
	event_base_free(base);
}

/* Completions come back in the order the work ends, not the order of
 * posting: job 0 is held on a gate while job 1, posted after it, is worked
 * and handed back; then job 0 is. */
static void
test_order_independent(void **state)
{
	struct event_base	*base;
	struct world		 w;
	struct job		 jobs[2];
	struct gate		 hold0;

	(void)state;
	world_init(&w);
	gate_init(&hold0);
	assert_non_null(base = event_base_new());
	assert_non_null(w.w_wq = workq_new(base, 2, 16));
	job_init(&jobs[0], &w, 0);
	job_init(&jobs[1], &w, 1);
	jobs[0].j_gate = &hold0;
	assert_int_equal(workq_post(w.w_wq, &jobs[0].j_task), 0);
	gate_wait_blocked(&hold0, 1);
	assert_int_equal(workq_post(w.w_wq, &jobs[1].j_task), 0);
	tu_wait_count(base, &w.w_done, 1, WAIT_MS);
	assert_int_equal(w.w_order[0], 1);
	assert_int_equal(jobs[0].j_done, 0);
	gate_open(&hold0);
	tu_wait_count(base, &w.w_done, 2, WAIT_MS);
	assert_int_equal(w.w_order[1], 0);
	assert_int_equal(jobs[0].j_ran, 1);
	workq_free(w.w_wq);
	gate_free(&hold0);
	event_base_free(base);
}

/* Without workers the work runs on the calling thread, and done only
 * later from the loop. */
static void
test_no_workers(void **state)
{
	struct event_base	*base;
	struct world		 w;
	struct job		 j;

	(void)state;
	world_init(&w);
	assert_non_null(base = event_base_new());
	assert_non_null(w.w_wq = workq_new(base, 0, 16));
	assert_int_equal(workq_nthreads(w.w_wq), 0);
	job_init(&j, &w, 0);
	assert_int_equal(workq_post(w.w_wq, &j.j_task), 0);
	assert_int_equal(j.j_worked, 1);
	assert_true(pthread_equal(j.j_worker, w.w_loop));
	assert_int_equal(w.w_done, 0);
	tu_wait_count(base, &w.w_done, 1, WAIT_MS);
	assert_int_equal(j.j_ran, 1);
	workq_free(w.w_wq);
	assert_int_equal(j.j_done, 1);
	event_base_free(base);
}

/* With max_queue tasks waiting the next one is worked at once on the
 * calling thread. */
static void
test_full_queue_works_inline(void **state)
{
	struct event_base	*base;
	struct world		 w;
	struct job		 jobs[4];
	struct gate		 g;
	int			 i;

	(void)state;
	world_init(&w);
	gate_init(&g);
	assert_non_null(base = event_base_new());
	assert_non_null(w.w_wq = workq_new(base, 1, 2));
	for (i = 0; i < 4; i++)
		job_init(&jobs[i], &w, i);
	jobs[0].j_gate = &g;
	assert_int_equal(workq_post(w.w_wq, &jobs[0].j_task), 0);
	gate_wait_blocked(&g, 1);	/* the one worker is busy */
	assert_int_equal(workq_post(w.w_wq, &jobs[1].j_task), 0);
	assert_int_equal(workq_post(w.w_wq, &jobs[2].j_task), 0);
	assert_int_equal(workq_post(w.w_wq, &jobs[3].j_task), 0);
	assert_int_equal(jobs[3].j_worked, 1);
	assert_true(pthread_equal(jobs[3].j_worker, w.w_loop));
	assert_int_equal(w.w_done, 0);
	tu_wait_count(base, &w.w_done, 1, WAIT_MS);
	assert_int_equal(w.w_order[0], 3);
	gate_open(&g);
	tu_wait_count(base, &w.w_done, 4, WAIT_MS);
	for (i = 0; i < 3; i++)
		assert_false(pthread_equal(jobs[i].j_worker, w.w_loop));
	assert_int_equal(w.w_ran, 4);
	workq_free(w.w_wq);
	gate_free(&g);
	event_base_free(base);
}

/* Opens the gate a little after the pool started stopping. */
static void *
late_opener(void *arg)
{
	struct timespec	 ts = { 0, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	gate_open(arg);
	return NULL;
}

/*
 * Shutdown while one task runs and many wait: the running one finishes
 * and is handed back as worked, the waiting ones are handed back unworked,
 * each exactly once, and a post from a done function is refused.
 */
static void
test_shutdown_with_tasks_queued(void **state)
{
	struct event_base	*base;
	struct world		 w;
	struct job		*jobs;
	struct gate		 g;
	pthread_t		 opener;
	int			 i, n = 200, cancelled = 0;

	(void)state;
	world_init(&w);
	gate_init(&g);
	assert_non_null(base = event_base_new());
	assert_non_null(w.w_wq = workq_new(base, 1, n));
	assert_non_null(jobs = calloc(n, sizeof(*jobs)));
	for (i = 0; i < n; i++) {
		job_init(&jobs[i], &w, i);
		jobs[i].j_repost = 1;
	}
	jobs[0].j_gate = &g;
	for (i = 0; i < n; i++)
		assert_int_equal(workq_post(w.w_wq, &jobs[i].j_task), 0);
	gate_wait_blocked(&g, 1);
	assert_int_equal(pthread_create(&opener, NULL, late_opener, &g), 0);
	workq_free(w.w_wq);
	assert_int_equal(pthread_join(opener, NULL), 0);

	assert_int_equal(w.w_done, n);
	assert_int_equal(w.w_off_loop, 0);
	assert_int_equal(w.w_post_rc, -1);
	assert_int_equal(w.w_order[0], 0);
	assert_int_equal(jobs[0].j_ran, 1);
	assert_true(jobs[0].j_out == job_expect(jobs[0].j_in));
	for (i = 0; i < n; i++) {
		assert_int_equal(jobs[i].j_done, 1);
		assert_int_equal(jobs[i].j_worked, jobs[i].j_ran);
		cancelled += !jobs[i].j_ran;
	}
	assert_int_equal(cancelled, n - 1);
	free(jobs);
	gate_free(&g);
	event_base_free(base);
}

/* A pool stopped with nothing in it, and one with no worker ever used. */
static void
test_free_idle(void **state)
{
	struct event_base	*base;
	struct workq		*wq;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_non_null(wq = workq_new(base, 3, 8));
	workq_free(wq);
	workq_free(NULL);
	assert_null(workq_new(base, WORKQ_MAX_THREADS + 1, 8));
	assert_true(workq_online_cpus() >= 1);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_tasks),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_no_workers),
		cmocka_unit_test(test_full_queue_works_inline),
		cmocka_unit_test(test_shutdown_with_tasks_queued),
		cmocka_unit_test(test_free_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
