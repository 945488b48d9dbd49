/*
 * Line-oriented configuration parsing shared by every daemon and the
 * topology file.  The whole file is read and every error reported before
 * the caller decides; nothing is applied by this module.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "frame.h"
#include "ids.h"
#include "log.h"

#define CONF_LINEMAX	4096

void
conf_error(const struct conf_line *cl, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "%s:%d: ", cl->cl_file, cl->cl_line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Split line into words in place; returns -1 on too many words. */
static int
conf_split(char *line, struct conf_line *cl)
{
	char	*p = line;

	cl->cl_argc = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0' || *p == '#')
			return 0;
		if (cl->cl_argc == CONF_MAXARGS)
			return -1;
		cl->cl_argv[cl->cl_argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' &&
		    *p != '\n' && *p != '#')
			p++;
		if (*p == '#') {
			*p = '\0';
			return 0;
		}
		if (*p)
			*p++ = '\0';
	}
}

int
conf_parse_file(const char *path, conf_cb cb, void *arg)
{
	FILE			*fp;
	char			 line[CONF_LINEMAX];
	struct conf_line	 cl;
	int			 errors = 0;
	size_t			 len;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	memset(&cl, 0, sizeof(cl));
	cl.cl_file = path;
	while (fgets(line, sizeof(line), fp) != NULL) {
		cl.cl_line++;
		len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			conf_error(&cl, "line too long");
			errors++;
			while (fgets(line, sizeof(line), fp) != NULL &&
			    line[0] != '\0' && line[strlen(line) - 1] != '\n')
				;
			continue;
		}
		if (conf_split(line, &cl) == -1) {
			conf_error(&cl, "too many words");
			errors++;
			continue;
		}
		if (cl.cl_argc > 0 && cb(arg, &cl) == -1)
			errors++;
	}
	if (ferror(fp)) {
		fprintf(stderr, "%s: read error\n", path);
		errors++;
	}
	fclose(fp);
	return errors;
}

int
conf_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
conf_double(const char *s, double min, double max, double *out)
{
	double	 v;
	char	*end;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v) || v < min ||
	    v > max)
		return -1;
	*out = v;
	return 0;
}

int
conf_duration_ms(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;
	uint64_t		 mul;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end == '\0' || strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mul = 3600 * 1000;
	else
		return -1;
	if (v > UINT64_MAX / mul / 2)
		return -1;
	*out = v * mul;
	return 0;
}

int
conf_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char	*colon, *h = s;
	size_t		 hl;
	uint64_t	 p;

	if (*s == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return -1;
		h = s + 1;
		hl = colon - h;
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hl = colon - s;
	}
	if (hl == 0 || hl >= hostlen || conf_uint(colon + 1, 1, 65535, &p) == -1)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int
conf_bool(const char *s, int *out)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

int
conf_kme_tls_min(const struct conf_line *cl, int *minor)
{
	if (cl->cl_argc == 2 && strcmp(cl->cl_argv[1], "1.2") == 0)
		*minor = 2;
	else if (cl->cl_argc == 2 && strcmp(cl->cl_argv[1], "1.3") == 0)
		*minor = 3;
	else {
		conf_error(cl, "%s: expected 1.2 or 1.3 (nothing below TLS 1.2)",
		    cl->cl_argv[0]);
		return -1;
	}
	return 0;
}

void
cfg_common_init(struct cfg_common *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->cc_max_frame = FRAME_MAX_DEFAULT;
}

/* Replace *dst with a copy of the directive's single argument. */
static int
cfg_path(char **dst, const struct conf_line *cl)
{
	free(*dst);
	*dst = xstrdup(cl->cl_argv[1]);
	return 1;
}

/* admin PORT or admin HOST:PORT; a bare port listens on loopback. */
static int
cfg_admin(struct cfg_common *cc, const struct conf_line *cl)
{
	const char	*a = cl->cl_argv[1];
	uint64_t	 v;

	if (strchr(a, ':') == NULL) {
		if (conf_uint(a, 1, 65535, &v) == -1) {
			conf_error(cl, "admin wants [HOST:]PORT, PORT 1..65535");
			return -1;
		}
		snprintf(cc->cc_admin_host, sizeof(cc->cc_admin_host),
		    "127.0.0.1");
		cc->cc_admin_port = (uint16_t)v;
		return 1;
	}
	if (conf_hostport(a, cc->cc_admin_host, sizeof(cc->cc_admin_host),
	    &cc->cc_admin_port) == -1 || cc->cc_admin_port == 0) {
		conf_error(cl, "admin wants [HOST:]PORT, not \"%s\"", a);
		return -1;
	}
	return 1;
}

int
cfg_common_line(struct cfg_common *cc, const struct conf_line *cl)
{
	const char	*d = cl->cl_argv[0];
	uint64_t	 v;

	if (strcmp(d, "id") && strcmp(d, "topology") && strcmp(d, "store") &&
	    strcmp(d, "ca") && strcmp(d, "cert") && strcmp(d, "key") &&
	    strcmp(d, "max_frame") && strcmp(d, "verbose") &&
	    strcmp(d, "admin"))
		return 0;
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if (strcmp(d, "id") == 0) {
		if (!id_valid_name(cl->cl_argv[1])) {
			conf_error(cl, "invalid id \"%s\" (want [a-z0-9._-]{1,32})",
			    cl->cl_argv[1]);
			return -1;
		}
		snprintf(cc->cc_id, sizeof(cc->cc_id), "%s", cl->cl_argv[1]);
		return 1;
	}
	if (strcmp(d, "topology") == 0)
		return cfg_path(&cc->cc_topology, cl);
	if (strcmp(d, "store") == 0)
		return cfg_path(&cc->cc_store, cl);
	if (strcmp(d, "ca") == 0)
		return cfg_path(&cc->cc_ca, cl);
	if (strcmp(d, "cert") == 0)
		return cfg_path(&cc->cc_cert, cl);
	if (strcmp(d, "key") == 0)
		return cfg_path(&cc->cc_key, cl);
	if (strcmp(d, "admin") == 0)
		return cfg_admin(cc, cl);
	if (strcmp(d, "max_frame") == 0) {
		if (conf_uint(cl->cl_argv[1], 1024, 16 * 1024 * 1024, &v) == -1) {
			conf_error(cl, "max_frame must be 1024..16777216");
			return -1;
		}
		cc->cc_max_frame = v;
		return 1;
	}
	if (conf_uint(cl->cl_argv[1], 0, 9, &v) == -1) {
		conf_error(cl, "verbose must be 0..9");
		return -1;
	}
	cc->cc_verbose = (int)v;
	return 1;
}

int
cfg_common_check(const struct cfg_common *cc, const char *file, int need_tls)
{
	int	errors = 0;

	if (cc->cc_store == NULL) {
		fprintf(stderr, "%s: missing \"store\"\n", file);
		errors++;
	}
	if (cc->cc_topology == NULL) {
		fprintf(stderr, "%s: missing \"topology\"\n", file);
		errors++;
	}
	if (need_tls && (cc->cc_ca == NULL || cc->cc_cert == NULL ||
	    cc->cc_key == NULL)) {
		fprintf(stderr, "%s: missing \"ca\", \"cert\" or \"key\"\n", file);
		errors++;
	}
	return errors ? -1 : 0;
}

void
cfg_common_free(struct cfg_common *cc)
{
	free(cc->cc_topology);
	free(cc->cc_store);
	free(cc->cc_ca);
	free(cc->cc_cert);
	free(cc->cc_key);
	memset(cc, 0, sizeof(*cc));
}
