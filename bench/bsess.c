/*
 * qbench sessions: N vehicles, one connection each, authenticate at TSP A
 * (their M4s all in flight at once) and prepare their M3 (chip key
 * destroyed, K1 wrapped: the vehicle's work, not timed).  Then every M3
 * leaves at once and the rate is N over the time until the last first
 * ServiceResponse arrived: session establishments per second, each
 * committed by the TSP before it answers.  With -p the TSP's resident
 * set is read before, with half and with all N sessions held, which gives
 * the memory one more authenticated session costs it.
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "qbench.h"

/* VmRSS of process pid in KiB, or -1. */
static long
qb_rss_kib(int pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 kib = -1;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Room for n connections: the soft descriptor limit raised to the hard. */
static void
qb_nofile(size_t n)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Connect, authenticate and prepare the M3 of n vehicles; the number of
 * vehicles ready (all of them, or the command fails).
 */
static size_t
qb_sess_ready(struct qbench *q, const struct endpoint *ep, struct bveh *v,
    struct bconn *bc, uint8_t (*nonce)[MSG_AUTH_NONCELEN], size_t n)
{
	struct frame	f;
	char		path[1024];
	size_t		i, ok = 0;

	for (i = 0; i < n; i++) {
		qb_store_path(q, q->q_first + (uint32_t)i, path, sizeof(path));
		if (bveh_load(&v[i], path) == -1 || bconn_open(&bc[i], ep) == -1 ||
		    bveh_queue_m4(&v[i], &bc[i], q->q_tsp_a, 1, nonce[i]) == -1 ||
		    bconn_flush(&bc[i]) == -1)
			return i;
	}
	for (i = 0; i < n; i++) {
		if (bconn_recv(&bc[i], &f, QB_WAIT_MS) != 1)
			break;
		ok += bveh_auth_ok(&v[i], &f, q->q_tsp_a, nonce[i]);
		frame_release(&f);
	}
	if (ok < n)
		return ok;
	for (i = 0; i < n; i++)
		if (bveh_m3_prepare(&v[i], q->q_tsp_a) == -1)
			return i;
	return n;
}

/*
 * Bring vehicles [from, to) to an established session: ready them, then
 * send their M3s at once.  The sessions established; *us the time from
 * the first M3 sent to the last reply.
 */
static size_t
qb_sess_batch(struct qbench *q, const struct endpoint *ep, struct bveh *v,
    struct bconn *bc, uint8_t (*nonce)[MSG_AUTH_NONCELEN], size_t from,
    size_t to, double *us)
{
	struct qbench	sub = *q;
	size_t		i, ok = 0, n = to - from;
	double		t0;

	*us = 0;
	sub.q_first = q->q_first + (uint32_t)from;
	if (qb_sess_ready(&sub, ep, v + from, bc + from, nonce + from, n) != n)
		return 0;
	t0 = qb_now_us();
	for (i = from; i < to; i++)
		if (bveh_m3_send(&v[i], &bc[i], q->q_tsp_a) == -1)
			break;
	for (i = from; i < to; i++)
		if (bveh_m3_recv(&v[i], &bc[i], q->q_tsp_a) == 0)
			ok++;
	*us = qb_now_us() - t0;
	return ok;
}

/*
 * sessions: the vehicles in two halves, each readied and then sent its
 * M3s at once.  The rate is the sessions over the two bursts' time; the
 * memory per session is the growth of the TSP's RSS from the first half
 * held to both held (what one more session costs, without the start-up
 * costs that the first sessions pay: page cache, thread arenas), beside
 * the growth from before the first connection.
 */
int
qb_cmd_sessions(struct qbench *q)
{
	const struct endpoint	 *ep;
	struct bveh		 *v;
	struct bconn		 *bc;
	uint8_t			(*nonce)[MSG_AUTH_NONCELEN];
	size_t			  i, n = q->q_count ? q->q_count : 100, h, ok;
	long			  rss0, rss1, rss2;
	double			  us1, us2;

	if ((ep = qb_vehicle_ep(q, q->q_tsp_a)) == NULL || n < 2)
		return result_print(QB_LOCAL, "ERROR", "reason=setup");
	qb_nofile(n);
	v = xcalloc(n, sizeof(*v));
	bc = xcalloc(n, sizeof(*bc));
	nonce = xcalloc(n, sizeof(*nonce));
	for (i = 0; i < n; i++)
		bc[i].bc_fd = -1;
	h = n / 2;
	rss0 = qb_rss_kib(q->q_pid);
	ok = qb_sess_batch(q, ep, v, bc, nonce, 0, h, &us1);
	rss1 = qb_rss_kib(q->q_pid);
	if (ok == h)
		ok += qb_sess_batch(q, ep, v, bc, nonce, h, n, &us2);
	else
		us2 = 0;
	rss2 = qb_rss_kib(q->q_pid);
	for (i = 0; i < n; i++) {
		bconn_close(&bc[i]);
		bveh_close(&v[i]);
	}
	free(nonce);
	free(bc);
	free(v);
	return result_print(QB_RAN, ok == n ? "OK" : "FAILED", "vehicles=%zu"
	    " sessions=%zu seconds=%.3f per_second=%.1f rss_kib_before=%ld"
	    " rss_kib_half=%ld rss_kib_held=%ld bytes_per_session=%.0f"
	    " bytes_per_session_from_start=%.0f", n, ok, (us1 + us2) / 1e6,
	    us1 + us2 > 0 ? (double)ok / ((us1 + us2) / 1e6) : 0.0, rss0, rss1,
	    rss2, rss1 >= 0 && rss2 >= 0 && ok == n ?
	    (double)(rss2 - rss1) * 1024.0 / (double)(n - h) : -1.0,
	    rss0 >= 0 && rss2 >= 0 && ok == n ?
	    (double)(rss2 - rss0) * 1024.0 / (double)n : -1.0);
}
