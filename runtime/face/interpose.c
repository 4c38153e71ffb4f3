/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * interpose.c: libupvm.so only (never in upvm_core, which the tests link:
 * it would take over their mmap).  A preloaded libupvm.so starts upvm from
 * the UPVM_* environment before main() and routes the program's mmap,
 * mmap64, munmap, msync, mremap, madvise, mprotect, mlock, mlock2 and
 * munlock through hostmm.c, its read and write family past
 * hostmm_file_io, its ftruncate and truncate past hostmm_truncated, and
 * its fork through upvm_fork (upvm's pthread_atfork handlers do the work;
 * upvm_fork tells them whether the fork succeeded, and which child it
 * made).  Everything else (pkey_mprotect, mlockall, vfork, posix_spawn,
 * whose children share the memory until they exec) goes straight to libc.
 *
 * No dlsym anywhere: the real calls are raw system calls (sys.h), so the
 * interposed functions work from the first call, before the constructor
 * ran (jemalloc's own start-up), and never recurse into an allocator.
 * Until upvm runs, hostmm passes every call through.
 *
 * The heap: libupvm.so links jemalloc in whole (its malloc family is
 * exported), so the program's malloc comes from jemalloc, whose extents
 * are mmap()ed through here and whose purges madvise() through here.
 * glibc's malloc would call its internal __mmap, which nothing sees.
 *
 * Its configuration: freed extents keep their pages (dirty_decay_ms:-1).
 * jemalloc otherwise purged a large extent with MADV_DONTNEED as soon as
 * it was freed, even with a decay time set (strace: every free of a
 * python3 bytes object of 16 MiB), and upvm drops what is purged, so the
 * extent's next use faulted every page back in, zero-filled: a python3
 * scan of a 4 GiB file through an mmap in 16 MiB slices under `upvm run
 * --files --budget 1G` took 15-17 s, 8.9 s with no purging (the kernel's
 * run, glibc's malloc keeping the block in its heap, 6.5 s).  glibc's
 * heap keeps a freed block too; under a budget the pages a program no
 * longer uses are paged out like any other.  MALLOC_CONF (or
 * /etc/malloc.conf) overrides it, as jemalloc reads them after this.
 */
/* the headers would rename mmap to mmap64: we define both */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coredump.h"
#include "hostmm.h"
#include "log.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vm.h"

/* jemalloc reads it at its start-up (see above) */
const char *malloc_conf = "dirty_decay_ms:-1";

static struct upvm_config ip_cfg;	/* as started */

UPVM_API void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return hostmm_mmap(addr, len, prot, flags, fd, off);
}

UPVM_API void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return hostmm_mmap(addr, len, prot, flags, fd, off);
}

UPVM_API pid_t
fork(void)
{
	return upvm_fork();
}

UPVM_API int
munmap(void *addr, size_t len)
{
	return hostmm_munmap(addr, len);
}

UPVM_API int
msync(void *addr, size_t len, int flags)
{
	return hostmm_msync(addr, len, flags);
}

/*
 * read(2) and write(2) beside file regions (hostmm.h, hostmm_file_io):
 * with files managed, the range a call reads or writes of a file that a
 * region maps is written back first and, for a write, dropped from the
 * regions after; a call on anything else costs one check.  The calls are
 * raw system calls, so libc's internal ones (stdio's) are not seen.
 */
static off_t
ip_pos(int fd)
{
	return (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);
}

static size_t
ip_iovlen(const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

/* ip_rw: one read or write of len bytes at off (-1: the current
   position), done by do_io */
static ssize_t
ip_rw(int fd, off_t off, size_t len, bool write, long nr, long a1, long a2,
    long a3, long a4, long a5)
{
	off_t pos = off;
	ssize_t r;

	if (!hostmm_file_io_wanted(fd))
		return (ssize_t)syscall(nr, fd, a1, a2, a3, a4, a5);
	if (pos < 0)
		pos = ip_pos(fd);
	if (pos >= 0)
		hostmm_file_io(fd, (uint64_t)pos, len, false);
	r = (ssize_t)syscall(nr, fd, a1, a2, a3, a4, a5);
	if (write && r > 0) {
		if (off < 0)
			pos = ip_pos(fd) - r;	/* O_APPEND wrote at the end */
		if (pos >= 0)
			hostmm_file_io(fd, (uint64_t)pos, (uint64_t)r, true);
	}
	return r;
}

/* ip_read: ip_rw of a read into [lo, hi), announced while it runs if it
   is a direct read the wp protocol must not miss (hostmm_dio_begin) */
static ssize_t
ip_read(int fd, off_t off, size_t len, long nr, long a1, long a2, long a3,
    long a5, uintptr_t lo, uintptr_t hi)
{
	int dio = hostmm_dio_begin(fd, lo, hi);
	ssize_t r;

	r = ip_rw(fd, off, len, false, nr, a1, a2, a3, 0, a5);
	hostmm_dio_end(dio, lo, hi);
	return r;
}

/* ip_iovspan: the lowest and highest byte the iovecs cover */
static void
ip_iovspan(const struct iovec *iov, int n, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t l = UINTPTR_MAX, h = 0, b;

	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len == 0)
			continue;
		b = (uintptr_t)iov[i].iov_base;
		l = MIN(l, b);
		h = MAX(h, b + iov[i].iov_len);
	}
	*lo = h == 0 ? 0 : l;
	*hi = h;
}

/* ftruncate and truncate: the pages of file regions past the new end go
   (hostmm_truncated), as the kernel unmaps them */
static int
ip_truncated(int r, const struct stat *st, bool ok, off_t len)
{
	int error = errno;

	if (r == 0 && ok && S_ISREG(st->st_mode) && len >= 0)
		hostmm_truncated(st->st_dev, st->st_ino, (uint64_t)len);
	errno = error;
	return r;
}

UPVM_API int
ftruncate(int fd, off_t len)
{
	struct stat st;
	int r = (int)syscall(SYS_ftruncate, fd, len);

	if (r != 0 || !hostmm_files_mapped())
		return r;
	return ip_truncated(r, &st, fstat(fd, &st) == 0, len);
}

UPVM_API int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

UPVM_API int
truncate(const char *path, off_t len)
{
	struct stat st;
	int r = (int)syscall(SYS_truncate, path, len);

	if (r != 0 || !hostmm_files_mapped())
		return r;
	return ip_truncated(r, &st, stat(path, &st) == 0, len);
}

UPVM_API int
truncate64(const char *path, off_t len)
{
	return truncate(path, len);
}

UPVM_API ssize_t
read(int fd, void *buf, size_t n)
{
	return ip_read(fd, -1, n, SYS_read, (long)buf, (long)n, 0, 0,
	    (uintptr_t)buf, (uintptr_t)buf + n);
}

UPVM_API ssize_t
write(int fd, const void *buf, size_t n)
{
	return ip_rw(fd, -1, n, true, SYS_write, (long)buf, (long)n, 0, 0, 0);
}

UPVM_API ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	return ip_read(fd, off, n, SYS_pread64, (long)buf, (long)n, (long)off,
	    0, (uintptr_t)buf, (uintptr_t)buf + n);
}

UPVM_API ssize_t
pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

UPVM_API ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return ip_rw(fd, off, n, true, SYS_pwrite64, (long)buf, (long)n,
	    (long)off, 0, 0);
}

UPVM_API ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

UPVM_API ssize_t
readv(int fd, const struct iovec *iov, int n)
{
	uintptr_t lo, hi;

	ip_iovspan(iov, n, &lo, &hi);
	return ip_read(fd, -1, ip_iovlen(iov, n), SYS_readv, (long)iov, n, 0,
	    0, lo, hi);
}

UPVM_API ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	return ip_rw(fd, -1, ip_iovlen(iov, n), true, SYS_writev, (long)iov,
	    n, 0, 0, 0);
}

UPVM_API ssize_t
preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	uintptr_t lo, hi;

	ip_iovspan(iov, n, &lo, &hi);
	return ip_read(fd, off, ip_iovlen(iov, n), SYS_preadv, (long)iov, n,
	    (long)off, 0, lo, hi);
}

UPVM_API ssize_t
preadv64(int fd, const struct iovec *iov, int n, off_t off)
{
	return preadv(fd, iov, n, off);
}

UPVM_API ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	return ip_rw(fd, off, ip_iovlen(iov, n), true, SYS_pwritev,
	    (long)iov, n, (long)off, 0, 0);
}

UPVM_API ssize_t
pwritev64(int fd, const struct iovec *iov, int n, off_t off)
{
	return pwritev(fd, iov, n, off);
}

UPVM_API ssize_t
preadv2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	uintptr_t lo, hi;

	ip_iovspan(iov, n, &lo, &hi);
	return ip_read(fd, off, ip_iovlen(iov, n), SYS_preadv2, (long)iov, n,
	    (long)off, flags, lo, hi);
}

UPVM_API ssize_t
pwritev2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	return ip_rw(fd, off, ip_iovlen(iov, n), true, SYS_pwritev2,
	    (long)iov, n, (long)off, 0, flags);
}

UPVM_API void *
mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	void *newaddr = NULL;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		newaddr = va_arg(ap, void *);
		va_end(ap);
	}
	return hostmm_mremap(old, oldlen, newlen, flags, newaddr);
}

UPVM_API int
madvise(void *addr, size_t len, int advice)
{
	return hostmm_madvise(addr, len, advice);
}

UPVM_API int
mprotect(void *addr, size_t len, int prot)
{
	return hostmm_mprotect(addr, len, prot);
}

UPVM_API int
mlock(const void *addr, size_t len)
{
	return hostmm_mlock(addr, len, 0);
}

UPVM_API int
mlock2(const void *addr, size_t len, unsigned int flags)
{
	return hostmm_mlock(addr, len, flags);
}

UPVM_API int
munlock(const void *addr, size_t len)
{
	return hostmm_munlock(addr, len);
}

/*
 * jemalloc's fork handlers (linked in whole, hidden in this library):
 * ip_fork_touch runs them once while upvm's fault threads still serve
 * faults, so that every page of allocator metadata they lock and unlock
 * is resident when the real ones run during fork (upvm.c, upvm_fork_touch).
 */
void je_jemalloc_prefork(void);
void je_jemalloc_postfork_parent(void);

static void
ip_fork_touch(void)
{
	je_jemalloc_prefork();
	je_jemalloc_postfork_parent();
}

/*
 * ip_stats: the summary at exit (UPVM_STATS): "-" on stderr, else JSON
 * in a file ("%p" in its name: the pid).  "-" writes to a copy of stderr
 * taken at start (ip_stats_fd): sort(1) and other gnulib programs close
 * their stderr in an atexit handler of their own, which runs before
 * ours, so the summary went nowhere.
 */
static int ip_stats_fd = -1;

static void
ip_stats(void)
{
	struct upvm_stats st;
	char path[UPVM_PATH_MAX + 16];
	const char *pct;
	FILE *f;
	int fd;

	if (upvm_stats(&st) != 0)
		return;
	if (strcmp(ip_cfg.stats_path, "-") == 0) {
		fd = ip_stats_fd >= 0 ? ip_stats_fd : 2;
		dprintf(fd, "upvm: pid %d: "
		    "%llu faults, %llu pages "
		    "resolved, peak resident %llu MiB of a %llu MiB budget, "
		    "%llu pages out (%llu writes), %llu in (%llu reads), %llu "
		    "of them from files and %llu to files, %llu "
		    "dropped clean, %llu swap full, %llu stalls, %llu I/O "
		    "errors; upvm's "
		    "threads %.2f s CPU (faults %.2f, pageout %.2f), %llu "
		    "reads in flight at most\n",
		    (int)getpid(), (unsigned long long)st.faults,
		    (unsigned long long)st.pages_resolved,
		    (unsigned long long)(st.resident_peak * PAGE_SIZE >> 20),
		    (unsigned long long)(st.budget_pages * PAGE_SIZE >> 20),
		    (unsigned long long)st.pageouts,
		    (unsigned long long)st.pageout_ios,
		    (unsigned long long)st.pageins,
		    (unsigned long long)st.pagein_ios,
		    (unsigned long long)st.file_reads,
		    (unsigned long long)st.file_writes,
		    (unsigned long long)st.clean_drops,
		    (unsigned long long)st.swap_full,
		    (unsigned long long)st.stalls,
		    (unsigned long long)st.io_errors,
		    (double)(st.cpu_fault_ns + st.cpu_pageout_ns +
		    st.cpu_io_ns) / 1e9,
		    (double)st.cpu_fault_ns / 1e9,
		    (double)st.cpu_pageout_ns / 1e9,
		    (unsigned long long)st.reads_inflight_max);
		for (int n = 0; n < st.numa_nodes && n < UPVM_NUMA_MAX; n++)
			dprintf(fd, "upvm: pid %d: node %d: %llu pages "
			    "resident, %llu placed, %llu demoted, %llu "
			    "promoted, budget %llu\n", (int)getpid(), n,
			    (unsigned long long)st.node_resident[n],
			    (unsigned long long)st.node_placed[n],
			    (unsigned long long)st.node_demoted[n],
			    (unsigned long long)st.node_promoted[n],
			    (unsigned long long)st.node_budget[n]);
		return;
	}
	/* "%p" in the name is the pid: one file per process of a tree */
	if ((pct = strstr(ip_cfg.stats_path, "%p")) != NULL)
		snprintf(path, sizeof(path), "%.*s%d%s",
		    (int)(pct - ip_cfg.stats_path), ip_cfg.stats_path,
		    (int)getpid(), pct + 2);
	else
		snprintf(path, sizeof(path), "%s", ip_cfg.stats_path);
	if ((f = fopen(path, "w")) == NULL) {
		upvm_log(LOG_ERR, "cannot write the statistics to %s: %s",
		    path, strerror(errno));
		return;
	}
	fprintf(f, "{\"pid\": %d, \"faults\": %llu, \"faults_resolved\": "
	    "%llu, \"faults_woken\": %llu, \"faults_unmapped\": %llu, "
	    "\"pages_resolved\": %llu, \"pages_prefetched\": %llu, "
	    "\"resident_peak_pages\": %llu, \"budget_pages\": %llu, "
	    "\"pageouts\": %llu, \"pageout_ios\": %llu, \"pageins\": %llu, "
	    "\"pagein_ios\": %llu, \"file_reads\": %llu, "
	    "\"file_writes\": %llu, \"flushes\": %llu, "
	    "\"clean_drops\": %llu, \"rewritten\": %llu, "
	    "\"reactivations\": %llu, \"ra_probed\": %llu, "
	    "\"ra_hits\": %llu, \"ra_window\": %u, \"ra_ring\": %llu, "
	    "\"copied_out\": %llu, "
	    "\"swap_full\": %llu, \"swap_used_pages\": %llu, "
	    "\"stalls\": %llu, \"io_errors\": %llu, "
	    "\"poisoned\": %llu, \"regions\": %llu, \"meta_bytes\": %llu, "
	    "\"cpu_fault_ns\": %llu, \"cpu_pageout_ns\": %llu, "
	    "\"cpu_io_ns\": %llu, \"reads_inflight_max\": %llu, "
	    "\"fault_helps\": %llu, \"move_recounts\": %llu, \"nodes\": [",
	    (int)getpid(), (unsigned long long)st.faults,
	    (unsigned long long)st.faults_resolved,
	    (unsigned long long)st.faults_woken,
	    (unsigned long long)st.faults_unmapped,
	    (unsigned long long)st.pages_resolved,
	    (unsigned long long)st.pages_prefetched,
	    (unsigned long long)st.resident_peak,
	    (unsigned long long)st.budget_pages,
	    (unsigned long long)st.pageouts,
	    (unsigned long long)st.pageout_ios,
	    (unsigned long long)st.pageins,
	    (unsigned long long)st.pagein_ios,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_writes,
	    (unsigned long long)st.flushes,
	    (unsigned long long)st.clean_drops,
	    (unsigned long long)st.rewritten,
	    (unsigned long long)st.reactivations,
	    (unsigned long long)st.ra_probed,
	    (unsigned long long)st.ra_hits, st.ra_window,
	    (unsigned long long)st.ra_ring,
	    (unsigned long long)st.copied_out,
	    (unsigned long long)st.swap_full,
	    (unsigned long long)st.swap_used_pages,
	    (unsigned long long)st.stalls,
	    (unsigned long long)st.io_errors,
	    (unsigned long long)st.poisoned,
	    (unsigned long long)st.regions,
	    (unsigned long long)st.meta_bytes,
	    (unsigned long long)st.cpu_fault_ns,
	    (unsigned long long)st.cpu_pageout_ns,
	    (unsigned long long)st.cpu_io_ns,
	    (unsigned long long)st.reads_inflight_max,
	    (unsigned long long)st.fault_helps,
	    (unsigned long long)st.move_recounts);
	for (int n = 0; n < st.numa_nodes && n < UPVM_NUMA_MAX; n++)
		fprintf(f, "%s{\"node\": %d, \"resident\": %llu, \"placed\": "
		    "%llu, \"demoted\": %llu, \"promoted\": %llu, "
		    "\"budget\": %llu}",
		    n > 0 ? ", " : "", n,
		    (unsigned long long)st.node_resident[n],
		    (unsigned long long)st.node_placed[n],
		    (unsigned long long)st.node_demoted[n],
		    (unsigned long long)st.node_promoted[n],
		    (unsigned long long)st.node_budget[n]);
	/* pages per resolution, buckets as upvm.h says */
	fputs("], \"cluster_hist\": [", f);
	for (int k = 0; k < UPVM_CLUSTER_BUCKETS; k++)
		fprintf(f, "%s%llu", k > 0 ? ", " : "",
		    (unsigned long long)st.cluster_hist[k]);
	fputs("]}\n", f);
	fclose(f);
}

/*
 * ip_init: start upvm from the environment before main(), when libupvm.so
 * is preloaded.  (A program that links it for the API starts upvm itself;
 * until it does, every call above is the plain system call.)  A bad
 * environment is the user's error: one line, and the program does not
 * run, as `upvm run` would refuse it.
 */
__attribute__((constructor)) static void
ip_init(void)
{
	const char *preload = getenv("LD_PRELOAD");
	int error;

	if (preload == NULL || strstr(preload, "libupvm.so") == NULL)
		return;
	/*
	 * jemalloc registers its fork handlers at its first allocation: make
	 * that happen before upvm registers its own, so that in a child of
	 * fork jemalloc's locks are usable again by the time upvm's handler
	 * starts threads (pthread_create allocates).
	 */
	free(malloc(1));
	if ((error = upvm_config_from_env(&ip_cfg)) != 0 ||
	    (error = upvm_init(&ip_cfg)) != 0) {
		upvm_log(LOG_ERR, "libupvm.so: not starting %s: %s (see "
		    "above); fix the UPVM_* environment", program_invocation_name,
		    strerror(-error));
		_exit(127);
	}
	hostmm_enable();
	upvm_set_fork_touch(ip_fork_touch);
	coredump_install();
	if (strcmp(ip_cfg.stats_path, "-") == 0)
		ip_stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (ip_cfg.stats_path[0] != '\0')
		(void)atexit(ip_stats);
	/* shared file regions reach their files when the program exits
	   (not when it is killed: then what was not written is lost) */
	if (ip_cfg.files)
		(void)atexit(hostmm_exit_writeback);
	if (ip_cfg.daemon[0] != '\0')
		(void)atexit(hostmm_exit_bye);
}
