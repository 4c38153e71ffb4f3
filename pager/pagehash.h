/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pagehash.h: a keyed 64-bit hash of one page's contents.
 *
 * Under the move pageout protocol (pdaemon.c), before the daemon drops a
 * resident page as clean (its swap or file copy still valid) it compares
 * the page's hash with the one its pager keeps, which catches a write
 * that the dirty bits missed (UFFDIO_MOVE does not carry the uffd-wp
 * bit).  Not cryptographic; the key is random per pager, so no fixed
 * content is built to collide, and two different pages agree with
 * probability about 2^-64.  Never 0: pagers keep 0 for "not known".
 */
#ifndef UPVM_PAGEHASH_H
#define UPVM_PAGEHASH_H

#include <stdint.h>

/* page_hash: the hash of the PAGE_SIZE bytes at page, never 0 */
uint64_t page_hash(const void *page, uint64_t key);

/* page_hash_portable: the same, by the code page_hash runs on CPUs
   without AVX2 (for the tests: both must agree) */
uint64_t page_hash_portable(const void *page, uint64_t key);

#endif /* UPVM_PAGEHASH_H */
