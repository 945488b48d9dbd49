/*
 * qroamctl map [-l ADDR:PORT] [-d DIR]: the live map of the deployment.
 * An HTTP server (libevent's evhttp, loopback by default) serving the
 * page's three static files, read once at start from DIR (by default
 * ../share/qroam/map beside the binary, or qroamctl/map in the source
 * tree for a binary in build/bin or build/asan/bin), and /map.json, built on each request
 * from what the poller (ctl_mappoll.c) last heard from every daemon.  Only
 * GET (and HEAD) of those four paths: anything else is 405 or 404.  The
 * map is one process that already knows every admin endpoint from
 * qroamctl's configuration, so the daemons need nothing new but their
 * JSON views, and a daemon that is down is simply shown as down.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "conf.h"
#include "log.h"

#include "ctl.h"
#include "ctl_map.h"

#define MAP_LISTEN_DEFAULT	"127.0.0.1:8470"
#define MAP_FILE_MAX		(1024 * 1024)

/* The page's files, read at start. */
static struct map_file {
	const char	*mf_path;	/* as requested */
	const char	*mf_name;	/* in DIR */
	const char	*mf_type;
	char		*mf_data;
	size_t		 mf_len;
} map_files[] = {
	{ "/", "index.html", "text/html; charset=utf-8", NULL, 0 },
	{ "/map.css", "map.css", "text/css; charset=utf-8", NULL, 0 },
	{ "/map.js", "map.js", "text/javascript; charset=utf-8", NULL, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

struct map_server {
	struct map		 ms_map;
	struct evhttp		*ms_http;
	struct event_base	*ms_base;
};

/* Read dir/name into f; 0 or -1 after a message. */
static int
map_read_file(const char *dir, struct map_file *f)
{
	char	 path[PATH_MAX];
	FILE	*fp;
	size_t	 n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, f->mf_name) >=
	    (int)sizeof(path)) {
		ctl_err("map: %s: path too long", dir);
		return -1;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		ctl_err("map: %s: %s", path, strerror(errno));
		return -1;
	}
	f->mf_data = xmalloc(MAP_FILE_MAX);
	n = fread(f->mf_data, 1, MAP_FILE_MAX, fp);
	if (ferror(fp) || n == MAP_FILE_MAX) {
		ctl_err("map: %s: cannot read it whole", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	f->mf_len = n;
	return 0;
}

/* The page's directory: -d, else beside the binary (installed or built). */
static int
map_find_dir(const char *given, char *out, size_t len)
{
	static const char *const rel[] = { "../share/qroam/map",
	    "../../qroamctl/map", "../../../qroamctl/map" };
	char		 exe[PATH_MAX], *slash;
	ssize_t		 n;
	size_t		 i;

	if (given != NULL) {
		snprintf(out, len, "%s", given);
		return 0;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return -1;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (snprintf(out, len, "%s/%s/index.html", exe, rel[i]) <
		    (int)len && access(out, R_OK) == 0 &&
		    snprintf(out, len, "%s/%s", exe, rel[i]) < (int)len)
			return 0;
	}
	return -1;
}

/* Answer req with code and body (may be NULL), as type. */
static void
map_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *data, size_t len)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*b;

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (data != NULL)
		evbuffer_add(b, data, len);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* GET /map.json. */
static void
map_json(struct map_server *ms, struct evhttp_request *req)
{
	json_t	*doc;
	char	*text;

	if ((doc = map_view(&ms->ms_map)) == NULL ||
	    (text = json_dumps(doc, JSON_COMPACT)) == NULL) {
		json_decref(doc);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	json_decref(doc);
	map_reply(req, 200, "OK", "application/json", text, strlen(text));
	free(text);
}

/* Every request: GET or HEAD of a known path, else 405 or 404. */
static void
map_request(struct evhttp_request *req, void *arg)
{
	struct map_server	*ms = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri != NULL ? evhttp_uri_get_path(uri) :
				    NULL;
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	struct map_file		*f;
	static const char	 e405[] = "{\"error\":\"only GET\"}\n";
	static const char	 e404[] = "{\"error\":\"unknown path\"}\n";

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		map_reply(req, 405, "Method Not Allowed", "application/json",
		    e405, sizeof(e405) - 1);
		return;
	}
	if (path == NULL)
		path = "";
	if (strcmp(path, "/map.json") == 0) {
		map_json(ms, req);
		return;
	}
	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (f = map_files; f->mf_path != NULL; f++)
		if (strcmp(f->mf_path, path) == 0) {
			map_reply(req, 200, "OK", f->mf_type, f->mf_data,
			    f->mf_len);
			return;
		}
	map_reply(req, 404, "Not Found", "application/json", e404,
	    sizeof(e404) - 1);
}

/* SIGINT, SIGTERM: stop serving. */
static void
map_signal(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopbreak(arg);
}

/* ADDR:PORT (or [ADDR]:PORT) with PORT 0..65535 (0: any free one). */
static int
map_hostport(const char *s, char *host, size_t len, uint16_t *port)
{
	const char	*colon = strrchr(s, ':');
	uint64_t	 v;
	size_t		 n;

	if (colon == NULL || conf_uint(colon + 1, 0, 65535, &v) == -1)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= len)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/* Listen on addr; print the address (with the port chosen for 0). */
static int
map_listen(struct map_server *ms, const char *addr)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_storage		 ss;
	socklen_t			 sl = sizeof(ss);
	char				 host[256];
	uint16_t			 port;

	if (map_hostport(addr, host, sizeof(host), &port) == -1)
		return ctl_usage("map: -l wants ADDR:PORT, not \"%s\"", addr);
	if ((ms->ms_http = evhttp_new(ms->ms_base)) == NULL)
		fatalx("evhttp_new");
	evhttp_set_timeout(ms->ms_http, 30);
	evhttp_set_max_headers_size(ms->ms_http, 16384);
	evhttp_set_max_body_size(ms->ms_http, 65536);
	evhttp_set_allowed_methods(ms->ms_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(ms->ms_http, map_request, ms);
	if ((bs = evhttp_bind_socket_with_handle(ms->ms_http, host,
	    port)) == NULL) {
		ctl_err("map: cannot listen on %s", addr);
		return CTL_FAIL;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	printf(strchr(host, ':') != NULL ? "map on http://[%s]:%u/\n" :
	    "map on http://%s:%u/\n", host, port);
	fflush(stdout);
	return CTL_OK;
}

/* Read the page's files from dir; 0 or -1. */
static int
map_load_files(const char *given)
{
	struct map_file	*f;
	char		 dir[PATH_MAX];

	if (map_find_dir(given, dir, sizeof(dir)) == -1) {
		ctl_err("map: no page found beside the binary; give -d DIR");
		return -1;
	}
	for (f = map_files; f->mf_path != NULL; f++)
		if (map_read_file(dir, f) == -1)
			return -1;
	return 0;
}

/* Serve until SIGINT or SIGTERM. */
static int
map_serve(struct ctl *c, struct map_server *ms, const char *listen)
{
	struct event	*sigint, *sigterm;
	int		 rc;

	ms->ms_base = c->c_base;
	if ((rc = map_listen(ms, listen)) != CTL_OK)
		return rc;
	if (map_poll_start(&ms->ms_map, c) == -1)
		return CTL_FAIL;
	sigint = evsignal_new(c->c_base, SIGINT, map_signal, c->c_base);
	sigterm = evsignal_new(c->c_base, SIGTERM, map_signal, c->c_base);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	event_base_dispatch(c->c_base);
	event_free(sigint);
	event_free(sigterm);
	return CTL_OK;
}

int
ctl_map(struct ctl *c, int argc, char **argv)
{
	struct map_server	 ms;
	struct map_file		*f;
	const char		*listen = MAP_LISTEN_DEFAULT, *dir = NULL;
	int			 ch, rc;

	optind = 1;
	while ((ch = getopt(argc, argv, "d:l:")) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		default:
			return ctl_usage("map [-l ADDR:PORT] [-d DIR]");
		}
	}
	if (optind != argc)
		return ctl_usage("map takes no argument besides -l and -d");
	memset(&ms, 0, sizeof(ms));
	if (c->c_ndaemons == 0) {
		ctl_err("map: %s lists no daemons", c->c_conffile);
		return CTL_FAIL;
	}
	if (c->c_topology != NULL) {
		if (topo_load(c->c_topology, &ms.ms_map.m_topo) == -1)
			return CTL_FAIL;
		ms.ms_map.m_has_topo = 1;
	}
	rc = map_load_files(dir) == -1 ? CTL_FAIL :
	    map_serve(c, &ms, listen);
	map_poll_stop(&ms.ms_map);
	if (ms.ms_http != NULL)
		evhttp_free(ms.ms_http);
	if (ms.ms_map.m_has_topo)
		topo_free(&ms.ms_map.m_topo);
	for (f = map_files; f->mf_path != NULL; f++) {
		free(f->mf_data);
		f->mf_data = NULL;
	}
	return rc;
}
