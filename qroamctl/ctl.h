/*
 * qroamctl, the control CLI of a qroam deployment: what its command files
 * share.  qroamctl.c holds the command line and the dispatch, ctl_conf.c
 * the configuration, ctl_http.c the HTTP(S) client of the admin and KME
 * endpoints, ctl_table.c the table and value formatting, ctl_view.c the
 * read-only views and ctl_ops.c the health check, metrics and the operator
 * actions.
 */
#ifndef QROAMCTL_CTL_H
#define QROAMCTL_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#define CTL_OK		0
#define CTL_FAIL	1
#define CTL_USAGE	2

#define CTL_CONF_DEFAULT	"/etc/qroam/qroamctl.conf"
#define CTL_WAIT_DEFAULT	3000	/* ms, reading the admin endpoints */
#define CTL_WAIT_OPERATOR	30000	/* ms, operator actions (RSA keygen) */
#define CTL_NAMEMAX		64

/* One admin endpoint to watch: an `admin NAME [HOST:]PORT` line or -a. */
struct ctl_daemon {
	char		cd_name[CTL_NAMEMAX];
	char		cd_host[256];
	uint16_t	cd_port;
};

struct ctl {
	const char		*c_conffile;
	int			 c_conf_given;	/* -f on the command line */
	int			 c_json;
	int			 c_check;	/* -n: check the configuration */
	int			 c_wait_ms;
	int			 c_wait_given;	/* -w on the command line */
	int			 c_single;	/* -a: one endpoint, no config */
	char			*c_topology;
	char			*c_ca;
	char			*c_cert;
	char			*c_key;
	struct ctl_daemon	*c_daemons;
	size_t			 c_ndaemons;
	struct event_base	*c_base;
};

enum ctl_method {
	CTL_GET,
	CTL_POST,
};

/* One HTTP request and, after ctl_fetch_run(), its answer. */
struct ctl_fetch {
	const struct ctl_daemon	*cf_daemon;	/* for messages; may be NULL */
	const char		*cf_host;
	uint16_t		 cf_port;
	char			 cf_path[256];
	enum ctl_method		 cf_method;
	const char		*cf_body;	/* POST body (JSON) */
	SSL_CTX			*cf_tls;	/* HTTPS with this client context */
	const char		*cf_peer_role;	/* HTTPS: required server OU */

	int			 cf_code;	/* HTTP status, 0: no answer */
	char			*cf_data;	/* answer body, NUL-terminated */
	size_t			 cf_len;
	char			 cf_err[320];	/* why there is no answer */

	struct evhttp_connection *cf_conn;
	int			 cf_pending;
	int			 cf_httperr;	/* evhttp's error, -1: none */
	int			 cf_wait_ms;
	int			 cf_badpeer;	/* the server's role was wrong */
	int			*cf_left;
};

/* Human-readable tables: rows of strings, columns as wide as needed. */
struct ctl_table;

/* ctl_conf.c */
/* Read the qroamctl configuration into c; 0, or -1 after reporting. */
int	ctl_conf_load(struct ctl *, const char *path);
/* A daemon for -a [HOST:]PORT (bare port: 127.0.0.1); 0 or -1. */
int	ctl_conf_single(struct ctl *, const char *arg);
void	ctl_conf_free(struct ctl *);
/* The configured daemon called name, or NULL. */
const struct ctl_daemon *ctl_daemon(const struct ctl *, const char *name);
/*
 * The daemons named in argv (all of them if argc is 0) as an array of
 * pointers into c.  Returns CTL_OK, CTL_USAGE for an unknown name (or a
 * name with -a), CTL_FAIL if the configuration lists no daemon.
 */
int	ctl_select(const struct ctl *, int argc, char **argv,
	    const struct ctl_daemon ***out, size_t *n);

/* ctl_http.c */
/* Prepare a GET of path on d's admin endpoint. */
void	ctl_fetch_init(struct ctl_fetch *, const struct ctl_daemon *,
	    const char *path);
/* Run all requests at once, each bounded by the -w timeout; 0 or -1. */
int	ctl_fetch_run(struct ctl *, struct ctl_fetch *, size_t n);
/* The answer as JSON if it was 200 with a JSON body, else NULL + why. */
json_t	*ctl_fetch_json(const struct ctl_fetch *, char *why, size_t len);
void	ctl_fetch_clear(struct ctl_fetch *, size_t n);

/* ctl_table.c */
struct ctl_table *ctl_table_new(const char *const *headers);
/* Append a row of strings (copied), one per column; NULL cells print "-". */
void	ctl_table_row(struct ctl_table *, const char *const *cells);
void	ctl_table_print(struct ctl_table *);
void	ctl_table_free(struct ctl_table *);
/* A JSON member as table text ("-" when absent or null) into buf. */
const char *ctl_cell(const json_t *obj, const char *key, char *buf,
	    size_t len);
/* A duration in seconds as "3d04h", "2h05m", "5m12s" or "42s". */
const char *ctl_duration(double secs, char *buf, size_t len);
/* The age of a unix-ms member of obj as a duration ("-" if absent). */
const char *ctl_age(const json_t *obj, const char *key, char *buf,
	    size_t len);
/* Print a JSON value on stdout, indented, with a final newline. */
int	ctl_json_print(const json_t *);
/* "qroamctl: " + message on stderr. */
void	ctl_err(const char *, ...) __attribute__((format(printf, 1, 2)));

/* ctl_view.c */
int	ctl_status(struct ctl *, int argc, char **argv);
int	ctl_list(struct ctl *, const char *what, int argc, char **argv);
int	ctl_handovers(struct ctl *, int argc, char **argv);
int	ctl_outbox(struct ctl *, int argc, char **argv);
int	ctl_pools(struct ctl *, int argc, char **argv);

/* ctl_ops.c */
/* The topology and operator credential of the actions; 0, or -1 + why. */
int	ctl_need_operator(const struct ctl *);
/* Print a JSON result of an action and release it. */
void	ctl_json_result(json_t *);
int	ctl_health(struct ctl *, int argc, char **argv);
int	ctl_metrics(struct ctl *, int argc, char **argv);
int	ctl_fill(struct ctl *, int argc, char **argv);
int	ctl_register(struct ctl *, int argc, char **argv);
int	ctl_eavesdrop(struct ctl *, int argc, char **argv);
/* ctl_kmp.c: kmp add-encryptor ID -o FILE. */
int	ctl_kmp(struct ctl *, int argc, char **argv);

/* ctl_map.c: serve the live map until SIGINT or SIGTERM. */
int	ctl_map(struct ctl *, int argc, char **argv);

/* qroamctl.c */
/* A usage error for a command: message and usage on stderr, CTL_USAGE. */
int	ctl_usage(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
