/*
 * tspd configuration file parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "log.h"

#include "config.h"
#include "db.h"

/* ms as the largest unit that holds it exactly: "0", "250ms", "30s", "1h". */
static void
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* Parse the DURATION argument of l, min..max ms, into *out. */
static int
config_duration(const struct conf_line *l, uint64_t min, uint64_t max,
    uint64_t *out)
{
	uint64_t	 v;
	char		 lo[32], hi[32];

	if (l->cl_argc != 2) {
		conf_error(l, "%s: expected one duration", l->cl_argv[0]);
		return -1;
	}
	if (conf_duration_ms(l->cl_argv[1], &v) == -1 || v < min || v > max) {
		config_fmt_duration(min, lo, sizeof(lo));
		config_fmt_duration(max, hi, sizeof(hi));
		conf_error(l, "%s: bad duration \"%s\" (want %s..%s)",
		    l->cl_argv[0], l->cl_argv[1], lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* Parse the COUNT argument of l, min..max, into *out. */
static int
config_count(const struct conf_line *l, uint64_t min, uint64_t max,
    uint64_t *out)
{
	if (l->cl_argc != 2) {
		conf_error(l, "%s: expected one number", l->cl_argv[0]);
		return -1;
	}
	if (conf_uint(l->cl_argv[1], min, max, out) == -1) {
		conf_error(l, "%s: bad number \"%s\" (want %llu..%llu)",
		    l->cl_argv[0], l->cl_argv[1], (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	return 0;
}

/* The directives that are counts: workers, prv_cache; 1 if not one. */
static int
config_counts(struct tspd_config *conf, const struct conf_line *l)
{
	uint64_t	 v;

	if (strcmp(l->cl_argv[0], "workers") == 0) {
		if (config_count(l, 0, TSPD_MAX_WORKERS, &v) == -1)
			return -1;
		conf->tc_workers = (int)v;
		return 0;
	}
	if (strcmp(l->cl_argv[0], "prv_cache") == 0) {
		if (config_count(l, 0, TSPD_MAX_PRV_CACHE, &v) == -1)
			return -1;
		conf->tc_prv_cache = (size_t)v;
		return 0;
	}
	return 1;
}

/*
 * K0 from path: 32 bytes, or 64 hex digits and an optional newline (a
 * systemd credential file either way).  0, or -1 with the error printed.
 */
static int
config_cloud_k0(const struct conf_line *l, const char *path,
    uint8_t k0[TSPD_CLOUD_KEYLEN])
{
	uint8_t		 buf[2 * TSPD_CLOUD_KEYLEN + 2];
	FILE		*f;
	size_t		 n;
	int		 rc = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		conf_error(l, "cloud_key: cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == 2 * TSPD_CLOUD_KEYLEN + 1 && buf[n - 1] == '\n')
		n--;
	if (n == TSPD_CLOUD_KEYLEN) {
		memcpy(k0, buf, TSPD_CLOUD_KEYLEN);
		rc = 0;
	} else if (n == 2 * TSPD_CLOUD_KEYLEN) {
		buf[n] = '\0';
		rc = crypto_unhex((char *)buf, k0, TSPD_CLOUD_KEYLEN);
	}
	crypto_wipe(buf, sizeof(buf));
	if (rc == -1)
		conf_error(l, "cloud_key: %s holds neither 32 bytes nor 64 hex "
		    "digits", path);
	return rc;
}

/* The directives of the cloud bus: cloud_key, cloud_epoch, cloud_step. */
static int
config_cloud(struct tspd_config *conf, const struct conf_line *l)
{
	uint64_t	 v;

	if (strcmp(l->cl_argv[0], "cloud_key") == 0) {
		if (l->cl_argc != 2) {
			conf_error(l, "cloud_key: expected a file");
			return -1;
		}
		if (config_cloud_k0(l, l->cl_argv[1], conf->tc_cloud_k0) == -1)
			return -1;
		free(conf->tc_cloud_key);
		conf->tc_cloud_key = xstrdup(l->cl_argv[1]);
		return 0;
	}
	if (strcmp(l->cl_argv[0], "cloud_epoch") == 0) {
		if (config_count(l, 0, TSPD_MAX_CLOUD_EPOCH, &v) == -1)
			return -1;
		conf->tc_cloud_epoch_ms = v * 1000;
		conf->tc_cloud_epoch_set = 1;
		return 0;
	}
	if (strcmp(l->cl_argv[0], "cloud_step") == 0)
		return config_duration(l, TSPD_MIN_CLOUD_STEP_MS,
		    TSPD_MAX_CLOUD_STEP_MS, &conf->tc_cloud_step_ms);
	return 1;
}

/* The cloud bus needs K0, t0 and a store its instances share. */
static int
config_cloud_check(const struct tspd_config *conf, const char *path)
{
	const char	*why = NULL;

	if (conf->tc_cloud_key == NULL && conf->tc_cloud_epoch_set)
		why = "cloud_epoch: no cloud_key";
	else if (conf->tc_cloud_key == NULL)
		return 0;
	else if (!conf->tc_cloud_epoch_set)
		why = "cloud_key: no cloud_epoch (t0 of the key stream)";
	else if (!tspdb_shared(conf->tc_common.cc_store))
		why = "cloud_key: the cloud bus needs a store the instances "
		    "share (PostgreSQL)";
	if (why == NULL)
		return 0;
	fprintf(stderr, "%s: %s\n", path, why);
	return -1;
}

/* One directive of the tspd configuration. */
static int
config_line(void *arg, const struct conf_line *l)
{
	struct tspd_config	*conf = arg;
	int			 r;

	if ((r = cfg_common_line(&conf->tc_common, l)) != 0)
		return r == 1 ? 0 : -1;
	if (strcmp(l->cl_argv[0], "auth_skew") == 0)
		return config_duration(l, 1, TSPD_MAX_SKEW_MS,
		    &conf->tc_auth_skew_ms);
	if (strcmp(l->cl_argv[0], "idle_timeout") == 0)
		return config_duration(l, 0, TSPD_MAX_IDLE_MS,
		    &conf->tc_idle_timeout_ms);
	if (strcmp(l->cl_argv[0], "look_ahead") == 0)
		return config_duration(l, 0, TSPD_MAX_LOOK_AHEAD_MS,
		    &conf->tc_look_ahead_ms);
	if (strcmp(l->cl_argv[0], "handover_timeout") == 0)
		return config_duration(l, 1, TSPD_MAX_HO_MS,
		    &conf->tc_handover_timeout_ms);
	if (strcmp(l->cl_argv[0], "ck2_lifetime") == 0)
		return config_duration(l, 1, TSPD_MAX_HO_MS,
		    &conf->tc_ck2_lifetime_ms);
	if (strcmp(l->cl_argv[0], "commit_delay") == 0)
		return config_duration(l, 0, TSPD_MAX_COMMIT_DELAY_MS,
		    &conf->tc_commit_delay_ms);
	if (strcmp(l->cl_argv[0], "kme_tls_min") == 0)
		return conf_kme_tls_min(l, &conf->tc_kme_tls_min);
	if (strcmp(l->cl_argv[0], "auth_idle") == 0)
		return config_duration(l, 0, TSPD_MAX_AUTH_IDLE_MS,
		    &conf->tc_auth_idle_ms);
	if ((r = config_counts(conf, l)) != 1 ||
	    (r = config_cloud(conf, l)) != 1)
		return r;
	if (strcmp(l->cl_argv[0], "listen") == 0) {
		struct endpoint	*ep = NULL;

		if (l->cl_argc == 3 && strcmp(l->cl_argv[1], "vehicle") == 0)
			ep = &conf->tc_listen_vehicle;
		else if (l->cl_argc == 3 &&
		    strcmp(l->cl_argv[1], "provision") == 0)
			ep = &conf->tc_listen_provision;
		if (ep == NULL || conf_hostport(l->cl_argv[2], ep->ep_host,
		    sizeof(ep->ep_host), &ep->ep_port) == -1 ||
		    ep->ep_port == 0) {
			conf_error(l, "listen: expected vehicle|provision "
			    "HOST:PORT");
			return -1;
		}
		return 0;
	}
	if (strcmp(l->cl_argv[0], "instance") == 0) {
		if (l->cl_argc != 2 || !id_valid_name(l->cl_argv[1])) {
			conf_error(l, "instance: expected a name");
			return -1;
		}
		snprintf(conf->tc_instance, sizeof(conf->tc_instance), "%s",
		    l->cl_argv[1]);
		return 0;
	}
	if (strcmp(l->cl_argv[0], "reuse_port") == 0) {
		if (l->cl_argc == 2 && strcmp(l->cl_argv[1], "yes") == 0)
			conf->tc_reuse_port = 1;
		else if (l->cl_argc == 2 && strcmp(l->cl_argv[1], "no") == 0)
			conf->tc_reuse_port = 0;
		else {
			conf_error(l, "reuse_port: expected yes or no");
			return -1;
		}
		return 0;
	}
	if (strcmp(l->cl_argv[0], "auth_fail") == 0) {
		if (l->cl_argc == 2 && strcmp(l->cl_argv[1], "drop") == 0)
			conf->tc_auth_fail_reply = 0;
		else if (l->cl_argc == 2 && strcmp(l->cl_argv[1], "reply") == 0)
			conf->tc_auth_fail_reply = 1;
		else {
			conf_error(l, "auth_fail: expected drop or reply");
			return -1;
		}
		return 0;
	}
	conf_error(l, "unknown directive \"%s\"", l->cl_argv[0]);
	return -1;
}

int
tspd_config_load(const char *path, struct tspd_config *conf)
{
	char	 host[NAME_MAXLEN - 5];	/* and "-" and a port: a name */
	int	 errors;

	memset(conf, 0, sizeof(*conf));
	cfg_common_init(&conf->tc_common);
	conf->tc_auth_skew_ms = TSPD_AUTH_SKEW_MS;
	conf->tc_auth_fail_reply = 0;
	conf->tc_idle_timeout_ms = TSPD_IDLE_TIMEOUT_MS;
	conf->tc_look_ahead_ms = TSPD_LOOK_AHEAD_MS;
	conf->tc_handover_timeout_ms = TSPD_HO_TIMEOUT_MS;
	conf->tc_ck2_lifetime_ms = TSPD_CK2_LIFETIME_MS;
	conf->tc_workers = TSPD_WORKERS_AUTO;
	conf->tc_prv_cache = TSPD_PRV_CACHE;
	conf->tc_cloud_step_ms = TSPD_CLOUD_STEP_MS;
	conf->tc_auth_idle_ms = TSPD_AUTH_IDLE_MS;
	conf->tc_kme_tls_min = CONF_TLS_MIN_DEFAULT;

	errors = conf_parse_file(path, config_line, conf);
	/* An unreadable file is the one error, not every directive in it. */
	if (errors != 0 && access(path, R_OK) == -1) {
		tspd_config_free(conf);
		return -1;
	}
	if (cfg_common_check(&conf->tc_common, path, 1) == -1 || errors != 0) {
		tspd_config_free(conf);
		return -1;
	}
	/* Stable across restarts, distinct among a host's instances. */
	if (conf->tc_instance[0] == '\0') {
		if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		snprintf(conf->tc_instance, sizeof(conf->tc_instance), "%s-%u",
		    host, (unsigned)conf->tc_common.cc_admin_port);
	}
	if (conf->tc_reuse_port && !tspdb_shared(conf->tc_common.cc_store)) {
		fprintf(stderr, "%s: reuse_port: several instances need a "
		    "store they can share (PostgreSQL)\n", path);
		tspd_config_free(conf);
		return -1;
	}
	if (config_cloud_check(conf, path) == -1) {
		tspd_config_free(conf);
		return -1;
	}
	return 0;
}

void
tspd_config_free(struct tspd_config *conf)
{
	crypto_wipe(conf->tc_cloud_k0, sizeof(conf->tc_cloud_k0));
	free(conf->tc_cloud_key);
	conf->tc_cloud_key = NULL;
	cfg_common_free(&conf->tc_common);
	memset(conf, 0, sizeof(*conf));
}

int
tspd_config_restart_only(const struct tspd_config *cur,
    const struct tspd_config *next)
{
	int	 n = 0;

	if (next->tc_workers != cur->tc_workers) {
		log_warnx("reload: workers changed; it takes effect on restart");
		n++;
	}
	if (topo_endpoint_differs(&next->tc_listen_vehicle,
	    &cur->tc_listen_vehicle) || topo_endpoint_differs(
	    &next->tc_listen_provision, &cur->tc_listen_provision)) {
		log_warnx("reload: listen changed; it takes effect on restart");
		n++;
	}
	if (next->tc_reuse_port != cur->tc_reuse_port) {
		log_warnx("reload: reuse_port changed; it takes effect on "
		    "restart");
		n++;
	}
	if ((next->tc_cloud_key == NULL) != (cur->tc_cloud_key == NULL) ||
	    (next->tc_cloud_key != NULL && (strcmp(next->tc_cloud_key,
	    cur->tc_cloud_key) != 0 || next->tc_cloud_epoch_ms !=
	    cur->tc_cloud_epoch_ms || next->tc_cloud_step_ms !=
	    cur->tc_cloud_step_ms))) {
		log_warnx("reload: cloud_key, cloud_epoch or cloud_step "
		    "changed; it takes effect on restart");
		n++;
	}
	if (next->tc_kme_tls_min != cur->tc_kme_tls_min) {
		log_warnx("reload: kme_tls_min changed; it takes effect on "
		    "restart");
		n++;
	}
	if (next->tc_prv_cache != cur->tc_prv_cache) {
		log_warnx("reload: prv_cache changed; it takes effect on "
		    "restart");
		n++;
	}
	return n;
}
