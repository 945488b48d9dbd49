/*
 * qroamctl map, the poller: every second, a GET of each daemon's views on
 * one kept-alive connection per daemon, all asynchronous on the map's
 * event loop (a daemon that does not answer delays nobody, it is shown as
 * down), the answers kept as the daemon's latest snapshot.  Which views
 * are asked for depends on what /status says the daemon is: tspd its
 * handovers in flight and ended, vehicled its vehicles, qkdd its pools;
 * /metrics from every one for the counters.  Only GETs: the map changes
 * nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpc.h"
#include "log.h"

#include "ctl.h"
#include "ctl_map.h"

#define MAP_TIMEOUT_S	2
#define MAP_BODY_MAX	(8 * 1024 * 1024)

static const char *const map_paths[MV_COUNT] = {
	[MV_STATUS] = "/status",
	[MV_METRICS] = "/metrics",
	[MV_HANDOVERS] = "/status/handovers_out",
	[MV_ENDED] = "/status/handovers_ended",
	[MV_VEHICLES] = "/status/vehicles",
	[MV_POOLS] = "/status/pools",
};


uint64_t
map_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Add v to the counter name[key] of obj. */
static void
map_count_add(json_t *obj, const char *name, const char *key, double v)
{
	json_t	*o, *n;

	if ((o = json_object_get(obj, name)) == NULL) {
		json_object_set_new(obj, name, json_object());
		o = json_object_get(obj, name);
	}
	n = json_object_get(o, key);
	json_object_set_new(o, key, json_integer((json_int_t)v +
	    (n != NULL ? json_integer_value(n) : 0)));
}

/*
 * The counters the map shows from a Prometheus text: refusals by reason
 * (qroam_refusals_total{reason=...}) and handovers by result
 * (qroam_handovers_total{result=...}).
 */
static json_t *
map_metrics_parse(char *text)
{
	static const struct {
		const char	*name, *label, *as;
	} want[] = {
		{ "qroam_refusals_total{", "reason=\"", "refusals" },
		{ "qroam_handovers_total{", "result=\"", "handovers" },
	};
	json_t	*obj = json_object();
	char	*line, *save = NULL, *l, *q, *sp;
	size_t	 i;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			if (strncmp(line, want[i].name,
			    strlen(want[i].name)) != 0)
				continue;
			if ((l = strstr(line, want[i].label)) == NULL)
				break;
			l += strlen(want[i].label);
			if ((q = strchr(l, '"')) == NULL ||
			    (sp = strrchr(line, ' ')) == NULL || sp < q)
				break;
			*q = '\0';
			map_count_add(obj, want[i].as, l, strtod(sp + 1, NULL));
			break;
		}
	}
	return obj;
}

/* What a daemon's /status answer says it is, into md_kind. */
static void
map_kind(struct map_daemon *md, const json_t *st)
{
	const char	*s;

	if ((s = json_string_value(json_object_get(st, "daemon"))) != NULL)
		snprintf(md->md_kind, sizeof(md->md_kind), "%s", s);
	if ((s = json_string_value(json_object_get(st, "id"))) != NULL)
		snprintf(md->md_id, sizeof(md->md_id), "%s", s);
}

/* The answer of one view: the daemon's new snapshot of it. */
static void
map_answer(struct map_req *mr, struct evhttp_request *r)
{
	struct map_daemon	*md = mr->mr_md;
	struct evbuffer		*in;
	json_t			*j = NULL;
	char			*body;
	size_t			 n;
	int			 code;

	code = r != NULL ? evhttp_request_get_response_code(r) : 0;
	if (code != 200) {
		if (mr->mr_view == MV_STATUS) {
			if (code == 0)
				snprintf(md->md_err, sizeof(md->md_err),
				    "no answer");
			else
				snprintf(md->md_err, sizeof(md->md_err),
				    "HTTP %d", code);
			md->md_up = 0;
			map_daemon_clear(md);
		}
		return;
	}
	in = evhttp_request_get_input_buffer(r);
	n = evbuffer_get_length(in);
	if ((body = malloc(n + 1)) == NULL)
		return;
	evbuffer_remove(in, body, n);
	body[n] = '\0';
	if (mr->mr_view == MV_METRICS)
		j = map_metrics_parse(body);
	else
		j = json_loadb(body, n, 0, NULL);
	free(body);
	json_decref(md->md_views[mr->mr_view]);
	md->md_views[mr->mr_view] = j;
	if (mr->mr_view == MV_STATUS && j != NULL) {
		map_kind(md, j);
		md->md_up = 1;
		md->md_err[0] = '\0';
		md->md_seen_ms = map_now_ms();
	}
}

/* evhttp's request callback. */
static void
map_done(struct evhttp_request *r, void *arg)
{
	struct map_req	*mr = arg;

	mr->mr_md->md_pending--;
	map_answer(mr, r);
}

/* Queue a GET of view v on md's connection; 0 or -1. */
static int
map_get(struct map_daemon *md, enum map_view v)
{
	struct evhttp_request	*r;
	struct evkeyvalq	*h;
	struct map_req		*mr;

	mr = &md->md_reqs[v];
	mr->mr_md = md;
	mr->mr_view = v;
	if ((r = evhttp_request_new(map_done, mr)) == NULL)
		return -1;
	h = evhttp_request_get_output_headers(r);
	evhttp_add_header(h, "Host", md->md_d->cd_host);
	evhttp_add_header(h, "Accept", "application/json, text/plain");
	md->md_pending++;
	if (evhttp_make_request(md->md_conn, r, EVHTTP_REQ_GET,
	    map_paths[v]) == -1) {
		/* evhttp freed r without calling back. */
		md->md_pending--;
		return -1;
	}
	return 0;
}

/* The views to ask md for besides /status and /metrics. */
static void
map_poll_daemon(struct map_daemon *md)
{
	if (md->md_pending > 0)
		return;		/* the last round is still under way */
	if (map_get(md, MV_STATUS) == -1)
		return;
	map_get(md, MV_METRICS);
	if (strcmp(md->md_kind, "tspd") == 0) {
		map_get(md, MV_HANDOVERS);
		map_get(md, MV_ENDED);
	} else if (strcmp(md->md_kind, "vehicled") == 0)
		map_get(md, MV_VEHICLES);
	else if (strcmp(md->md_kind, "qkdd") == 0)
		map_get(md, MV_POOLS);
}

/* The poll timer: one round over every daemon. */
static void
map_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct map	*m = arg;
	size_t		 i;

	(void)fd;
	(void)ev;
	for (i = 0; i < m->m_ndaemons; i++)
		map_poll_daemon(&m->m_daemons[i]);
	m->m_rounds++;
}

void
map_daemon_clear(struct map_daemon *md)
{
	size_t	i;

	for (i = 0; i < MV_COUNT; i++) {
		json_decref(md->md_views[i]);
		md->md_views[i] = NULL;
	}
}

int
map_poll_start(struct map *m, struct ctl *c)
{
	struct timeval	 tv = { MAP_TIMEOUT_S, 0 }, every = { 1, 0 };
	struct map_daemon *md;
	size_t		 i;

	m->m_daemons = xcalloc(c->c_ndaemons + 1, sizeof(*m->m_daemons));
	m->m_ndaemons = c->c_ndaemons;
	for (i = 0; i < c->c_ndaemons; i++) {
		md = &m->m_daemons[i];
		md->md_d = &c->c_daemons[i];
		snprintf(md->md_err, sizeof(md->md_err), "not polled yet");
		if ((md->md_conn = httpc_connect(c->c_base, NULL,
		    md->md_d->cd_host, md->md_d->cd_port)) == NULL) {
			ctl_err("map: cannot set up a connection to %s",
			    md->md_d->cd_name);
			return -1;
		}
		evhttp_connection_set_retries(md->md_conn, 0);
		evhttp_connection_set_timeout_tv(md->md_conn, &tv);
		evhttp_connection_set_max_body_size(md->md_conn, MAP_BODY_MAX);
	}
	if ((m->m_tick = event_new(c->c_base, -1, EV_PERSIST, map_tick,
	    m)) == NULL)
		return -1;
	event_add(m->m_tick, &every);
	map_tick(-1, 0, m);
	return 0;
}

void
map_poll_stop(struct map *m)
{
	size_t	i;

	if (m->m_tick != NULL)
		event_free(m->m_tick);
	m->m_tick = NULL;
	for (i = 0; i < m->m_ndaemons; i++) {
		if (m->m_daemons[i].md_conn != NULL)
			evhttp_connection_free(m->m_daemons[i].md_conn);
		map_daemon_clear(&m->m_daemons[i]);
	}
	free(m->m_daemons);
	m->m_daemons = NULL;
	m->m_ndaemons = 0;
}
