/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lock.c: thin wrappers over pthread locks that remember their holder, so
 * that the lock claims in comments can be asserted (VM_ASSERT_LOCKED).
 */
#include <pthread.h>

#include "lock.h"

void
vm_mutex_init(struct vm_mutex *m)
{
	pthread_mutex_init(&m->mtx_m, NULL);
	atomic_init(&m->mtx_owner, 0);
}

void
vm_mutex_destroy(struct vm_mutex *m)
{
	VM_ASSERT(atomic_load_explicit(&m->mtx_owner,
	    memory_order_relaxed) == 0);
	pthread_mutex_destroy(&m->mtx_m);
}

void
vm_mutex_lock(struct vm_mutex *m)
{
	pthread_mutex_lock(&m->mtx_m);
	atomic_store_explicit(&m->mtx_owner, pthread_self(),
	    memory_order_relaxed);
}

void
vm_mutex_unlock(struct vm_mutex *m)
{
	VM_ASSERT_LOCKED(m);
	atomic_store_explicit(&m->mtx_owner, 0, memory_order_relaxed);
	pthread_mutex_unlock(&m->mtx_m);
}

bool
vm_mutex_owned(struct vm_mutex *m)
{
	return atomic_load_explicit(&m->mtx_owner, memory_order_relaxed) ==
	    pthread_self();
}

void
vm_rwlock_init(struct vm_rwlock *rw)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&rw->rw_l, &attr);
	pthread_rwlockattr_destroy(&attr);
	atomic_init(&rw->rw_writer, 0);
	atomic_init(&rw->rw_readers, 0);
}

_Thread_local int vm_tl_inside;

void
vm_rwlock_destroy(struct vm_rwlock *rw)
{
	VM_ASSERT(!vm_rwlock_held(rw));
	pthread_rwlock_destroy(&rw->rw_l);
}

void
vm_rwlock_rdlock(struct vm_rwlock *rw)
{
	pthread_rwlock_rdlock(&rw->rw_l);
	atomic_fetch_add_explicit(&rw->rw_readers, 1, memory_order_relaxed);
}

void
vm_rwlock_wrlock(struct vm_rwlock *rw)
{
	pthread_rwlock_wrlock(&rw->rw_l);
	atomic_store_explicit(&rw->rw_writer, pthread_self(),
	    memory_order_relaxed);
}

void
vm_rwlock_unlock(struct vm_rwlock *rw)
{
	if (vm_rwlock_wowned(rw))
		atomic_store_explicit(&rw->rw_writer, 0,
		    memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&rw->rw_readers, 1,
		    memory_order_relaxed);
	pthread_rwlock_unlock(&rw->rw_l);
}

bool
vm_rwlock_wowned(struct vm_rwlock *rw)
{
	return atomic_load_explicit(&rw->rw_writer, memory_order_relaxed) ==
	    pthread_self();
}

bool
vm_rwlock_held(struct vm_rwlock *rw)
{
	return vm_rwlock_wowned(rw) ||
	    atomic_load_explicit(&rw->rw_readers, memory_order_relaxed) > 0;
}
