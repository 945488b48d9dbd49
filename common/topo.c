/*
 * Topology file loading: every endpoint and region of the deployment,
 * parsed completely and checked before it is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ids.h"
#include "log.h"
#include "topo.h"

/* What the parser works on: the topology and the ids of rejected tsp lines. */
struct topo_parse {
	struct topo	*tp_topo;
	char		 tp_bad[TOPO_MAXTSP][33];
	size_t		 tp_nbad;
};

static struct topo_tsp *
topo_find(struct topo *t, const char *id)
{
	size_t	i;

	for (i = 0; i < t->t_ntsps; i++)
		if (strcmp(t->t_tsps[i].tt_id, id) == 0)
			return &t->t_tsps[i];
	return NULL;
}

static int
topo_endpoint(const struct conf_line *cl, const char *s, struct endpoint *ep)
{
	if (conf_hostport(s, ep->ep_host, sizeof(ep->ep_host), &ep->ep_port) == -1) {
		conf_error(cl, "bad address \"%s\" (want HOST:PORT)", s);
		return -1;
	}
	return 0;
}

/*
 * Remember the id of a rejected tsp line so that its region line does not
 * report the same mistake again.
 */
static void
topo_reject_tsp(struct topo_parse *tp, const struct conf_line *cl)
{
	if (cl->cl_argc < 2 || tp->tp_nbad == TOPO_MAXTSP ||
	    strlen(cl->cl_argv[1]) >= sizeof(tp->tp_bad[0]))
		return;
	snprintf(tp->tp_bad[tp->tp_nbad++], sizeof(tp->tp_bad[0]), "%s",
	    cl->cl_argv[1]);
}

/* 1 if id is that of a rejected tsp line. */
static int
topo_rejected(const struct topo_parse *tp, const char *id)
{
	size_t	i;

	for (i = 0; i < tp->tp_nbad; i++)
		if (strcmp(tp->tp_bad[i], id) == 0)
			return 1;
	return 0;
}

/* tsp ID vehicle HOST:PORT provision HOST:PORT */
static int
topo_line_tsp(struct topo *t, const struct conf_line *cl)
{
	struct topo_tsp	*tt;
	int		 i;

	if (cl->cl_argc < 2 || !id_valid_name(cl->cl_argv[1])) {
		conf_error(cl, "tsp needs a valid id ([a-z0-9._-]{1,32})");
		return -1;
	}
	if (topo_find(t, cl->cl_argv[1]) != NULL) {
		conf_error(cl, "duplicate tsp \"%s\"", cl->cl_argv[1]);
		return -1;
	}
	if (t->t_ntsps == TOPO_MAXTSP) {
		conf_error(cl, "too many tsps (max %d)", TOPO_MAXTSP);
		return -1;
	}
	tt = &t->t_tsps[t->t_ntsps];
	memset(tt, 0, sizeof(*tt));
	snprintf(tt->tt_id, sizeof(tt->tt_id), "%s", cl->cl_argv[1]);
	if ((cl->cl_argc - 2) % 2 != 0) {
		conf_error(cl, "tsp: expected \"vehicle HOST:PORT provision HOST:PORT\"");
		return -1;
	}
	for (i = 2; i < cl->cl_argc; i += 2) {
		if (strcmp(cl->cl_argv[i], "vehicle") == 0) {
			if (topo_endpoint(cl, cl->cl_argv[i + 1], &tt->tt_vehicle) == -1)
				return -1;
		} else if (strcmp(cl->cl_argv[i], "provision") == 0) {
			if (topo_endpoint(cl, cl->cl_argv[i + 1], &tt->tt_provision) == -1)
				return -1;
		} else {
			conf_error(cl, "tsp: unknown endpoint \"%s\"", cl->cl_argv[i]);
			return -1;
		}
	}
	if (tt->tt_vehicle.ep_port == 0 || tt->tt_provision.ep_port == 0) {
		conf_error(cl, "tsp %s needs both vehicle and provision addresses",
		    tt->tt_id);
		return -1;
	}
	t->t_ntsps++;
	return 0;
}

/* region ID LAT,LON LAT,LON LAT,LON ... */
static int
topo_line_region(struct topo_parse *tp, const struct conf_line *cl)
{
	struct topo_tsp	*tt;
	struct geo_point *pts;
	char		 buf[64], *comma;
	int		 i;

	if (cl->cl_argc < 5) {
		conf_error(cl, "region needs a tsp id and at least 3 LAT,LON points");
		return -1;
	}
	if ((tt = topo_find(tp->tp_topo, cl->cl_argv[1])) == NULL) {
		if (topo_rejected(tp, cl->cl_argv[1]))
			return 0;
		conf_error(cl, "region for unknown tsp \"%s\"", cl->cl_argv[1]);
		return -1;
	}
	if (tt->tt_region != NULL) {
		conf_error(cl, "duplicate region for tsp \"%s\"", tt->tt_id);
		return -1;
	}
	pts = xcalloc(cl->cl_argc - 2, sizeof(*pts));
	for (i = 2; i < cl->cl_argc; i++) {
		snprintf(buf, sizeof(buf), "%s", cl->cl_argv[i]);
		if ((comma = strchr(buf, ',')) == NULL)
			goto bad;
		*comma = '\0';
		if (conf_double(buf, -90, 90, &pts[i - 2].gp_lat) == -1 ||
		    conf_double(comma + 1, -180, 180, &pts[i - 2].gp_lon) == -1)
			goto bad;
	}
	tt->tt_region = pts;
	tt->tt_nregion = cl->cl_argc - 2;
	return 0;
 bad:
	conf_error(cl, "bad point \"%s\" (want LAT,LON in degrees)", cl->cl_argv[i]);
	free(pts);
	return -1;
}

/*
 * The endpoint of t named filler, registrar, sched, qkd, kmp or kmp_tls,
 * else NULL.
 */
static struct endpoint *
topo_role(struct topo *t, const char *role)
{
	if (strcmp(role, "filler") == 0)
		return &t->t_filler;
	if (strcmp(role, "registrar") == 0)
		return &t->t_registrar;
	if (strcmp(role, "sched") == 0)
		return &t->t_sched;
	if (strcmp(role, "qkd") == 0)
		return &t->t_qkd;
	if (strcmp(role, "kmp") == 0)
		return &t->t_kmp;
	if (strcmp(role, "kmp_tls") == 0)
		return &t->t_kmp_tls;
	return NULL;
}

static int
topo_line(void *arg, const struct conf_line *cl)
{
	struct topo_parse *tp = arg;
	const char	*d = cl->cl_argv[0];
	struct endpoint	*ep;

	if (strcmp(d, "tsp") == 0) {
		if (topo_line_tsp(tp->tp_topo, cl) == 0)
			return 0;
		topo_reject_tsp(tp, cl);
		return -1;
	}
	if (strcmp(d, "region") == 0)
		return topo_line_region(tp, cl);
	if ((ep = topo_role(tp->tp_topo, d)) == NULL) {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one HOST:PORT", d);
		return -1;
	}
	return topo_endpoint(cl, cl->cl_argv[1], ep);
}

int
topo_load(const char *path, struct topo *t)
{
	struct topo_parse	*tp;
	size_t			 i;
	int			 errors;

	memset(t, 0, sizeof(*t));
	tp = xcalloc(1, sizeof(*tp));
	tp->tp_topo = t;
	errors = conf_parse_file(path, topo_line, tp);
	free(tp);
	for (i = 0; i < t->t_ntsps; i++) {
		if (t->t_tsps[i].tt_region == NULL) {
			fprintf(stderr, "%s: tsp %s has no region\n", path,
			    t->t_tsps[i].tt_id);
			errors++;
		}
	}
	if (errors) {
		topo_free(t);
		return -1;
	}
	return 0;
}

int
topo_need(const struct topo *t, const char *path, const char *role)
{
	const struct endpoint	*ep;

	ep = topo_role((struct topo *)t, role);
	if (ep != NULL && ep->ep_port != 0)
		return 0;
	fprintf(stderr, "%s: no %s endpoint\n", path, role);
	return -1;
}

void
topo_free(struct topo *t)
{
	size_t	i;

	for (i = 0; i < t->t_ntsps; i++)
		free(t->t_tsps[i].tt_region);
	memset(t, 0, sizeof(*t));
}

const struct topo_tsp *
topo_tsp(const struct topo *t, const char *id)
{
	return topo_find((struct topo *)t, id);
}

const struct topo_tsp *
topo_tsp_at(const struct topo *t, struct geo_point p)
{
	size_t	i;

	for (i = 0; i < t->t_ntsps; i++)
		if (geo_contains(t->t_tsps[i].tt_region, t->t_tsps[i].tt_nregion, p))
			return &t->t_tsps[i];
	return NULL;
}

int
topo_endpoint_differs(const struct endpoint *a, const struct endpoint *b)
{
	return a->ep_port != b->ep_port || strcmp(a->ep_host, b->ep_host) != 0;
}

/* The first part in which two TSPs with the same id differ, or NULL. */
static const char *
topo_tsp_differs(const struct topo_tsp *x, const struct topo_tsp *y)
{
	if (topo_endpoint_differs(&x->tt_vehicle, &y->tt_vehicle))
		return "vehicle address";
	if (topo_endpoint_differs(&x->tt_provision, &y->tt_provision))
		return "provision address";
	if (x->tt_nregion != y->tt_nregion || (x->tt_nregion > 0 &&
	    memcmp(x->tt_region, y->tt_region,
	    x->tt_nregion * sizeof(*x->tt_region)) != 0))
		return "region";
	return NULL;
}

const char *
topo_differs(const struct topo *a, const struct topo *b, char *buf,
    size_t len)
{
	const struct {
		const char		*name;
		const struct endpoint	*a, *b;
	} ep[] = {
		{ "filler", &a->t_filler, &b->t_filler },
		{ "registrar", &a->t_registrar, &b->t_registrar },
		{ "sched", &a->t_sched, &b->t_sched },
		{ "qkd", &a->t_qkd, &b->t_qkd },
		{ "kmp", &a->t_kmp, &b->t_kmp },
		{ "kmp_tls", &a->t_kmp_tls, &b->t_kmp_tls },
	};
	const char	*what;
	size_t		 i;

	for (i = 0; i < sizeof(ep) / sizeof(ep[0]); i++) {
		if (topo_endpoint_differs(ep[i].a, ep[i].b)) {
			snprintf(buf, len, "the %s address", ep[i].name);
			return buf;
		}
	}
	if (a->t_ntsps != b->t_ntsps) {
		snprintf(buf, len, "the tsp list");
		return buf;
	}
	for (i = 0; i < a->t_ntsps; i++) {
		if (strcmp(a->t_tsps[i].tt_id, b->t_tsps[i].tt_id) != 0) {
			snprintf(buf, len, "the tsp list");
			return buf;
		}
		if ((what = topo_tsp_differs(&a->t_tsps[i],
		    &b->t_tsps[i])) != NULL) {
			snprintf(buf, len, "the %s of tsp %s", what,
			    a->t_tsps[i].tt_id);
			return buf;
		}
	}
	return NULL;
}

int
topo_reload_restart_only(const struct topo *run, const struct topo *next)
{
	char	buf[96];

	if (topo_differs(run, next, buf, sizeof(buf)) == NULL)
		return 0;
	log_warnx("reload: the contents of the topology changed; they take "
	    "effect on restart (first change: %s)", buf);
	return 1;
}
