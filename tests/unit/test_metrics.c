/*
 * Unit tests of the metrics registry, its text exposition, and the admin
 * endpoint served over real HTTP on loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "admin.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"

/* The exposition text of every metric, NUL-terminated, caller frees. */
static char *
render(void)
{
	struct evbuffer	*b;
	size_t		 n;
	char		*s;

	assert_non_null(b = evbuffer_new());
	assert_int_equal(metrics_render(b), 0);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_counter_gauge(void **state)
{
	struct metric	*c, *g;
	char		*t;

	(void)state;
	metrics_reset();
	c = metric_counter("t_events_total", "Events.", "kind");
	assert_ptr_equal(c, metric_counter("t_events_total", "Events.", "kind"));
	metric_inc(c, "a");
	metric_inc(c, "a");
	metric_add(c, "b", 5);
	g = metric_gauge("t_level", "Level.", NULL);
	metric_set(g, NULL, 2.5);
	assert_true(metric_value(c, "a") == 2);
	assert_true(metric_value(c, "b") == 5);
	assert_true(metric_value(c, "none") == 0);
	assert_true(metric_value(g, NULL) == 2.5);
	t = render();
	assert_non_null(strstr(t, "# HELP t_events_total Events.\n"
	    "# TYPE t_events_total counter\n"
	    "t_events_total{kind=\"a\"} 2\nt_events_total{kind=\"b\"} 5\n"));
	assert_non_null(strstr(t, "# TYPE t_level gauge\nt_level 2.5\n"));
	free(t);
	metrics_reset();
	assert_true(metric_value(c, "a") == 0);
}

static void
test_label_escaping_and_cap(void **state)
{
	struct metric	*c;
	char		 v[16];
	char		*t;
	int		 i;

	(void)state;
	metrics_reset();
	c = metric_counter("t_escape_total", "Escapes.", "v");
	metric_inc(c, "a\"b\\c\nd");
	t = render();
	assert_non_null(strstr(t, "t_escape_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
	free(t);
	/* A flood of label values ends in one "other" series. */
	for (i = 0; i < 500; i++) {
		snprintf(v, sizeof(v), "x%d", i);
		metric_inc(c, v);
	}
	assert_true(metric_value(c, "other") > 400);
	assert_true(metric_value(c, "x499") == 0);
}

static void
test_histogram(void **state)
{
	static const double	 b[] = { 0.1, 1 };
	struct metric		*h;
	char			*t;

	(void)state;
	metrics_reset();
	h = metric_histogram("t_latency_seconds", "Latency.", b, 2);
	metric_observe(h, 0.05);
	metric_observe(h, 0.1);
	metric_observe(h, 0.5);
	metric_observe(h, 7);
	assert_true(metric_value(h, NULL) == 4);
	t = render();
	assert_non_null(strstr(t, "# TYPE t_latency_seconds histogram\n"
	    "t_latency_seconds_bucket{le=\"0.10000000000000001\"} 2\n"
	    "t_latency_seconds_bucket{le=\"1\"} 3\n"
	    "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
	    "t_latency_seconds_sum 7.6500000000000004\n"
	    "t_latency_seconds_count 4\n"));
	free(t);
}

static int	collected;

/* Collector of the test: sets a gauge from a counter of calls. */
static void
collect_cb(void *arg)
{
	metric_set(arg, NULL, ++collected);
}

static void
test_collector(void **state)
{
	struct metric	*g;
	char		*t;

	(void)state;
	metrics_reset();
	collected = 0;
	g = metric_gauge("t_collected", "Collected.", NULL);
	metrics_collector_add(collect_cb, g);
	free(render());
	t = render();
	assert_non_null(strstr(t, "t_collected 2\n"));
	free(t);
	metrics_collector_remove(collect_cb, g);
	free(render());
	assert_int_equal(collected, 2);
}

struct fetch {
	struct event_base	*f_base;
	int			 f_code;
	char			 f_body[8192];
};

/* The reply of one GET: its code and body, then stop the loop. */
static void
fetch_done(struct evhttp_request *req, void *arg)
{
	struct fetch	*f = arg;
	struct evbuffer	*b;
	size_t		 n;

	f->f_code = req != NULL ? evhttp_request_get_response_code(req) : -1;
	if (req != NULL) {
		b = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(b);
		if (n >= sizeof(f->f_body))
			n = sizeof(f->f_body) - 1;
		evbuffer_remove(b, f->f_body, n);
		f->f_body[n] = '\0';
	}
	event_base_loopexit(f->f_base, NULL);
}

/* GET path from 127.0.0.1:port with libevent's HTTP client. */
static void
fetch(struct event_base *base, uint16_t port, int method, const char *path,
    struct fetch *f)
{
	struct evhttp_connection	*hc;
	struct evhttp_request		*req;

	memset(f, 0, sizeof(*f));
	f->f_base = base;
	assert_non_null(hc = evhttp_connection_base_new(base, NULL, "127.0.0.1",
	    port));
	assert_non_null(req = evhttp_request_new(fetch_done, f));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "localhost");
	assert_int_equal(evhttp_make_request(hc, req, method, path), 0);
	event_base_dispatch(base);
	evhttp_connection_free(hc);
}

/* Status callback of the test: a summary field and one view. */
static json_t *
status_cb(void *arg, const char *what, json_t *obj)
{
	(void)arg;
	if (what == NULL) {
		json_object_set_new(obj, "sessions", json_integer(3));
		return obj;
	}
	if (strcmp(what, "sessions") == 0)
		return json_pack("[{s:s}]", "vehicle_id", "V1");
	return NULL;
}

static void
test_admin_http(void **state)
{
	struct event_base	*base;
	struct admin		*a;
	struct fetch		 f;
	uint16_t		 port;
	int			 i;

	(void)state;
	metrics_reset();
	assert_non_null(base = event_base_new());
	/* Find a free port: try a few in a range tests do not use. */
	a = NULL;
	for (i = 0; i < 50 && a == NULL; i++) {
		port = (uint16_t)(40000 + (getpid() * 7 + i * 13) % 9000);
		a = admin_new(base, "127.0.0.1", port, "testd", "t-1",
		    status_cb, NULL);
	}
	assert_non_null(a);
	fetch(base, port, EVHTTP_REQ_GET, "/healthz", &f);
	assert_int_equal(f.f_code, 200);
	assert_string_equal(f.f_body, "ok\n");
	fetch(base, port, EVHTTP_REQ_GET, "/status", &f);
	assert_int_equal(f.f_code, 200);
	assert_non_null(strstr(f.f_body, "\"daemon\":\"testd\""));
	assert_non_null(strstr(f.f_body, "\"id\":\"t-1\""));
	assert_non_null(strstr(f.f_body, "\"sessions\":3"));
	fetch(base, port, EVHTTP_REQ_GET, "/status/sessions", &f);
	assert_int_equal(f.f_code, 200);
	assert_string_equal(f.f_body, "[{\"vehicle_id\":\"V1\"}]\n");
	fetch(base, port, EVHTTP_REQ_GET, "/status/keys", &f);
	assert_int_equal(f.f_code, 404);
	fetch(base, port, EVHTTP_REQ_GET, "/status/../x", &f);
	assert_int_equal(f.f_code, 404);
	fetch(base, port, EVHTTP_REQ_GET, "/nothing", &f);
	assert_int_equal(f.f_code, 404);
	fetch(base, port, EVHTTP_REQ_POST, "/metrics", &f);
	assert_int_equal(f.f_code, 405);
	fetch(base, port, EVHTTP_REQ_GET, "/metrics", &f);
	assert_int_equal(f.f_code, 200);
	assert_non_null(strstr(f.f_body,
	    "qroam_admin_requests_total{path=\"status\"} 4\n"));
	admin_free(a);
	/* Port 0: no endpoint, a handle all the same. */
	assert_non_null(a = admin_new(base, "127.0.0.1", 0, "testd", NULL,
	    NULL, NULL));
	admin_free(a);
	event_base_free(base);
}

static void
test_admin_directive(void **state)
{
	struct cfg_common	cc;
	struct conf_line	cl;

	(void)state;
	cfg_common_init(&cc);
	memset(&cl, 0, sizeof(cl));
	cl.cl_file = "x.conf";
	cl.cl_line = 3;
	cl.cl_argc = 2;
	cl.cl_argv[0] = "admin";
	cl.cl_argv[1] = "9100";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	assert_string_equal(cc.cc_admin_host, "127.0.0.1");
	assert_int_equal(cc.cc_admin_port, 9100);
	cl.cl_argv[1] = "[::1]:9200";
	assert_int_equal(cfg_common_line(&cc, &cl), 1);
	assert_string_equal(cc.cc_admin_host, "::1");
	assert_int_equal(cc.cc_admin_port, 9200);
	cl.cl_argv[1] = "70000";
	log_init("test", 0);
	assert_int_equal(cfg_common_line(&cc, &cl), -1);
	cl.cl_argv[1] = "host:0";
	assert_int_equal(cfg_common_line(&cc, &cl), -1);
	cfg_common_free(&cc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_label_escaping_and_cap),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_collector),
		cmocka_unit_test(test_admin_http),
		cmocka_unit_test(test_admin_directive),
	};

	log_init("test_metrics", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
