/* fillerd configuration file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "keyseq.h"

/*
 * An error about m, k and n together, at the last line that set one of
 * them (file:line: message), or about the defaults (file: message).
 */
static void
fillerd_conf_error(const char *path, int line, const char *fmt, ...)
{
	va_list	ap;

	if (line > 0)
		fprintf(stderr, "%s:%d: ", path, line);
	else
		fprintf(stderr, "%s: ", path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* One directive: a common one, m, k or n. */
static int
fillerd_conf_line(void *arg, const struct conf_line *cl)
{
	struct fillerd_conf	*fc = arg;
	const char		*d = cl->cl_argv[0];
	uint64_t		 v;
	int			 rc;

	if ((rc = cfg_common_line(&fc->fc_common, cl)) != 0)
		return rc == 1 ? 0 : -1;
	if (strcmp(d, "m") != 0 && strcmp(d, "k") != 0 && strcmp(d, "n") != 0) {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	fc->fc_kn_line = cl->cl_line;
	if (strcmp(d, "m") == 0) {
		if (conf_uint(cl->cl_argv[1], 2, KEYSEQ_MAXM, &v) == -1) {
			conf_error(cl, "m must be 2..%d", KEYSEQ_MAXM);
			return -1;
		}
		fc->fc_m = v;
	} else if (strcmp(d, "k") == 0) {
		if (conf_uint(cl->cl_argv[1], KEYSEQ_MINK, KEYSEQ_MAXK, &v) == -1) {
			conf_error(cl, "k must be %d..%d", KEYSEQ_MINK, KEYSEQ_MAXK);
			return -1;
		}
		fc->fc_k = v;
	} else {
		if (conf_uint(cl->cl_argv[1], 1, KEYSEQ_MAXK, &v) == -1) {
			conf_error(cl, "n must be 1..%d", KEYSEQ_MAXK);
			return -1;
		}
		fc->fc_n = v;
	}
	return 0;
}

int
fillerd_conf_load(const char *path, struct fillerd_conf *fc)
{
	memset(fc, 0, sizeof(*fc));
	cfg_common_init(&fc->fc_common);
	fc->fc_m = 256;
	fc->fc_k = 10;
	fc->fc_n = 6;
	if (conf_parse_file(path, fillerd_conf_line, fc) != 0)
		goto fail;
	if (fc->fc_n > fc->fc_k) {
		fillerd_conf_error(path, fc->fc_kn_line, "n (%u) must not "
		    "exceed k (%u)", fc->fc_n, fc->fc_k);
		goto fail;
	}
	/* Collisions redraw chars n..k: they must offer at least m codes. */
	if (fc->fc_k - fc->fc_n + 1 < 8 &&
	    (1u << 4 * (fc->fc_k - fc->fc_n + 1)) < fc->fc_m) {
		fillerd_conf_error(path, fc->fc_kn_line, "k=%u n=%u leave too "
		    "few codes for m=%u keys", fc->fc_k, fc->fc_n, fc->fc_m);
		goto fail;
	}
	if (cfg_common_check(&fc->fc_common, path, 1) == -1)
		goto fail;
	return 0;
 fail:
	fillerd_conf_free(fc);		/* a failed load leaves nothing */
	return -1;
}

void
fillerd_conf_free(struct fillerd_conf *fc)
{
	cfg_common_free(&fc->fc_common);
	memset(fc, 0, sizeof(*fc));
}
