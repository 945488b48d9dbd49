/*
 * The health check and raw metrics of the admin endpoints, and the
 * operator actions: fill a chip store (F1) and register a vehicle (F2,
 * optionally as an operator rebind) through the vehicle library's
 * provisioning client, and switch the eavesdropper of a QKD link through
 * qkdd's link administration (HTTPS, mutual TLS, operator certificate).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "frame.h"
#include "ids.h"
#include "log.h"
#include "tls.h"
#include "topo.h"

#include "chip.h"
#include "provision.h"

#include "ctl.h"

#define CTL_FILL_MAX	1000000

int
ctl_health(struct ctl *c, int argc, char **argv)
{
	const struct ctl_daemon	**ds;
	struct ctl_fetch	 *cfs;
	json_t			 *all;
	const char		 *why;
	size_t			  i, n;
	int			  ok, rc = CTL_OK;

	if ((rc = ctl_select(c, argc, argv, &ds, &n)) != CTL_OK)
		return rc;
	cfs = xcalloc(n, sizeof(*cfs));
	for (i = 0; i < n; i++)
		ctl_fetch_init(&cfs[i], ds[i], "/healthz");
	if (ctl_fetch_run(c, cfs, n) == -1)
		fatalx("event_base");
	all = json_array();
	for (i = 0; i < n; i++) {
		ok = cfs[i].cf_code == 200 && cfs[i].cf_len >= 2 &&
		    strncmp(cfs[i].cf_data, "ok", 2) == 0;
		why = cfs[i].cf_code == 0 ? cfs[i].cf_err : ok ? NULL :
		    "unhealthy answer";
		if (!ok)
			rc = CTL_FAIL;
		if (c->c_json)
			json_array_append_new(all, json_pack("{s:s, s:b, s:i, "
			    "s:s*}", "name", ds[i]->cd_name, "healthy", ok,
			    "code", cfs[i].cf_code, "error", why));
		else if (ok)
			printf("%s ok\n", ds[i]->cd_name);
		else if (cfs[i].cf_code != 0)
			printf("%s unhealthy: HTTP %d\n", ds[i]->cd_name,
			    cfs[i].cf_code);
		else
			printf("%s down: %s\n", ds[i]->cd_name, why);
	}
	if (c->c_json)
		ctl_json_print(all);
	fflush(stdout);
	json_decref(all);
	ctl_fetch_clear(cfs, n);
	free(cfs);
	free(ds);
	return rc;
}

/* The labels of one exposition line ({k="v",...}) as an object. */
static const char *
ctl_metric_labels(const char *p, json_t *labels)
{
	char	name[128], val[512];
	size_t	n, v;

	while (*p != '}') {
		n = strcspn(p, "=");
		if (p[n] != '=' || p[n + 1] != '"' || n == 0 ||
		    n >= sizeof(name))
			return NULL;
		memcpy(name, p, n);
		name[n] = '\0';
		p += n + 2;
		for (v = 0; *p != '"'; p++) {
			if (*p == '\0' || v + 1 >= sizeof(val))
				return NULL;
			if (*p == '\\' && p[1] != '\0') {
				p++;
				val[v++] = *p == 'n' ? '\n' : *p;
			} else
				val[v++] = *p;
		}
		val[v] = '\0';
		json_object_set_new(labels, name, json_string(val));
		p++;
		if (*p == ',')
			p++;
	}
	return p + 1;
}

/* One sample line of the exposition text as {name, labels, value}. */
static json_t *
ctl_metric_sample(const char *line)
{
	json_t		*labels, *value;
	const char	*p;
	char		 name[256], *end;
	size_t		 n;
	double		 d;

	n = strcspn(line, "{ ");
	if (n == 0 || n >= sizeof(name) || line[n] == '\0')
		return NULL;
	memcpy(name, line, n);
	name[n] = '\0';
	labels = json_object();
	p = line + n;
	if (*p == '{' && (p = ctl_metric_labels(p + 1, labels)) == NULL) {
		json_decref(labels);
		return NULL;
	}
	while (*p == ' ')
		p++;
	errno = 0;
	d = strtod(p, &end);
	if (end == p || errno != 0 || (*end != '\0' && *end != ' ')) {
		json_decref(labels);
		return NULL;
	}
	/* JSON has no infinities: keep their exposition text. */
	if (isfinite(d))
		value = json_real(d);
	else
		value = json_stringn(p, (size_t)(end - p));
	return json_pack("{s:s, s:o, s:o}", "name", name, "labels", labels,
	    "value", value);
}

/* The exposition text as a JSON array of samples; -1 on a bad line. */
static int
ctl_metrics_json(char *text, const char *who)
{
	json_t	*all, *s;
	char	*line, *next;

	all = json_array();
	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '#' || *line == '\0')
			continue;
		if ((s = ctl_metric_sample(line)) == NULL) {
			ctl_err("%s: bad metrics line \"%.80s\"", who, line);
			json_decref(all);
			return -1;
		}
		json_array_append_new(all, s);
	}
	ctl_json_print(all);
	json_decref(all);
	return 0;
}

int
ctl_metrics(struct ctl *c, int argc, char **argv)
{
	const struct ctl_daemon	*d;
	struct ctl_fetch	 cf;
	int			 rc = CTL_FAIL;

	if (c->c_single && argc == 0)
		d = &c->c_daemons[0];
	else if (argc != 1 || c->c_single)
		return ctl_usage("metrics takes one daemon NAME (or -a alone)");
	else if ((d = ctl_daemon(c, argv[0])) == NULL)
		return ctl_usage("no daemon \"%s\" in %s", argv[0],
		    c->c_conffile);
	ctl_fetch_init(&cf, d, "/metrics");
	if (ctl_fetch_run(c, &cf, 1) == -1)
		fatalx("event_base");
	if (cf.cf_code == 0)
		ctl_err("%s: %s", d->cd_name, cf.cf_err);
	else if (cf.cf_code != 200)
		ctl_err("%s: HTTP %d for /metrics", d->cd_name, cf.cf_code);
	else if (c->c_json)
		rc = ctl_metrics_json(cf.cf_data, d->cd_name) == 0 ? CTL_OK :
		    CTL_FAIL;
	else {
		fwrite(cf.cf_data, 1, cf.cf_len, stdout);
		fflush(stdout);
		rc = CTL_OK;
	}
	ctl_fetch_clear(&cf, 1);
	return rc;
}

void
ctl_json_result(json_t *j)
{
	ctl_json_print(j);
	json_decref(j);
}

int
ctl_need_operator(const struct ctl *c)
{
	static const char *const names[] = { "topology", "ca", "cert", "key" };
	const char	*vals[4];
	size_t		 i;

	vals[0] = c->c_topology;
	vals[1] = c->c_ca;
	vals[2] = c->c_cert;
	vals[3] = c->c_key;
	for (i = 0; i < 4; i++) {
		if (vals[i] == NULL) {
			ctl_err("%s: no %s directive (operator actions need "
			    "topology, ca, cert and key)", c->c_conffile,
			    names[i]);
			return -1;
		}
	}
	return 0;
}

enum {
	CTL_OPT_REBIND = 256,
};

static const struct option ctl_prov_longopts[] = {
	{ "rebind", no_argument, NULL, CTL_OPT_REBIND },
	{ NULL, 0, NULL, 0 },
};

struct ctl_prov {
	const char	*p_store;
	const char	*p_vin;
	int		 p_rebind;
	uint32_t	 p_m;
};

/* Options of fill and register; -1 after a usage message. */
static int
ctl_prov_opts(int argc, char **argv, const char *optstr, struct ctl_prov *p)
{
	uint64_t	v;
	int		ch;

	memset(p, 0, sizeof(*p));
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, optstr, ctl_prov_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			p->p_store = optarg;
			break;
		case 'm':
			if (conf_uint(optarg, 1, CTL_FILL_MAX, &v) == -1) {
				ctl_usage("-m wants 1..%d keys", CTL_FILL_MAX);
				return -1;
			}
			p->p_m = (uint32_t)v;
			break;
		case 'V':
			p->p_vin = optarg;
			break;
		case CTL_OPT_REBIND:
			p->p_rebind = 1;
			break;
		default:
			ctl_usage("%s: bad option %s", argv[0],
			    argv[optind - 1]);
			return -1;
		}
	}
	if (optind != argc) {
		ctl_usage("%s: unexpected \"%s\"", argv[0], argv[optind]);
		return -1;
	}
	if (p->p_store == NULL) {
		ctl_usage("%s needs -s CHIPSTORE", argv[0]);
		return -1;
	}
	return 0;
}

/*
 * Run one provisioning exchange on the chip store of p with the operator
 * credential: fill when vin is NULL, else register.  Returns the vprov
 * result; *db stays open for the caller to read the result.
 */
static int
ctl_provision(struct ctl *c, const struct ctl_prov *p, sqlite3 **db,
    struct chip_info *ci)
{
	struct topo	 topo;
	struct vprov	 vp;
	int		 rc;

	memset(&topo, 0, sizeof(topo));
	if (topo_load(c->c_topology, &topo) == -1)
		return VPROV_ERROR;
	if ((*db = chip_open(p->p_store)) == NULL) {
		topo_free(&topo);
		return VPROV_ERROR;
	}
	memset(&vp, 0, sizeof(vp));
	vp.vp_topo = &topo;
	vp.vp_ca = c->c_ca;
	vp.vp_cert = c->c_cert;
	vp.vp_key = c->c_key;
	vp.vp_max_frame = FRAME_MAX_DEFAULT;
	vp.vp_timeout_ms = c->c_wait_ms;
	if (p->p_vin == NULL)
		rc = vprov_fill(&vp, *db, p->p_m, ci);
	else
		rc = vprov_register(&vp, *db, p->p_vin, p->p_rebind);
	topo_free(&topo);
	return rc;
}

int
ctl_fill(struct ctl *c, int argc, char **argv)
{
	struct ctl_prov		 p;
	struct chip_info	 ci;
	sqlite3			*db = NULL;
	int			 rc;

	if (ctl_prov_opts(argc, argv, "+s:m:", &p) == -1)
		return CTL_USAGE;
	if (ctl_need_operator(c) == -1)
		return CTL_FAIL;
	rc = ctl_provision(c, &p, &db, &ci);
	chip_close(db);
	if (rc != QROAM__STATUS_CODE__OK) {
		ctl_err("fill: %s", vprov_result_name(rc));
		return CTL_FAIL;
	}
	if (c->c_json)
		ctl_json_result(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}",
		    "result", "OK", "store", p.p_store, "chip_id",
		    ci.ci_chip_id, "m", (json_int_t)ci.ci_m, "k",
		    (json_int_t)ci.ci_k, "n", (json_int_t)ci.ci_n));
	else
		printf("filled %s: chip %s, %u keys\n", p.p_store,
		    ci.ci_chip_id, ci.ci_m);
	return CTL_OK;
}

int
ctl_register(struct ctl *c, int argc, char **argv)
{
	struct ctl_prov		 p;
	struct chip_info	 ci;
	struct chip_reg		 cr;
	sqlite3			*db = NULL;
	int			 rc;

	if (ctl_prov_opts(argc, argv, "+s:V:", &p) == -1)
		return CTL_USAGE;
	if (p.p_vin == NULL || !id_valid_vin(p.p_vin))
		return ctl_usage("register needs -V VIN (17 characters)");
	if (ctl_need_operator(c) == -1)
		return CTL_FAIL;
	rc = ctl_provision(c, &p, &db, &ci);
	memset(&cr, 0, sizeof(cr));
	if (rc == QROAM__STATUS_CODE__OK && chip_reg_load(db, &cr) != 1)
		rc = VPROV_ERROR;
	chip_close(db);
	if (rc != QROAM__STATUS_CODE__OK) {
		ctl_err("register%s %s: %s", p.p_rebind ? " --rebind" : "",
		    p.p_vin, vprov_result_name(rc));
		return CTL_FAIL;
	}
	if (c->c_json)
		ctl_json_result(json_pack("{s:s, s:s, s:s, s:s, s:b}",
		    "result", "OK", "store", p.p_store, "vehicle_id",
		    cr.cr_vid, "chip_id", cr.cr_chip_id, "rebind",
		    p.p_rebind));
	else
		printf("%s %s with chip %s\n", p.p_rebind ? "re-registered" :
		    "registered", cr.cr_vid, cr.cr_chip_id);
	chip_reg_clear(&cr);
	return CTL_OK;
}
