/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * writeback.h: writing the dirty pages of shared file mappings back to
 * their files outside the pageout daemon (upvm_sync, unmapping, fini).
 *
 * A page of a shared file entry is dirty when it is resident without a
 * clean copy (ANON_CLEAN), or, under the move protocol, when its uffd-wp
 * bit was cleared by a write (PAGEMAP_SCAN finds it and write-protects it
 * again in the same step).  A run of dirty pages is taken like a pageout
 * run (ANON_TRANSIT, held: the daemon leaves it alone, and under the wp
 * protocol a writer waits in its WP fault), write-protected, written from
 * the application's pages with one pwrite, and becomes clean (ANON_OBJ,
 * its hash remembered): a write from then on makes it dirty again, as
 * always.  Without uffd-wp (no budget) writes cannot be seen: every
 * resident page is written and stays dirty.
 */
#ifndef UPVM_WRITEBACK_H
#define UPVM_WRITEBACK_H

#include "vm.h"

struct vm_map_entry;
struct vmspace;

/*
 * wb_shared: e is a shared mapping of a file that may hold writes (its
 * vnode is writable: a read-only one was mapped from a read-only
 * descriptor, which no mprotect can make writable); the entries wb_range
 * writes back.  => map locked.
 */
bool wb_shared(const struct vm_map_entry *e);

/*
 * wb_range: write the dirty pages of the shared file entries in
 * [start, end) back, and with sync make the files durable (fdatasync).
 * => map WRITE-locked: a pagein maps its pages and marks them resident
 *    under the read lock, so under the write lock no page can be written
 *    while its anon is still in transit (a page the scan found written
 *    in that window would be marked clean by the settle, its write
 *    missing from this pass).  Takes and drops the amap locks.
 * => 0, or the first write's -errno (the pages it could not write stay
 *    dirty; counted in io_errors, logged once per call).
 */
int wb_range(struct vmspace *, vaddr_t start, vaddr_t end, bool sync);

/*
 * wb_invalidate: drop the clean file pages (ANON_OBJ) of the file
 * entries in [start, end), so the next access reads the file.  Under the
 * move protocol a write needs no fault, so the pages the vnode keeps no
 * hash of are hashed in place, those written since they were protected
 * clean become dirty (PAGEMAP_SCAN), and each run left is moved out of
 * the page tables (UFFDIO_MOVE, into a scratch area) and its pages
 * compared with the vnode's hashes: one that changed goes back, dirty.  Under the wp protocol a writer faults and waits for the
 * map lock, so the pages are dropped where they are.
 * => map write-locked.  Returns the pages dropped.
 */
long wb_invalidate(struct vmspace *, vaddr_t start, vaddr_t end);

/*
 * wb_overwritten: write(2) (or pwrite, writev...) by this process just
 * stored the file bytes [off, end), which file entry e maps at [lo, hi)
 * (pages rounded outward): the pages there leave memory, so the next
 * access reads what the write stored, and no later write-back puts their
 * old contents over it.
 *  - A shared entry loses every resident page of the range, dirty or not:
 *    hostmm_file_io wrote the dirty ones back before the write, so a page
 *    dirty now was stored to through the mapping while the write ran (the
 *    two raced; the mapping's data is taken as the older).  A page only
 *    partly inside [off, end) keeps its other bytes: unless it is a clean
 *    copy of the file, they are written to the file first, from the page
 *    taken out of reach of stores (moved to a scratch page, move protocol;
 *    write-protected, wp protocol; without uffd-wp nothing can stop a
 *    store, one racing there is lost).  A read from the file in flight
 *    loses its page (it brings old data); a page being paged out is left
 *    alone: the caller comes back once it has landed.
 *  - A private entry loses only its clean copies of the file (as
 *    wb_invalidate): what the process wrote there is its own.
 * => map write-locked.  Whether some page stayed because it was in
 *    transit (call again after it landed).
 */
bool wb_overwritten(struct vmspace *, struct vm_map_entry *e, vaddr_t lo,
    vaddr_t hi, uint64_t off, uint64_t end);

/*
 * wb_transit: some page of a file entry in [start, end) is in transit (a
 * read or a pageout in flight): what it brings may predate a write(2)
 * just done, so the caller invalidates again once it has landed.
 * => map locked.
 */
bool wb_transit(struct vmspace *, vaddr_t start, vaddr_t end);

#endif /* UPVM_WRITEBACK_H */
