/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * interpose.c: libupvm.so only (never in upvm_core, which the tests link:
 * it would take over their mmap).  A preloaded libupvm.so starts upvm from
 * the UPVM_* environment before main() and routes the program's mmap,
 * mmap64, munmap, msync, mremap, madvise, mlock, mlock2 and munlock through
 * hostmm.c.  Everything else (mprotect, mlockall, fork) goes straight to
 * libc: the registration of a range outlives mprotect, and fork is handled
 * by upvm's pthread_atfork handlers.
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
#include <unistd.h>

#include "hostmm.h"
#include "log.h"
#include "upvm.h"
#include "vm.h"

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

/* ip_stats: the summary at exit (UPVM_STATS): "-" on stderr, else JSON
   in a file ("%p" in its name: the pid) */
static void
ip_stats(void)
{
	struct upvm_stats st;
	char path[UPVM_PATH_MAX + 16];
	const char *pct;
	FILE *f;

	if (upvm_stats(&st) != 0)
		return;
	if (strcmp(ip_cfg.stats_path, "-") == 0) {
		fprintf(stderr, "upvm: pid %d: %llu faults, %llu pages "
		    "resolved, peak resident %llu MiB of a %llu MiB budget, "
		    "%llu pages out (%llu writes), %llu in (%llu reads), %llu "
		    "of them from files and %llu to files, %llu "
		    "dropped clean, %llu swap full, %llu I/O errors; upvm's "
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
		    (unsigned long long)st.io_errors,
		    (double)(st.cpu_fault_ns + st.cpu_pageout_ns) / 1e9,
		    (double)st.cpu_fault_ns / 1e9,
		    (double)st.cpu_pageout_ns / 1e9,
		    (unsigned long long)st.reads_inflight_max);
		for (int n = 0; n < st.numa_nodes && n < UPVM_NUMA_MAX; n++)
			fprintf(stderr, "upvm: pid %d: node %d: %llu pages "
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
	fprintf(f, "{\"pid\": %d, \"faults\": %llu, \"pages_resolved\": %llu, "
	    "\"resident_peak_pages\": %llu, \"budget_pages\": %llu, "
	    "\"pageouts\": %llu, \"pageout_ios\": %llu, \"pageins\": %llu, "
	    "\"pagein_ios\": %llu, \"file_reads\": %llu, "
	    "\"file_writes\": %llu, \"clean_drops\": %llu, "
	    "\"reactivations\": %llu, \"swap_full\": %llu, \"io_errors\": %llu, "
	    "\"poisoned\": %llu, \"regions\": %llu, \"meta_bytes\": %llu, "
	    "\"cpu_fault_ns\": %llu, \"cpu_pageout_ns\": %llu, "
	    "\"reads_inflight_max\": %llu, \"nodes\": [",
	    (int)getpid(), (unsigned long long)st.faults,
	    (unsigned long long)st.pages_resolved,
	    (unsigned long long)st.resident_peak,
	    (unsigned long long)st.budget_pages,
	    (unsigned long long)st.pageouts,
	    (unsigned long long)st.pageout_ios,
	    (unsigned long long)st.pageins,
	    (unsigned long long)st.pagein_ios,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_writes,
	    (unsigned long long)st.clean_drops,
	    (unsigned long long)st.reactivations,
	    (unsigned long long)st.swap_full,
	    (unsigned long long)st.io_errors,
	    (unsigned long long)st.poisoned,
	    (unsigned long long)st.regions,
	    (unsigned long long)st.meta_bytes,
	    (unsigned long long)st.cpu_fault_ns,
	    (unsigned long long)st.cpu_pageout_ns,
	    (unsigned long long)st.reads_inflight_max);
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
	if (ip_cfg.stats_path[0] != '\0')
		(void)atexit(ip_stats);
	/* shared file regions reach their files when the program exits
	   (not when it is killed: then what was not written is lost) */
	if (ip_cfg.files)
		(void)atexit(hostmm_exit_writeback);
}
