/*
 * Identities and their initial keys (PROTOCOL 11.1): an encryptor's IK_c
 * from an operator (qroamctl kmp add-encryptor), a vehicle's IK_v from an
 * operator or from fillerd, which wrote it into the chip at fill time.
 * Both come over mutual TLS; an identity is added once and never changed
 * here: a second KmpIdentity for it is refused with nothing written,
 * unless it repeats the first (an outbox delivering again), which is
 * answered OK.
 */
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "kmp.h"
#include "log.h"
#include "store.h"

void
kmp_provision(struct kmp *k, struct conn *c, const struct frame *f)
{
	Qroam__KmpIdentity	*m;
	const char		*by = conn_peer_role(c), *bad = NULL;
	int			 rc;

	m = (Qroam__KmpIdentity *)frame_unpack(f,
	    &qroam__kmp_identity__descriptor);
	if (m == NULL) {
		kmp_refuse(c, f->f_request_id, "KmpIdentity", "kmp_malformed",
		    QROAM__STATUS_CODE__BAD_REQUEST, "malformed KmpIdentity");
		return;
	}
	if (!kmp_valid_identity(m->identity))
		bad = "identity is neither a name nor a chip_id";
	else if (strcmp(m->kind, KMP_KIND_VEHICLE) != 0 &&
	    strcmp(m->kind, KMP_KIND_ENCRYPTOR) != 0)
		bad = "kind is neither vehicle nor encryptor";
	else if (m->ik.len != 32)
		bad = "initial key is not 32 bytes";
	else if (strcmp(by, "filler") == 0 &&
	    strcmp(m->kind, KMP_KIND_VEHICLE) != 0)
		bad = "the filler provisions vehicles only";
	if (bad != NULL) {
		kmp_refuse(c, f->f_request_id, "KmpIdentity", "kmp_malformed",
		    QROAM__STATUS_CODE__BAD_REQUEST, bad);
	} else if ((rc = kmp_db_add_identity(k->k_db, m->identity, m->kind,
	    m->ik.data, store_now_ms(), by)) == 1) {
		kmp_refuse(c, f->f_request_id, "KmpIdentity", "kmp_duplicate",
		    QROAM__STATUS_CODE__DUPLICATE_REGISTRATION,
		    "identity exists already");
	} else if (rc == 2) {
		log_info("identity %s (%s) from %s %s: known already with that "
		    "key", m->identity, m->kind, by, conn_peer_cn(c));
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__OK,
		    NULL);
	} else if (rc == -1) {
		kmp_refuse(c, f->f_request_id, "KmpIdentity", "kmp_store",
		    QROAM__STATUS_CODE__INTERNAL, "store error");
	} else {
		log_info("identity %s (%s) added by %s %s", m->identity,
		    m->kind, by, conn_peer_cn(c));
		conn_send_status(c, f->f_request_id, QROAM__STATUS_CODE__OK,
		    NULL);
	}
	if (m->ik.data != NULL)
		crypto_wipe(m->ik.data, m->ik.len);
	qroam__kmp_identity__free_unpacked(m, NULL);
}
