/*
 * qkdd's parsers of ETSI GS QKD 014 requests (qkdd/kme.c): the query of
 * GET enc_keys, the bodies of POST enc_keys and dec_keys, and the range
 * checks after them, as kme_handle runs them.  Byte 0 picks the parser;
 * the rest is the query string or the body.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "../../qkdd/config.h"
#include "../../qkdd/kme.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct qkdd_conf	 qc;
	struct kme		 k;
	struct kme_request	 req;
	struct kme_reply	 rep;
	struct kme_enc_params	 ep;
	json_t			*body = NULL;
	const char		*ids[1024];
	char			*text;
	int			 n, rc;

	if (len < 1)
		return 0;
	memset(&qc, 0, sizeof(qc));
	qc.qc_key_size = 256;
	qc.qc_max_per_request = data[0] & 0x80 ? 1024 : 128;
	memset(&k, 0, sizeof(k));
	k.k_conf = &qc;
	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	req.kr_path = "/api/v1/keys/sae-b/enc_keys";
	req.kr_cn = "sae-a";
	req.kr_peer = "fuzz";
	/* The query string is NUL-terminated, as libevent hands it over. */
	if ((text = malloc(len)) == NULL)
		abort();
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';
	ep.ep_number = 1;
	ep.ep_size = qc.qc_key_size;
	fuzz_quiet(1);
	switch (data[0] % 3) {
	case 0:
		req.kr_method = KME_GET;
		req.kr_query = text;
		if (kme_enc_query(&req, &ep, &rep) == 0)
			(void)kme_enc_check(&k, &req, &ep, &rep);
		break;
	case 1:
		req.kr_method = KME_POST;
		req.kr_body = text;
		req.kr_bodylen = len - 1;
		if (kme_enc_body(&req, &ep, &rep) == 0)
			(void)kme_enc_check(&k, &req, &ep, &rep);
		break;
	default:
		req.kr_method = KME_POST;
		req.kr_path = "/api/v1/keys/sae-a/dec_keys";
		req.kr_body = text;
		req.kr_bodylen = len - 1;
		n = kme_dec_body(&k, &req, &body, ids, &rep);
		if (n > (int)qc.qc_max_per_request)
			abort();
		for (rc = 0; rc < n; rc++)
			if (ids[rc] == NULL)
				abort();
		json_decref(body);
		break;
	}
	fuzz_quiet(0);
	kme_reply_free(&rep);
	free(text);
	return 0;
}
