/*
 * tspd configuration file parser.
 */
#include <string.h>

#include "conf.h"

#include "config.h"

/* Parse a DURATION argument of l into *out, at most max ms. */
static int
config_duration(const struct conf_line *l, uint64_t max, uint64_t *out)
{
	uint64_t	 v;

	if (l->cl_argc != 2) {
		conf_error(l, "%s: expected one duration", l->cl_argv[0]);
		return -1;
	}
	if (conf_duration_ms(l->cl_argv[1], &v) == -1 || v > max) {
		conf_error(l, "%s: bad duration \"%s\"", l->cl_argv[0],
		    l->cl_argv[1]);
		return -1;
	}
	*out = v;
	return 0;
}

/* A DURATION argument of l above 0 and at most max ms into *out. */
static int
config_positive(const struct conf_line *l, uint64_t max, uint64_t *out)
{
	if (config_duration(l, max, out) == -1)
		return -1;
	if (*out == 0) {
		conf_error(l, "%s: must be above 0", l->cl_argv[0]);
		return -1;
	}
	return 0;
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
		return config_positive(l, TSPD_MAX_SKEW_MS,
		    &conf->tc_auth_skew_ms);
	if (strcmp(l->cl_argv[0], "idle_timeout") == 0)
		return config_duration(l, TSPD_MAX_IDLE_MS,
		    &conf->tc_idle_timeout_ms);
	if (strcmp(l->cl_argv[0], "look_ahead") == 0)
		return config_duration(l, TSPD_MAX_LOOK_AHEAD_MS,
		    &conf->tc_look_ahead_ms);
	if (strcmp(l->cl_argv[0], "handover_timeout") == 0)
		return config_positive(l, TSPD_MAX_HO_MS,
		    &conf->tc_handover_timeout_ms);
	if (strcmp(l->cl_argv[0], "ck2_lifetime") == 0)
		return config_positive(l, TSPD_MAX_HO_MS,
		    &conf->tc_ck2_lifetime_ms);
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
	int	 errors;

	memset(conf, 0, sizeof(*conf));
	cfg_common_init(&conf->tc_common);
	conf->tc_auth_skew_ms = TSPD_AUTH_SKEW_MS;
	conf->tc_auth_fail_reply = 0;
	conf->tc_idle_timeout_ms = TSPD_IDLE_TIMEOUT_MS;
	conf->tc_look_ahead_ms = TSPD_LOOK_AHEAD_MS;
	conf->tc_handover_timeout_ms = TSPD_HO_TIMEOUT_MS;
	conf->tc_ck2_lifetime_ms = TSPD_CK2_LIFETIME_MS;

	errors = conf_parse_file(path, config_line, conf);
	if (cfg_common_check(&conf->tc_common, path, 1) == -1 || errors != 0) {
		tspd_config_free(conf);
		return -1;
	}
	return 0;
}

void
tspd_config_free(struct tspd_config *conf)
{
	cfg_common_free(&conf->tc_common);
}
