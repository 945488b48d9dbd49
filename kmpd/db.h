/*
 * kmpd's store: the identities with their initial keys, one row per
 * application session with its key while a party has yet to fetch it,
 * the parties served by (session_id, identity), the nonces of served
 * applications, and an audit log of IDs and times, never keys.
 */
#ifndef KMPD_DB_H
#define KMPD_DB_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "ids.h"

#define KMP_KIND_VEHICLE	"vehicle"
#define KMP_KIND_ENCRYPTOR	"encryptor"

struct kmp_db;

struct kmp_identity {
	char		ki_kind[16];
	uint8_t		ki_ik[32];
};

/* What an issue wrote, for logs and metrics. */
struct kmp_issue {
	const char	*is_session_id;
	const char	*is_identity;
	const char	*is_kind;
	const uint8_t	*is_nonce;	/* MSG_KMP_NONCELEN bytes */
	const uint8_t	*is_key;	/* the session key */
	const char	*is_key_id;	/* its key_ID at the key source */
	uint64_t	 is_now_ms;
	uint64_t	 is_prune_ms;	/* nonces received before: forgotten */
};

/*
 * Open or create the store at path; durable(n, arg) runs on the loop as
 * commits become durable (commit.h).  NULL on failure (logged).
 */
struct kmp_db	*kmp_db_open(const char *path, struct event_base *,
		    void (*durable)(uint64_t, void *), void *arg);
void		 kmp_db_close(struct kmp_db *);
uint64_t	 kmp_db_written(struct kmp_db *);

/* 1 and *ki filled (wipe it after use), 0 unknown, -1 error. */
int	kmp_db_identity(struct kmp_db *, const char *identity,
	    struct kmp_identity *ki);
/*
 * Add an identity with its initial key: 0; 2 if it exists with this kind
 * and key (a delivery repeated; nothing written); 1 if it exists
 * otherwise; -1.
 */
int	kmp_db_add_identity(struct kmp_db *, const char *identity,
	    const char *kind, const uint8_t ik[32], uint64_t now_ms,
	    const char *by);
/* 1 if identity's nonce was seen in a served application, 0, -1. */
int	kmp_db_nonce_seen(struct kmp_db *, const char *identity,
	    const uint8_t *nonce);
/*
 * Who holds session_id's slot of kind: 0 free, 1 identity itself (served
 * already), 2 another identity, -1 error.
 */
int	kmp_db_slot(struct kmp_db *, const char *session_id, const char *kind,
	    const char *identity);
/*
 * The key of session_id, kept while a party has still to fetch it:
 * 1 and key (and key_id, KEYSRC_IDMAX + 1 bytes) filled, 0 none, -1.
 */
int	kmp_db_session_key(struct kmp_db *, const char *session_id,
	    uint8_t key[32], char *key_id, size_t key_id_len);
/*
 * Serve one party in one transaction: its nonce, the session row (with
 * the key if it is new), its issued row and an audit row; when both
 * parties are served the key is wiped from the row.  *complete says so.
 * 0 or -1 (nothing written).
 */
int	kmp_db_issue(struct kmp_db *, const struct kmp_issue *, int *complete);

struct kmp_db_counts {
	int64_t		kc_vehicles;
	int64_t		kc_encryptors;
	int64_t		kc_sessions;		/* rows */
	int64_t		kc_sessions_open;	/* key kept for one party */
	int64_t		kc_issued;
};
int	kmp_db_counts(struct kmp_db *, struct kmp_db_counts *);
/* The sessions still holding a key, at most max: JSON array, or NULL. */
json_t	*kmp_db_open_sessions(struct kmp_db *, size_t max);

#endif
