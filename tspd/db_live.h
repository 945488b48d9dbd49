/*
 * The sessions of the TSP store held in memory (db_live.c), for every
 * backend: the backend reads a session's row and enters it, writes the
 * rows of the entries ahead of them with its batch and tells the table
 * whether that batch committed.  The table asks the backend, through
 * tspdb_live_io, how many commits are written and durable (the tx_seq
 * ceilings are as good as the commit that wrote them) and to settle the
 * open batch before an entry ahead of its row leaves memory.
 */
#ifndef TSPD_DB_LIVE_H
#define TSPD_DB_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct tspdb_live_io {
	uint64_t	(*li_written)(void *arg);
	uint64_t	(*li_durable)(void *arg);
	void		(*li_settle)(void *arg);
};

struct tspdb_ltab;
struct tspdb_live;

struct tspdb_ltab *tspdb_live_new(const struct tspdb_live_io *, void *arg);
void	tspdb_live_free(struct tspdb_ltab *);
/* vid's entry or NULL. */
struct tspdb_live *tspdb_live_get(struct tspdb_ltab *, const char *vid);
/* Enter session s as read from its row (tx_seq: the row's ceiling). */
struct tspdb_live *tspdb_live_enter(struct tspdb_ltab *,
	    const struct tspdb_session *s);
const struct tspdb_session *tspdb_live_session(const struct tspdb_live *);
/* Enter session s as just stored with ceiling, replacing vid's entry. */
void	tspdb_live_put(struct tspdb_ltab *, const struct tspdb_session *s,
	    uint64_t ceiling);
/*
 * Drop vid's entry (after settling the batch if the entry is ahead of its
 * row): called by every change of a sessions row made outside this file's
 * knowledge, so the next use reads the row again.
 */
void	tspdb_live_forget(struct tspdb_ltab *, const char *vid);
/* tspdb_session_release: the entry goes, after the batch if it is dirty. */
void	tspdb_live_release(struct tspdb_ltab *, const char *vid);
/*
 * Take rx_seq and tx_seq (raising the ceiling when tx_seq nears it): 1 if
 * an answer sealed under tx_seq may leave before the batch commits.
 */
int	tspdb_live_advance(struct tspdb_ltab *, struct tspdb_live *,
	    uint64_t rx_seq, uint64_t tx_seq);
/* 1 and the numbers in memory if vid has an entry, else 0. */
int	tspdb_live_seqs(struct tspdb_ltab *, const char *vid,
	    uint64_t *rx_seq, uint64_t *tx_seq);
/* write(arg, vid, rx_seq, ceiling) for each entry ahead of its row; 0/-1. */
int	tspdb_live_dirty(struct tspdb_ltab *, int (*write)(void *,
	    const char *vid, uint64_t rx_seq, uint64_t ceiling), void *arg);
/* The batch that wrote the dirty rows committed (1) or rolled back (0). */
void	tspdb_live_settled(struct tspdb_ltab *, int committed);
/* As tspdb_session_find, _live, _stored, _tell, _next_tx and _contexts. */
int	tspdb_live_find(struct tspdb_ltab *, const char *vid,
	    const struct tspdb_session **sp);
size_t	tspdb_live_count(const struct tspdb_ltab *);
int	tspdb_live_stored(struct tspdb_ltab *, const char *vid,
	    uint32_t key_index, uint64_t seq);
uint64_t tspdb_live_tell(struct tspdb_ltab *, const char *vid);
int	tspdb_live_next_tx(struct tspdb_ltab *, const char *vid,
	    uint64_t *tx_seq, const struct tspdb_session **sp);
void	tspdb_live_contexts(struct tspdb_ltab *, size_t n);

#endif
