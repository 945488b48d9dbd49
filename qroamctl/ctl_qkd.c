/*
 * `eavesdrop LINK on|off|FRACTION`: the eavesdropper switch of a QKD link,
 * through qkdd's link administration on its KME port (topology `qkd`),
 * over mutual TLS with the operator credential:
 *
 *   GET  /admin/v1/links              to resolve a LINK written "A-B"
 *   POST /admin/v1/links/{a}/{b}      {"eavesdropper": F}, answers LINK
 *
 * LINK is "A/B", "A:B" or "A,B" (SAE ids, which hold none of these
 * characters), or "A-B" as /status/pools prints it, resolved against the
 * list since SAE ids may hold dashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ids.h"
#include "log.h"
#include "tls.h"
#include "topo.h"

#include "ctl.h"

struct ctl_qkd {
	struct ctl_daemon	 q_kme;
	SSL_CTX			*q_tls;
	char			 q_a[NAME_MAXLEN + 1];
	char			 q_b[NAME_MAXLEN + 1];
};

/* The KME endpoint of the topology and the operator's TLS context. */
static int
ctl_qkd_open(struct ctl *c, struct ctl_qkd *q)
{
	struct topo	topo;
	int		rc = -1;

	memset(&topo, 0, sizeof(topo));
	if (topo_load(c->c_topology, &topo) == -1)
		return -1;
	if (topo.t_qkd.ep_port == 0)
		ctl_err("%s: no qkd endpoint", c->c_topology);
	else if ((q->q_tls = tls_client_ctx(c->c_ca, c->c_cert,
	    c->c_key)) == NULL)
		ctl_err("cannot load the operator credential %s", c->c_cert);
	else {
		snprintf(q->q_kme.cd_name, sizeof(q->q_kme.cd_name), "qkdd");
		snprintf(q->q_kme.cd_host, sizeof(q->q_kme.cd_host), "%s",
		    topo.t_qkd.ep_host);
		q->q_kme.cd_port = topo.t_qkd.ep_port;
		rc = 0;
	}
	topo_free(&topo);
	return rc;
}

/* One HTTPS request to the KME: its JSON answer, or NULL after a message. */
static json_t *
ctl_qkd_call(struct ctl *c, struct ctl_qkd *q, const char *path,
    const char *body)
{
	struct ctl_fetch	 cf;
	json_t			*j;
	const char		*msg;
	char			 why[256];

	ctl_fetch_init(&cf, &q->q_kme, path);
	cf.cf_tls = q->q_tls;
	cf.cf_peer_role = "qkd";
	if (body != NULL) {
		cf.cf_method = CTL_POST;
		cf.cf_body = body;
	}
	if (ctl_fetch_run(c, &cf, 1) == -1)
		fatalx("event_base");
	if (cf.cf_code != 0 && cf.cf_code != 200) {
		j = json_loadb(cf.cf_data, cf.cf_len, 0, NULL);
		msg = json_string_value(json_object_get(j, "message"));
		ctl_err("qkdd %s:%u refused %s: HTTP %d%s%s",
		    q->q_kme.cd_host, q->q_kme.cd_port, path, cf.cf_code,
		    msg ? ": " : "", msg ? msg : "");
		json_decref(j);
		ctl_fetch_clear(&cf, 1);
		return NULL;
	}
	if ((j = ctl_fetch_json(&cf, why, sizeof(why))) == NULL)
		ctl_err("qkdd %s:%u: %s", q->q_kme.cd_host, q->q_kme.cd_port,
		    why);
	ctl_fetch_clear(&cf, 1);
	return j;
}

/* Split "A/B", "A:B" or "A,B"; 1 if LINK had such a form, 0 if not. */
static int
ctl_qkd_split(const char *link, struct ctl_qkd *q)
{
	size_t	n = strcspn(link, "/:,");

	if (link[n] == '\0')
		return 0;
	if (n == 0 || n > NAME_MAXLEN || strlen(link + n + 1) > NAME_MAXLEN)
		return -1;
	memcpy(q->q_a, link, n);
	q->q_a[n] = '\0';
	snprintf(q->q_b, sizeof(q->q_b), "%s", link + n + 1);
	return id_valid_name(q->q_a) && id_valid_name(q->q_b) ? 1 : -1;
}

/* Find "A-B" (either order) in the KME's list of links; 0 or -1. */
static int
ctl_qkd_resolve(struct ctl *c, struct ctl_qkd *q, const char *link)
{
	json_t		*all, *l;
	const char	*a, *b;
	char		 ab[2 * NAME_MAXLEN + 2], ba[2 * NAME_MAXLEN + 2];
	size_t		 i;
	int		 found = 0;

	if ((all = ctl_qkd_call(c, q, "/admin/v1/links", NULL)) == NULL)
		return -1;
	json_array_foreach(json_object_get(all, "links"), i, l) {
		a = json_string_value(json_object_get(l, "sae_a"));
		b = json_string_value(json_object_get(l, "sae_b"));
		if (a == NULL || b == NULL)
			continue;
		snprintf(ab, sizeof(ab), "%s-%s", a, b);
		snprintf(ba, sizeof(ba), "%s-%s", b, a);
		if (strcmp(link, ab) == 0 || strcmp(link, ba) == 0) {
			snprintf(q->q_a, sizeof(q->q_a), "%s", a);
			snprintf(q->q_b, sizeof(q->q_b), "%s", b);
			found = 1;
			break;
		}
	}
	json_decref(all);
	if (!found)
		ctl_err("qkdd has no link \"%s\" (write it SAE_A/SAE_B)", link);
	return found ? 0 : -1;
}

/* on, off or a fraction of intercepted qubits in 0..1; -1 if neither. */
static int
ctl_qkd_fraction(const char *s, double *f)
{
	int	on;

	if (conf_bool(s, &on) == 0) {
		*f = on ? 1.0 : 0.0;
		return 0;
	}
	return conf_double(s, 0.0, 1.0, f);
}

int
ctl_eavesdrop(struct ctl *c, int argc, char **argv)
{
	struct ctl_qkd	 q;
	json_t		*l, *body;
	char		 path[160], *text;
	double		 f, eve;
	int		 rc = CTL_FAIL, form;

	if (argc != 2)
		return ctl_usage("eavesdrop takes LINK and on|off");
	memset(&q, 0, sizeof(q));
	if ((form = ctl_qkd_split(argv[0], &q)) == -1)
		return ctl_usage("bad LINK \"%s\" (SAE_A/SAE_B)", argv[0]);
	if (ctl_qkd_fraction(argv[1], &f) == -1)
		return ctl_usage("eavesdrop wants on, off or a fraction 0..1, "
		    "not \"%s\"", argv[1]);
	if (ctl_need_operator(c) == -1 || ctl_qkd_open(c, &q) == -1)
		return CTL_FAIL;
	if (form == 1 || ctl_qkd_resolve(c, &q, argv[0]) == 0) {
		snprintf(path, sizeof(path), "/admin/v1/links/%s/%s", q.q_a,
		    q.q_b);
		body = json_pack("{s:f}", "eavesdropper", f);
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (text != NULL && (l = ctl_qkd_call(c, &q, path, text)) !=
		    NULL) {
			eve = json_number_value(json_object_get(l,
			    "eavesdropper"));
			if (c->c_json)
				ctl_json_print(l);
			else
				printf("link %s/%s: eavesdropper %s (%.2f of "
				    "the qubits)\n", q.q_a, q.q_b,
				    eve > 0 ? "on" : "off", eve);
			json_decref(l);
			rc = CTL_OK;
		}
		free(text);
	}
	SSL_CTX_free(q.q_tls);
	return rc;
}
