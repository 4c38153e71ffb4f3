/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * seal.h: pages encrypted and authenticated (AES-256-GCM, OpenSSL's
 * libcrypto) before they leave the process: to the remote store always,
 * to the local swap file with --swap-encrypt.  Inside pager/ only.
 *
 * The key is random per seal (per swap, so per process and its fork
 * children, which read their parent's slots), lives in memory that is
 * locked (never swapped by the kernel) and left out of core dumps, and
 * is never written anywhere.  Each sealed page is bound to where it
 * belongs by the associated data: the swap's instance id, the slot and a
 * generation.  The generation is the nonce too: the swap hands out each
 * generation once (a counter shared with fork children), so no nonce is
 * ever used twice under one key, and a store that returns an old value
 * of a slot (a replay), another slot's value or another process's fails
 * the tag check: seal_open says -EBADMSG and the page raises SIGBUS.
 *
 * Locks: none.  A seal is immutable after seal_create; each thread keeps
 * its own cipher context (thread-local).
 */
#ifndef UPVM_SEAL_H
#define UPVM_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_TAG	16	/* bytes of authentication tag per page */
#define SEAL_ID		16	/* bytes of instance id */

struct seal;

/* seal_create: a fresh random key and instance id.  => 0 or -errno, logged */
int seal_create(struct seal **out);
void seal_destroy(struct seal *);

/* seal_id: the instance id (random, SEAL_ID bytes) */
const uint8_t *seal_id(const struct seal *);

/*
 * seal_page: encrypt the page at in into out (may be in) for (slot, gen),
 * its tag into tag.  => 0, or -EIO if libcrypto failed (logged).
 */
int seal_page(const struct seal *, uint64_t slot, uint64_t gen,
    const void *in, void *out, uint8_t *tag);

/*
 * seal_open: decrypt the page at in into out (may be in) if tag proves it
 * is what seal_page sealed for (slot, gen).  => 0, or -EBADMSG (out is
 * then garbage: the caller must not map it).
 */
int seal_open(const struct seal *, uint64_t slot, uint64_t gen,
    const void *in, void *out, const uint8_t *tag);

#endif /* UPVM_SEAL_H */
