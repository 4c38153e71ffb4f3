/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sys.h: raw system calls for the runtime's own memory.
 *
 * libupvm.so interposes mmap/munmap; the runtime must never recurse into its
 * own interposition or into the application's allocator, so it maps its
 * metadata and buffers with the raw syscall.  Errors come back as -errno
 * (liburing style); errno itself is left alone.
 */
#ifndef UPVM_SYS_H
#define UPVM_SYS_H

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vm.h"

static inline long
sys_ret(long ret)
{
	return ret < 0 ? -errno : ret;
}

/* raw_mmap: returns the address, or a negative errno cast to void * */
static inline void *
raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long ret = syscall(SYS_mmap, addr, len, prot, flags, fd, off);

	return ret == -1 ? (void *)(intptr_t)-errno : (void *)ret;
}

static inline bool
raw_mmap_failed(void *p)
{
	return (uintptr_t)p >= (uintptr_t)-4095;
}

static inline int
raw_munmap(void *addr, size_t len)
{
	return (int)sys_ret(syscall(SYS_munmap, addr, len));
}

static inline int
raw_madvise(void *addr, size_t len, int advice)
{
	return (int)sys_ret(syscall(SYS_madvise, addr, len, advice));
}

static inline int
raw_mprotect(void *addr, size_t len, int prot)
{
	return (int)sys_ret(syscall(SYS_mprotect, addr, len, prot));
}

static inline int
raw_msync(void *addr, size_t len, int flags)
{
	return (int)sys_ret(syscall(SYS_msync, addr, len, flags));
}

/*
 * sys_read / sys_write / sys_pread / sys_pwrite: the system calls with
 * libc's conventions (-1 and errno), never through the preload's read and
 * write (interpose.c): the runtime's own I/O must not come back into it.
 */
static inline ssize_t
sys_read(int fd, void *buf, size_t n)
{
	return (ssize_t)syscall(SYS_read, fd, buf, n);
}

static inline ssize_t
sys_write(int fd, const void *buf, size_t n)
{
	return (ssize_t)syscall(SYS_write, fd, buf, n);
}

static inline ssize_t
sys_pread(int fd, void *buf, size_t n, off_t off)
{
	return (ssize_t)syscall(SYS_pread64, fd, buf, n, off);
}

static inline ssize_t
sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return (ssize_t)syscall(SYS_pwrite64, fd, buf, n, off);
}

/* sys_vm_read: copy len bytes at src, in this process, to dst through
   the kernel (process_vm_readv).  => bytes copied, or -errno */
static inline ssize_t
sys_vm_read(void *dst, const void *src, size_t len)
{
	struct iovec l = { dst, len }, r = { (void *)(uintptr_t)src, len };

	return (ssize_t)sys_ret(syscall(SYS_process_vm_readv, getpid(), &l, 1,
	    &r, 1, 0));
}

static inline pid_t
sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

#endif /* UPVM_SYS_H */
