/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lock.h: the locks of upvm and THE lock order.
 *
 * Lock order (take left before right; never the other way):
 *
 *	vm_map.m_lock (rw)  ->  pdaemon.pdd_probe_lock  ->  amap.am_lock
 *	    ->  pager.pgr_lock  ->  kmem_pool.kp_lock  ->  log / stats
 *	    (lock-free)
 *
 * Anons have no lock of their own: an anon's fields are protected by the
 * lock of the amap whose slot holds it (an anon shared by two amaps after
 * amap_copy() is only read, or replaced by amap_cow(), never changed in
 * place while shared).
 *
 * Never hold a lock across I/O, a free of managed memory, or a uffd ioctl
 * that can block on the application, with one exception the fault engine
 * documents: the map read lock is held across UFFDIO_COPY (and the other
 * pmap calls of a fault or a pageout phase) so that no region is unmapped
 * under a resolution in progress.  Pagein reads and pageout writes run
 * with no lock at all: their anons are in transit and held, and the owner
 * re-validates after the I/O (amap.h, "a word on transit").  Starting an
 * I/O is not waiting for it: the pageout daemon starts a swap run's write
 * under the map read lock of its staging phase (pd_write_run) and waits
 * for the writes after dropping it.
 *
 * The owner fields exist only for VM_ASSERT_LOCKED(); they are written with
 * relaxed atomics because only the owner ever compares equal to itself.
 */
#ifndef UPVM_LOCK_H
#define UPVM_LOCK_H

#include <pthread.h>
#include <stdatomic.h>

#include "vm.h"

struct vm_mutex {
	pthread_mutex_t	mtx_m;
	atomic_ulong	mtx_owner;	/* pthread_self() of the holder, or 0 */
};

struct vm_rwlock {
	pthread_rwlock_t rw_l;
	atomic_ulong	rw_writer;	/* pthread_self() of the writer, or 0 */
	atomic_int	rw_readers;	/* read holders */
};

void vm_mutex_init(struct vm_mutex *);
void vm_mutex_destroy(struct vm_mutex *);
void vm_mutex_lock(struct vm_mutex *);
void vm_mutex_unlock(struct vm_mutex *);
bool vm_mutex_owned(struct vm_mutex *);

/* writers are preferred: a stream of faults must not starve upvm_unmap() */
void vm_rwlock_init(struct vm_rwlock *);
void vm_rwlock_destroy(struct vm_rwlock *);
void vm_rwlock_rdlock(struct vm_rwlock *);
void vm_rwlock_wrlock(struct vm_rwlock *);
void vm_rwlock_unlock(struct vm_rwlock *);
bool vm_rwlock_wowned(struct vm_rwlock *);
bool vm_rwlock_held(struct vm_rwlock *);	/* read or write, by anyone */

/*
 * vm_tl_inside > 0: this thread may hold upvm's locks: it is inside an
 * API call or a system call upvm interposes (vmspace_enter), or it is one
 * of upvm's own threads (fault threads, the pageout daemon: always 1).
 * What runs on a signal, such as the page-in before a core dump, looks
 * here before it takes any lock.
 */
extern _Thread_local int vm_tl_inside;

#define VM_ASSERT_LOCKED(m)	VM_ASSERT(vm_mutex_owned(m))
#define VM_ASSERT_WLOCKED(rw)	VM_ASSERT(vm_rwlock_wowned(rw))
#define VM_ASSERT_RLOCKED(rw)	VM_ASSERT(vm_rwlock_held(rw))

#endif /* UPVM_LOCK_H */
