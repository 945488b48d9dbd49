/*
 * Line-oriented configuration files: one directive per line, words split on
 * blanks, '#' starts a comment.  The parser hands each line to a callback;
 * errors are reported as "file:line: message" on stderr.
 */
#ifndef QROAM_CONF_H
#define QROAM_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAXARGS	64

struct conf_line {
	const char	*cl_file;
	int		 cl_line;
	int		 cl_argc;
	char		*cl_argv[CONF_MAXARGS];
};

/* Return 0 if the line was fine, -1 after reporting an error with conf_error. */
typedef int (*conf_cb)(void *arg, const struct conf_line *);

/* Parse path, calling cb per directive.  Returns the number of errors (0 = ok). */
int	conf_parse_file(const char *path, conf_cb cb, void *arg);

/* Print "file:line: message" to stderr. */
void	conf_error(const struct conf_line *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Value parsers: 0 on success, -1 (and nothing written) on a bad value. */
int	conf_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int	conf_double(const char *s, double min, double max, double *out);
/* "250ms", "30s", "2m", "1h", or a bare number of milliseconds. */
int	conf_duration_ms(const char *s, uint64_t *out);
/* "host:port" or "[v6]:port". host must hold at least 256 bytes. */
int	conf_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
int	conf_bool(const char *s, int *out);
/*
 * The directive kme_tls_min 1.2|1.3 (PROTOCOL §7: a KME may speak TLS 1.2,
 * never lower): *minor is 2 or 3; 0, or -1 after conf_error.
 */
int	conf_kme_tls_min(const struct conf_line *, int *minor);
#define CONF_TLS_MIN_DEFAULT	3	/* TLS 1.3 */

/*
 * Directives every daemon shares:
 *   id NAME, topology PATH, store PATH, ca PATH, cert PATH, key PATH,
 *   max_frame BYTES, verbose N, admin [HOST:]PORT (the admin endpoint of
 *   admin.h; HOST defaults to 127.0.0.1, no admin directive: none).
 * cfg_common_line returns 1 if it handled the line, 0 if the directive is
 * not a common one, -1 on an error it already reported.
 */
struct cfg_common {
	char		 cc_id[33];
	char		*cc_topology;
	char		*cc_store;
	char		*cc_ca;
	char		*cc_cert;
	char		*cc_key;
	size_t		 cc_max_frame;
	int		 cc_verbose;
	char		 cc_admin_host[256];
	uint16_t	 cc_admin_port;	/* 0: no admin endpoint */
};

void	cfg_common_init(struct cfg_common *);
int	cfg_common_line(struct cfg_common *, const struct conf_line *);
/* Check required fields after parsing; reports "file: message"; 0 or -1. */
int	cfg_common_check(const struct cfg_common *, const char *file, int need_tls);
void	cfg_common_free(struct cfg_common *);

#endif
