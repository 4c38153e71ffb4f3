/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hostmm.h: the memory system calls as a program sees them, with the
 * anonymous private mappings of at least `threshold` bytes managed by
 * upvm.  interpose.c (libupvm.so only) forwards mmap, munmap, mremap and
 * madvise here; tests call these directly.  Without a running upvm, or
 * before hostmm_enable(), each is the plain system call.
 *
 * Each returns as the libc function does: the result, or MAP_FAILED / -1
 * with errno set; errno is untouched on success.
 */
#ifndef UPVM_HOSTMM_H
#define UPVM_HOSTMM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * hostmm_enable: from now on, manage what these calls map (while upvm
 * runs).  The preload turns it on; a program that links libupvm.so for
 * the API keeps its own mmap calls to itself.  Call it after upvm_init():
 * it notes the pageout protocol (hostmm_dio_begin).
 */
void hostmm_enable(void);

void *hostmm_mmap(void *addr, size_t len, int prot, int flags, int fd,
    off_t off);
int hostmm_munmap(void *addr, size_t len);
void *hostmm_mremap(void *old, size_t oldlen, size_t newlen, int flags,
    void *newaddr);
int hostmm_madvise(void *addr, size_t len, int advice);
int hostmm_mprotect(void *addr, size_t len, int prot);
/* msync: managed pieces of shared files are written back (MS_SYNC: and
   made durable; MS_INVALIDATE: clean pages dropped) */
int hostmm_msync(void *addr, size_t len, int flags);
/*
 * hostmm_file_io: read(2) and write(2) beside file regions.  The kernel
 * keeps a file's mappings and its reads and writes coherent through one
 * page cache; upvm's file regions hold copies.  So with files managed,
 * before a read or write of [off, off + len) of the file open on fd, the
 * dirty pages its regions hold over that range are written back (the file
 * then has what the program wrote through them); after a write, their
 * pages over the range are dropped (clean by then; a private region's
 * written pages stay), so the next access reads the file, which now has
 * both.  hostmm_file_io_wanted: whether fd may be such a file (cheap).
 */
bool hostmm_file_io_wanted(int fd);

/*
 * hostmm_dio_begin: a read of fd into the bytes [lo, hi) is about to
 * start; with the wp protocol and fd O_DIRECT, it is announced (dio.h)
 * until hostmm_dio_end(the answer, lo, hi).  => a token for
 * hostmm_dio_end (HOSTMM_DIO_NONE: nothing announced).  No locks held.
 */
#define HOSTMM_DIO_NONE	(-2)
int hostmm_dio_begin(int fd, uintptr_t lo, uintptr_t hi);
void hostmm_dio_end(int token, uintptr_t lo, uintptr_t hi);
void hostmm_file_io(int fd, uint64_t off, uint64_t len, bool after_write);

/*
 * hostmm_truncated: the file (dev, ino) was truncated to `size` bytes:
 * every page of its regions wholly past the new end goes, resident or not,
 * written or not (the kernel discards them too, private copies included),
 * so that touching one faults and raises SIGBUS.  A page not resident
 * raises it anyway (the size is asked again at each fault); this is for
 * the resident ones.  The preload's ftruncate and truncate call it; a
 * program using the API directly may too.  Nothing if no region maps it.
 */
void hostmm_truncated(dev_t dev, ino_t ino, uint64_t size);
/* hostmm_files_mapped: whether any file region exists (cheap) */
bool hostmm_files_mapped(void);

/* at exit: write back every shared file region (the process's memory is
   about to go, and with it what was not written) */
void hostmm_exit_writeback(void);
/* hostmm_exit_bye: at exit, tell upvmd this process leaves (dlink_bye) */
void hostmm_exit_bye(void);
/*
 * hostmm_inject_move_hook: tests only: hook(addr, len) runs right after
 * the kernel moved a managed range for mremap, before the range is
 * registered at its new place (the window in which khugepaged could
 * collapse it: a test stands in for khugepaged there).  NULL removes it.
 */
void hostmm_inject_move_hook(void (*hook)(void *addr, size_t len));

/* mlock2 flags 0 is mlock; locked managed pages stay resident, outside
   the budget */
int hostmm_mlock(const void *addr, size_t len, unsigned flags);
int hostmm_munlock(const void *addr, size_t len);

#endif /* UPVM_HOSTMM_H */
