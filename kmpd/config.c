/* kmpd configuration file. */
#include <stdio.h>
#include <string.h>

#include "config.h"

/* key_source etsi014 [PEER] | random */
static int
kmpd_conf_key_source(struct kmpd_conf *kc, const struct conf_line *cl)
{
	const char	*src = cl->cl_argc > 1 ? cl->cl_argv[1] : "";

	if (strcmp(src, "random") == 0 && cl->cl_argc == 2) {
		snprintf(kc->kc_key_source, sizeof(kc->kc_key_source), "random");
		return 0;
	}
	if (strcmp(src, "etsi014") != 0 || cl->cl_argc > 3) {
		conf_error(cl, "key_source takes \"etsi014 [PEER]\" or "
		    "\"random\"");
		return -1;
	}
	if (cl->cl_argc == 3 && !id_valid_name(cl->cl_argv[2])) {
		conf_error(cl, "bad key_source peer SAE \"%s\"", cl->cl_argv[2]);
		return -1;
	}
	snprintf(kc->kc_key_source, sizeof(kc->kc_key_source), "etsi014");
	snprintf(kc->kc_key_peer, sizeof(kc->kc_key_peer), "%s",
	    cl->cl_argc == 3 ? cl->cl_argv[2] : KMPD_PEER_DEFAULT);
	return 0;
}

/* One directive: a common one, key_source, max_skew or key_timeout. */
static int
kmpd_conf_line(void *arg, const struct conf_line *cl)
{
	struct kmpd_conf	*kc = arg;
	const char		*d = cl->cl_argv[0];
	uint64_t		 v;
	int			 rc;

	if ((rc = cfg_common_line(&kc->kc_common, cl)) != 0)
		return rc == 1 ? 0 : -1;
	if (strcmp(d, "key_source") == 0)
		return kmpd_conf_key_source(kc, cl);
	if (strcmp(d, "max_skew") != 0 && strcmp(d, "key_timeout") != 0) {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if (conf_duration_ms(cl->cl_argv[1], &v) == -1 || v < KMPD_MIN_MS ||
	    v > KMPD_MAX_MS) {
		conf_error(cl, "%s must be a duration of %dms..%dms", d,
		    KMPD_MIN_MS, KMPD_MAX_MS);
		return -1;
	}
	if (strcmp(d, "max_skew") == 0)
		kc->kc_max_skew_ms = v;
	else
		kc->kc_key_timeout_ms = v;
	return 0;
}

int
kmpd_conf_load(const char *path, struct kmpd_conf *kc)
{
	memset(kc, 0, sizeof(*kc));
	cfg_common_init(&kc->kc_common);
	snprintf(kc->kc_key_source, sizeof(kc->kc_key_source), "etsi014");
	snprintf(kc->kc_key_peer, sizeof(kc->kc_key_peer), KMPD_PEER_DEFAULT);
	kc->kc_max_skew_ms = KMPD_MAX_SKEW_MS;
	kc->kc_key_timeout_ms = KMPD_KEY_TIMEOUT_MS;
	if (conf_parse_file(path, kmpd_conf_line, kc) != 0 ||
	    cfg_common_check(&kc->kc_common, path, 1) == -1) {
		kmpd_conf_free(kc);
		return -1;
	}
	if (kc->kc_common.cc_id[0] == '\0')
		snprintf(kc->kc_common.cc_id, sizeof(kc->kc_common.cc_id),
		    "kmp");
	return 0;
}

void
kmpd_conf_free(struct kmpd_conf *kc)
{
	cfg_common_free(&kc->kc_common);
}
