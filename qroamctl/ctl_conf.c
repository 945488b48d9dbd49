/*
 * The qroamctl configuration (conf.h syntax):
 *
 *   topology PATH		the deployment's topology (operator actions)
 *   ca PATH, cert PATH, key PATH	the operator credential (OU operator)
 *   admin NAME [HOST:]PORT	one admin endpoint to watch; a bare port
 *				is on 127.0.0.1
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

#include "ctl.h"

#define CTL_MAXDAEMONS	256

/* [HOST:]PORT into host and port; 0 or -1. */
static int
ctl_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	uint64_t	v;

	if (strchr(s, ':') == NULL) {
		if (conf_uint(s, 1, 65535, &v) == -1)
			return -1;
		snprintf(host, hostlen, "127.0.0.1");
		*port = (uint16_t)v;
		return 0;
	}
	if (conf_hostport(s, host, hostlen, port) == -1 || *port == 0)
		return -1;
	return 0;
}

/* A daemon name: what id_valid_name allows, and a few more characters. */
static int
ctl_valid_name(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n >= CTL_NAMEMAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-@") == n;
}

/* Append one daemon; 0 or -1 (too many). */
static int
ctl_add_daemon(struct ctl *c, const char *name, const char *host,
    uint16_t port)
{
	struct ctl_daemon	*d;

	if (c->c_ndaemons >= CTL_MAXDAEMONS)
		return -1;
	if (c->c_daemons == NULL)
		c->c_daemons = xcalloc(CTL_MAXDAEMONS, sizeof(*c->c_daemons));
	d = &c->c_daemons[c->c_ndaemons++];
	snprintf(d->cd_name, sizeof(d->cd_name), "%s", name);
	snprintf(d->cd_host, sizeof(d->cd_host), "%s", host);
	d->cd_port = port;
	return 0;
}

/* admin NAME [HOST:]PORT */
static int
ctl_conf_admin(struct ctl *c, const struct conf_line *cl)
{
	char		host[256];
	uint16_t	port;

	if (cl->cl_argc != 3) {
		conf_error(cl, "admin takes a NAME and [HOST:]PORT");
		return -1;
	}
	if (!ctl_valid_name(cl->cl_argv[1])) {
		conf_error(cl, "invalid daemon name \"%s\"", cl->cl_argv[1]);
		return -1;
	}
	if (ctl_daemon(c, cl->cl_argv[1]) != NULL) {
		conf_error(cl, "daemon \"%s\" is listed twice", cl->cl_argv[1]);
		return -1;
	}
	if (ctl_hostport(cl->cl_argv[2], host, sizeof(host), &port) == -1) {
		conf_error(cl, "admin wants [HOST:]PORT, PORT 1..65535, not "
		    "\"%s\"", cl->cl_argv[2]);
		return -1;
	}
	if (ctl_add_daemon(c, cl->cl_argv[1], host, port) == -1) {
		conf_error(cl, "more than %d admin lines", CTL_MAXDAEMONS);
		return -1;
	}
	return 0;
}

/* One directive of the configuration. */
static int
ctl_conf_line(void *arg, const struct conf_line *cl)
{
	struct ctl	*c = arg;
	const char	*d = cl->cl_argv[0];
	char		**slot;

	if (strcmp(d, "admin") == 0)
		return ctl_conf_admin(c, cl);
	if (strcmp(d, "topology") == 0)
		slot = &c->c_topology;
	else if (strcmp(d, "ca") == 0)
		slot = &c->c_ca;
	else if (strcmp(d, "cert") == 0)
		slot = &c->c_cert;
	else if (strcmp(d, "key") == 0)
		slot = &c->c_key;
	else {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if (*slot != NULL) {
		conf_error(cl, "%s is given twice", d);
		return -1;
	}
	*slot = xstrdup(cl->cl_argv[1]);
	return 0;
}

int
ctl_conf_load(struct ctl *c, const char *path)
{
	if (conf_parse_file(path, ctl_conf_line, c) != 0)
		return -1;
	return 0;
}

int
ctl_conf_single(struct ctl *c, const char *arg)
{
	char		host[256];
	uint16_t	port;

	if (ctl_hostport(arg, host, sizeof(host), &port) == -1)
		return -1;
	c->c_single = 1;
	return ctl_add_daemon(c, arg, host, port);
}

void
ctl_conf_free(struct ctl *c)
{
	free(c->c_topology);
	free(c->c_ca);
	free(c->c_cert);
	free(c->c_key);
	free(c->c_daemons);
	c->c_topology = c->c_ca = c->c_cert = c->c_key = NULL;
	c->c_daemons = NULL;
	c->c_ndaemons = 0;
}

const struct ctl_daemon *
ctl_daemon(const struct ctl *c, const char *name)
{
	size_t	i;

	for (i = 0; i < c->c_ndaemons; i++)
		if (strcmp(c->c_daemons[i].cd_name, name) == 0)
			return &c->c_daemons[i];
	return NULL;
}

int
ctl_select(const struct ctl *c, int argc, char **argv,
    const struct ctl_daemon ***out, size_t *n)
{
	const struct ctl_daemon	**v;
	size_t			  i;

	*out = NULL;
	*n = 0;
	if (argc == 0) {
		if (c->c_ndaemons == 0) {
			ctl_err("%s lists no daemons (admin NAME [HOST:]PORT)",
			    c->c_conffile);
			return CTL_FAIL;
		}
		v = xcalloc(c->c_ndaemons, sizeof(*v));
		for (i = 0; i < c->c_ndaemons; i++)
			v[i] = &c->c_daemons[i];
		*out = v;
		*n = c->c_ndaemons;
		return CTL_OK;
	}
	if (c->c_single) {
		return ctl_usage("-a names the daemon: no NAME after the "
		    "command");
	}
	v = xcalloc((size_t)argc, sizeof(*v));
	for (i = 0; i < (size_t)argc; i++) {
		if ((v[i] = ctl_daemon(c, argv[i])) == NULL) {
			free(v);
			return ctl_usage("no daemon \"%s\" in %s", argv[i],
			    c->c_conffile);
		}
	}
	*out = v;
	*n = (size_t)argc;
	return CTL_OK;
}
