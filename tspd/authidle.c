/*
 * F8 without a Bye: a vehicle that lost power keeps its authentication
 * only until its session has been idle for auth_idle.  An M3 after that is
 * refused (the store's tspdb_auth_get decides it); the rows are swept here
 * every quarter of auth_idle (1 s to 1 min) by a store request like any
 * other, so the sweep never waits on the loop.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "store.h"

#include "tspd.h"

#define AUTHIDLE_MIN_MS		1000
#define AUTHIDLE_MAX_MS		60000

struct tspd_authidle {
	struct tspd		*ai_env;	/* NULL once freed in flight */
	struct event		*ai_ev;
	struct tspdb_req	 ai_rq;
	uint64_t		 ai_n;
	int			 ai_busy;
	struct metric		*ai_expired;
};

uint64_t
tspd_auth_since(const struct tspd *env, uint64_t now_ms)
{
	uint64_t	 idle = env->t_conf.tc_auth_idle_ms;

	if (idle == 0)
		return 0;
	return now_ms > idle ? now_ms - idle : 1;
}

static void
authidle_arm(struct tspd_authidle *ai)
{
	uint64_t	 ms = ai->ai_env->t_conf.tc_auth_idle_ms / 4;
	struct timeval	 tv;

	if (ms < AUTHIDLE_MIN_MS)
		ms = AUTHIDLE_MIN_MS;
	if (ms > AUTHIDLE_MAX_MS)
		ms = AUTHIDLE_MAX_MS;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ai->ai_ev, &tv);
}

/* The store swept: count what expired. */
static void
authidle_swept(struct tspdb_req *rq)
{
	struct tspd_authidle	*ai = rq->rq_arg;

	ai->ai_busy = 0;
	if (ai->ai_env == NULL) {
		free(ai);
		return;
	}
	if (rq->rq_result != TSPDB_OK)
		log_warnx("auth_idle: the sweep of idle authentications failed");
	else if (ai->ai_n > 0) {
		log_info("auth_idle: %llu idle authentications expired",
		    (unsigned long long)ai->ai_n);
		metric_add(ai->ai_expired, NULL, (double)ai->ai_n);
	}
	authidle_arm(ai);
}

static void
authidle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tspd_authidle	*ai = arg;
	uint64_t		 since;

	(void)fd;
	(void)ev;
	since = tspd_auth_since(ai->ai_env, store_now_ms());
	if (since == 0 || ai->ai_busy) {
		authidle_arm(ai);	/* auth_idle 0: look again later */
		return;
	}
	ai->ai_busy = 1;
	ai->ai_n = 0;
	tspdb_req_init(&ai->ai_rq, authidle_swept, ai);
	tspdb_auth_expire(ai->ai_env->t_db, since, &ai->ai_n, &ai->ai_rq);
}

void
tspd_authidle_init(struct tspd *env)
{
	struct tspd_authidle	*ai;

	if ((ai = calloc(1, sizeof(*ai))) == NULL ||
	    (ai->ai_ev = evtimer_new(env->t_base, authidle_cb, ai)) == NULL)
		fatalx("auth_idle: out of memory");
	ai->ai_env = env;
	ai->ai_expired = metric_counter("qroam_auth_expired_total",
	    "Authentications expired after auth_idle without use (F8 "
	    "without a Bye).", NULL);
	metric_add(ai->ai_expired, NULL, 0);
	env->t_idle = ai;
	authidle_arm(ai);
}

void
tspd_authidle_free(struct tspd *env)
{
	struct tspd_authidle	*ai = env->t_idle;

	if (ai == NULL)
		return;
	env->t_idle = NULL;
	event_free(ai->ai_ev);
	ai->ai_ev = NULL;
	if (ai->ai_busy)
		ai->ai_env = NULL;	/* authidle_swept frees it */
	else
		free(ai);
}
