/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kswap.c: the kernel-swap mode, the kernel's own paging under upvm's
 * budget.
 *
 * ks_setup() makes, once per invocation, a swap file beside upvm's (in the
 * same --swap-dir, region + 256 MiB, our own header instead of mkswap,
 * swapon(2) at the highest priority so that the kernel pages to it first)
 * and a memory cgroup limited to the budget (v1 memory.limit_in_bytes,
 * leaving memsw unlimited; v2 memory.max with memory.swap.max "max").
 * ks_run() forks a child per run that joins the cgroup, maps the region
 * with plain mmap, runs the workload (runner.c) and sends its timings and
 * counters back through a pipe; the parent polls the pipe, calling the
 * caller's tick, and kills the child if the tick says stop.  Under
 * --procs (procs.c) the N processes of a run are bench.c's children
 * instead: each joins the cgroup itself (ks_join), and the parent reads
 * the cgroup's peak (ks_peak_open, ks_peak_read) around the run.
 *
 * Counters are the kernel's: pswpin/pswpout of /proc/vmstat (machine-wide:
 * other swapping on the machine lands in them too), the child's minor plus
 * major faults, and the cgroup's peak usage (v1 max_usage_in_bytes reset to
 * 0 per run; v2 memory.peak, reset per file descriptor where the kernel
 * allows it).  The CPU that paging took is the child's system time (its
 * faults, and the reclaim the cgroup's limit makes it do itself) plus that
 * of the kswapd threads (machine-wide too, in clock ticks), found once in
 * ks_setup(): they last as long as their node.  With N processes paging
 * at once, each counts 1/N of kswapd's CPU and of the machine's swap
 * traffic (ks_set_share).
 *
 * Tear-down must happen whatever happens: ks_teardown() kills a live child,
 * swapoff(2)s and unlinks the file, removes the cgroup, and checks that
 * /proc/swaps no longer lists the file.  ks_emergency() does the same with
 * system calls alone, for a signal handler.  Both do nothing in a child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CG_V1		"/sys/fs/cgroup/memory"
#define CG_V2		"/sys/fs/cgroup"
#define SWAP_EXTRA	(256 * MIB)
#define SWAP_PRIO	32767
#define POLL_MS		100
#define KSWAPD_MAX	64	/* kswapd threads followed (one per node) */

/*
 * The set-up, a singleton owned by the main thread of ks_owner; the signal
 * handler reads it (ks_emergency), so every string is complete before its
 * flag is set.
 */
static struct {
	pid_t	ks_owner;		/* 0: nothing set up */
	int	ks_cgver;		/* 1 or 2 */
	char	ks_swapfile[PATH_MAX];
	char	ks_cgdir[128];
	volatile sig_atomic_t ks_file;	/* the swap file exists */
	volatile sig_atomic_t ks_on;	/* and is swapped on */
	volatile sig_atomic_t ks_cg;	/* the cgroup exists */
	uint64_t ks_swapsize;
	uint64_t ks_budget;
	pid_t	ks_kswapd[KSWAPD_MAX];	/* kswapd threads */
	int	ks_nkswapd;
	long	ks_clk_tck;		/* clock ticks per second */
	char	ks_desc[PATH_MAX * 2 + 128];
} ks;
static volatile sig_atomic_t ks_child;	/* the run's child, 0: none */
static int ks_backing_fd = -1;		/* ks_set_backing() */

void
ks_set_backing(int fd)
{
	ks_backing_fd = fd;
}

/* What the child sends back: one message, then it exits. */
enum { KS_OK, KS_JOIN, KS_MAP, KS_RUN };

struct ks_msg {
	int		km_step;	/* KS_*: where km_error happened */
	int		km_error;
	struct sample	km_before;
	struct sample	km_after;
	struct wl_result km_res;
	uint64_t	km_peak;	/* bytes, 0: unknown */
};

/* cg_write: write val to file name of the cgroup directory dir. */
static int
cg_write(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	size_t len = strlen(val);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
}

/* read_small: the text of a small file, NUL-terminated, into buf. */
static int
read_small(const char *path, char *buf, size_t len)
{
	ssize_t n, off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	while ((size_t)off < len - 1 &&
	    (n = read(fd, buf + off, len - 1 - (size_t)off)) > 0)
		off += n;
	close(fd);
	buf[off] = '\0';
	return 0;
}

/* cg_detect: 2 for cgroup v2 with memory, 1 for v1's memory, else 0. */
static int
cg_detect(void)
{
	char buf[512], *p;

	if (read_small(CG_V2 "/cgroup.controllers", buf, sizeof(buf)) == 0) {
		for (p = strtok(buf, " \n"); p != NULL; p = strtok(NULL, " \n"))
			if (strcmp(p, "memory") == 0)
				return 2;
	}
	if (access(CG_V1 "/memory.limit_in_bytes", F_OK) == 0)
		return 1;
	return 0;
}

/*
 * swap_header: a version 1 swap header on page 0 of fd, as mkswap writes
 * it: the layout of the kernel's union swap_header.
 */
static int
swap_header(int fd, uint64_t size, size_t pagesize)
{
	struct {
		uint32_t version;
		uint32_t last_page;
		uint32_t nr_badpages;
		unsigned char uuid[16];
		char volume_name[16];
	} info = { .version = 1, .volume_name = "upvm-bench" };
	char *page;
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)time(NULL);
	ssize_t n;
	int i;

	if ((page = calloc(1, pagesize)) == NULL)
		return -ENOMEM;
	info.last_page = (uint32_t)(size / pagesize - 1);
	for (i = 0; i < 16; i++)
		info.uuid[i] = (unsigned char)(seed >> (i % 8 * 8) ^
		    (uint64_t)i);
	info.uuid[6] = (info.uuid[6] & 0x0f) | 0x40;	/* version 4 */
	info.uuid[8] = (info.uuid[8] & 0x3f) | 0x80;
	memcpy(page + 1024, &info, sizeof(info));
	memcpy(page + pagesize - 10, "SWAPSPACE2", 10);
	n = pwrite(fd, page, pagesize, 0);
	free(page);
	if (n < 0)
		return -errno;
	if ((size_t)n != pagesize)
		return -EIO;
	return fsync(fd) < 0 ? -errno : 0;
}

/* swap_make: create, fill and swapon(2) the swap file; says why not. */
static int
swap_make(const char *swapdir, char *why, size_t len)
{
	size_t pagesize = (size_t)sysconf(_SC_PAGESIZE);
	char dir[PATH_MAX];
	int fd, error, flags;

	if (realpath(swapdir, dir) == NULL) {
		snprintf(why, len, "a swap directory (--swap-dir %s: %s); give "
		    "an existing directory on a disk", swapdir,
		    strerror(errno));
		return -errno;
	}
	if (snprintf(ks.ks_swapfile, sizeof(ks.ks_swapfile),
	    "%s/upvm-bench-swap.%d", dir, (int)ks.ks_owner) >=
	    (int)sizeof(ks.ks_swapfile)) {
		snprintf(why, len, "a swap directory with a shorter path than "
		    "%s; give another --swap-dir", dir);
		return -ENAMETOOLONG;
	}
	fd = open(ks.ks_swapfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		error = -errno;
		if (error == -EEXIST)
			snprintf(why, len, "a new swap file, but %s exists (left "
			    "by a killed run?); if /proc/swaps does not list "
			    "it, delete it", ks.ks_swapfile);
		else
			snprintf(why, len, "a swap file (%s: %s); give a "
			    "writable --swap-dir", ks.ks_swapfile,
			    strerror(-error));
		return error;
	}
	ks.ks_file = 1;
	if (fchmod(fd, 0600) < 0 ||
	    fallocate(fd, 0, 0, (off_t)ks.ks_swapsize) < 0) {
		error = -errno;
		close(fd);
		snprintf(why, len, "room for a %llu MiB swap file in %s "
		    "(fallocate: %s); free some space or give another "
		    "--swap-dir", (unsigned long long)(ks.ks_swapsize / MIB),
		    dir, strerror(-error));
		return error;
	}
	error = swap_header(fd, ks.ks_swapsize, pagesize);
	close(fd);
	if (error != 0) {
		snprintf(why, len, "a swap file in %s (writing its header: "
		    "%s); give another --swap-dir", dir, strerror(-error));
		return error;
	}
	flags = SWAP_FLAG_PREFER |
	    ((SWAP_PRIO << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
	if (swapon(ks.ks_swapfile, flags) < 0) {
		error = -errno;
		if (error == -EPERM)
			snprintf(why, len, "the right to swapon(2) (%s); run "
			    "as root outside a container, or leave kernel-swap "
			    "out of --mode", strerror(-error));
		else
			snprintf(why, len, "swapon(2) of a file in %s (%s); "
			    "give a --swap-dir on a filesystem that takes swap "
			    "files, such as ext4 or xfs", dir,
			    strerror(-error));
		return error;
	}
	ks.ks_on = 1;
	return 0;
}

/* cg_make: the cgroup, limited to the budget; says why not. */
static int
cg_make(char *why, size_t len)
{
	const char *root = ks.ks_cgver == 2 ? CG_V2 : CG_V1;
	char val[32], ctl[512];
	int error;

	if (ks.ks_cgver == 2 &&
	    read_small(CG_V2 "/cgroup.subtree_control", ctl, sizeof(ctl)) ==
	    0 && strstr(ctl, "memory") == NULL &&
	    (error = cg_write(CG_V2, "cgroup.subtree_control", "+memory")) !=
	    0) {
		snprintf(why, len, "the memory controller for child cgroups "
		    "(%s/cgroup.subtree_control: %s); enable it, or leave "
		    "kernel-swap out of --mode", CG_V2, strerror(-error));
		return error;
	}
	snprintf(ks.ks_cgdir, sizeof(ks.ks_cgdir), "%s/upvm-bench.%d", root,
	    (int)ks.ks_owner);
	if (mkdir(ks.ks_cgdir, 0755) < 0) {
		error = -errno;
		snprintf(why, len, "a memory cgroup of its own (mkdir %s: %s); "
		    "make %s writable, or leave kernel-swap out of --mode",
		    ks.ks_cgdir, strerror(-error), root);
		return error;
	}
	ks.ks_cg = 1;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)ks.ks_budget);
	if (ks.ks_cgver == 1)
		error = cg_write(ks.ks_cgdir, "memory.limit_in_bytes", val);
	else if ((error = cg_write(ks.ks_cgdir, "memory.max", val)) == 0 &&
	    (error = cg_write(ks.ks_cgdir, "memory.swap.max", "max")) ==
	    -ENOENT)
		error = 0;	/* no swap accounting: no swap limit either */
	if (error != 0) {
		snprintf(why, len, "a memory limit on its cgroup (%s: %s); "
		    "check the cgroup mount, or leave kernel-swap out of "
		    "--mode", ks.ks_cgdir, strerror(-error));
		return error;
	}
	return 0;
}

/*
 * kswapd_find: the kernel's kswapd threads ("kswapd0", one per node), by
 * the names in /proc/PID/comm, into ks.ks_kswapd.
 */
static void
kswapd_find(void)
{
	char path[PATH_MAX], comm[32];
	struct dirent *de;
	DIR *d;

	ks.ks_nkswapd = 0;
	ks.ks_clk_tck = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
	if ((d = opendir("/proc")) == NULL)
		return;
	while (ks.ks_nkswapd < KSWAPD_MAX && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		if (read_small(path, comm, sizeof(comm)) == 0 &&
		    strncmp(comm, "kswapd", 6) == 0)
			ks.ks_kswapd[ks.ks_nkswapd++] = atoi(de->d_name);
	}
	closedir(d);
}

/* kswapd_ns: the CPU time (user + system) the kswapd threads took, ns. */
static uint64_t
kswapd_ns(void)
{
	unsigned long long ut, st, ticks = 0;
	char path[64], buf[1024], *p;
	int i;

	for (i = 0; i < ks.ks_nkswapd; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat",
		    (int)ks.ks_kswapd[i]);
		/* utime and stime are fields 14 and 15, after "(comm)" */
		if (read_small(path, buf, sizeof(buf)) != 0 ||
		    (p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		    "%*u %llu %llu", &ut, &st) != 2)
			continue;
		ticks += ut + st;
	}
	return (uint64_t)(ticks * 1000000000ULL /
	    (unsigned long long)ks.ks_clk_tck);
}

/*
 * ks_setup: the swap file and the cgroup of the kernel-swap mode, for
 * regions of region bytes under budget bytes; swapdir is --swap-dir.
 * => 0, or -errno with why filled ("<what>; <what to do>", to follow
 *    "kernel-swap mode needs ") and nothing left behind.
 */
int
ks_setup(size_t region, size_t budget, const char *swapdir, char *why,
    size_t len)
{
	int error;

	if (geteuid() != 0) {
		snprintf(why, len, "root (for swapon(2) and a memory cgroup); "
		    "run upvm-bench as root, or leave kernel-swap out of "
		    "--mode");
		return -EPERM;
	}
	if ((ks.ks_cgver = cg_detect()) == 0) {
		snprintf(why, len, "a memory cgroup (neither %s nor cgroup v2 "
		    "with the memory controller is mounted); mount one, or "
		    "leave kernel-swap out of --mode", CG_V1);
		return -ENOENT;
	}
	ks.ks_owner = getpid();
	ks.ks_budget = budget;
	ks.ks_swapsize = region + SWAP_EXTRA;
	kswapd_find();
	if ((error = swap_make(swapdir, why, len)) != 0 ||
	    (error = cg_make(why, len)) != 0) {
		ks_teardown();
		return error;
	}
	snprintf(ks.ks_desc, sizeof(ks.ks_desc), "cgroup v%d %s limited to "
	    "%llu MiB, swap file %s of %llu MiB at priority %d, CPU of %d "
	    "kswapd thread%s", ks.ks_cgver, ks.ks_cgdir,
	    (unsigned long long)(budget / MIB), ks.ks_swapfile,
	    (unsigned long long)(ks.ks_swapsize / MIB), SWAP_PRIO,
	    ks.ks_nkswapd, ks.ks_nkswapd == 1 ? "" : "s");
	return 0;
}

/* ks_describe: one line on the set-up, or NULL if there is none. */
const char *
ks_describe(void)
{
	return ks.ks_desc[0] != '\0' ? ks.ks_desc : NULL;
}

/* swap_listed: whether /proc/swaps still lists the swap file. */
static bool
swap_listed(void)
{
	char line[PATH_MAX + 128];
	size_t n = strlen(ks.ks_swapfile);
	bool found = false;
	FILE *f;

	if ((f = fopen("/proc/swaps", "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strncmp(line, ks.ks_swapfile, n) == 0 &&
		    (line[n] == ' ' || line[n] == '\t');
	fclose(f);
	return found;
}

/* reap: kill the run's child, if any, and wait for it. */
static void
reap(void)
{
	pid_t pid = ks_child;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	ks_child = 0;
}

/*
 * ks_teardown: undo ks_setup(), whatever part of it was done; safe to
 * call again.  Prints one line for anything it could not undo.
 * => 0, or -EBUSY if the swap file is still on or the cgroup is still
 *    there.
 */
int
ks_teardown(void)
{
	int i, error = 0;

	if (ks.ks_owner == 0 || getpid() != ks.ks_owner)
		return 0;
	reap();
	if (ks.ks_on && swapoff(ks.ks_swapfile) == 0)
		ks.ks_on = 0;
	if (ks.ks_file && (unlink(ks.ks_swapfile) == 0 || errno == ENOENT))
		ks.ks_file = 0;
	/* v1 may still count the exited child for a moment: retry */
	for (i = 0; ks.ks_cg && i < 100; i++) {
		if (rmdir(ks.ks_cgdir) == 0 || errno == ENOENT)
			ks.ks_cg = 0;
		else if (errno == EBUSY)
			nanosleep(&(struct timespec){ 0, 20000000L }, NULL);
		else
			break;
	}
	if (ks.ks_on || swap_listed()) {
		fprintf(stderr, "upvm-bench: swap file %s is still on; run "
		    "'swapoff %s' as root, then delete it\n", ks.ks_swapfile,
		    ks.ks_swapfile);
		error = -EBUSY;
	} else if (ks.ks_file)
		fprintf(stderr, "upvm-bench: cannot delete swap file %s: %s; "
		    "delete it by hand\n", ks.ks_swapfile, strerror(errno));
	if (ks.ks_cg || (ks.ks_cgdir[0] != '\0' &&
	    access(ks.ks_cgdir, F_OK) == 0)) {
		fprintf(stderr, "upvm-bench: cgroup %s is still there; run "
		    "'rmdir %s' as root once its processes are gone\n",
		    ks.ks_cgdir, ks.ks_cgdir);
		error = -EBUSY;
	}
	ks.ks_owner = 0;
	return error;
}

/* ks_emergency: ks_teardown() in system calls alone, for a signal handler. */
void
ks_emergency(void)
{
	pid_t pid = ks_child;

	if (ks.ks_owner == 0 || getpid() != ks.ks_owner)
		return;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (ks.ks_on)
		swapoff(ks.ks_swapfile);
	if (ks.ks_file)
		unlink(ks.ks_swapfile);
	if (ks.ks_cg)
		rmdir(ks.ks_cgdir);
}

/* vmstat: the pswpin and pswpout counters of the whole machine. */
static int
vmstat(uint64_t *in, uint64_t *out)
{
	char buf[16384], *p;

	if (read_small("/proc/vmstat", buf, sizeof(buf)) != 0)
		return -EIO;
	if ((p = strstr(buf, "\npswpin ")) == NULL)
		return -EIO;
	*in = strtoull(p + 8, NULL, 10);
	if ((p = strstr(buf, "\npswpout ")) == NULL)
		return -EIO;
	*out = strtoull(p + 9, NULL, 10);
	return 0;
}

static unsigned ks_share = 1;	/* processes that share kswapd's work */

/* ks_set_share: n processes page at once (--procs): each counts 1/n. */
void
ks_set_share(unsigned n)
{
	ks_share = n > 0 ? n : 1;
}

/*
 * ks_sample: the child's faults and CPU, the CPU of paging (the child's
 * system time and its share of kswapd's) and its share of the machine's
 * swap traffic.
 */
int
ks_sample(struct sample *s)
{
	uint64_t sys;
	int error;

	if ((error = usage_sample(s, &sys)) != 0)
		return error;
	s->s_cpu_ns = sys + kswapd_ns() / ks_share;
	if ((error = vmstat(&s->s_pageins, &s->s_pageouts)) != 0)
		return error;
	s->s_pageins /= ks_share;
	s->s_pageouts /= ks_share;
	return 0;
}

/*
 * ks_peak_open: reset the cgroup's peak usage for this run and return a
 * descriptor that reads it (v2: reset per descriptor, where the kernel
 * can), or -1.
 */
int
ks_peak_open(void)
{
	char path[PATH_MAX];
	int fd;

	if (ks.ks_cgver == 1) {
		cg_write(ks.ks_cgdir, "memory.max_usage_in_bytes", "0");
		snprintf(path, sizeof(path), "%s/memory.max_usage_in_bytes",
		    ks.ks_cgdir);
		return open(path, O_RDONLY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "%s/memory.peak", ks.ks_cgdir);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return open(path, O_RDONLY | O_CLOEXEC);
	if (write(fd, "reset\n", 6) < 0) {
		/* an older kernel: the peak since the cgroup was made */
	}
	return fd;
}

uint64_t
ks_peak_read(int fd)
{
	char buf[64];
	ssize_t n;

	if (fd < 0 || (n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

/*
 * ks_join: move the calling process (a --procs child of the owner) into
 * the cgroup.  => 0 or -errno
 */
int
ks_join(void)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	return cg_write(ks.ks_cgdir, "cgroup.procs", pid);
}

/*
 * child_main: the run of the child: join the cgroup, map, run, report
 * through wfd, exit.  Never returns, never tears anything down, never
 * flushes the parent's stdio.
 */
static void __attribute__((noreturn))
child_main(int wfd, const struct workload *wl, const struct wl_ctx *cin)
{
	struct ks_msg m = { .km_step = KS_OK };
	struct wl_ctx c = *cin;
	char pid[32];
	void *base;
	int fd = -1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ks.ks_owner)
		_exit(1);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if ((m.km_error = cg_write(ks.ks_cgdir, "cgroup.procs", pid)) != 0) {
		m.km_step = KS_JOIN;
		goto out;
	}
	fd = ks_peak_open();
	base = ks_backing_fd >= 0 ? mmap(NULL, c.wc_npages * c.wc_pagesize,
	    PROT_READ | PROT_WRITE, MAP_SHARED, ks_backing_fd, 0) :
	    mmap(NULL, c.wc_npages * c.wc_pagesize, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		m.km_error = -errno;
		m.km_step = KS_MAP;
		goto out;
	}
	c.wc_base = base;
	m.km_error = wl_run(wl, &c, ks_sample, &m.km_before, &m.km_after,
	    NULL, &m.km_res);
	if (m.km_error != 0)
		m.km_step = KS_RUN;
	m.km_peak = ks_peak_read(fd);
	if (fd >= 0)
		close(fd);
	munmap(base, c.wc_npages * c.wc_pagesize);
	if (m.km_error == 0 && ks_backing_fd >= 0 &&
	    m.km_res.wr_bad.wb_page == SIZE_MAX &&
	    (m.km_error = fb_verify(ks_backing_fd, wl, &c,
	    &m.km_res.wr_bad)) != 0)
		m.km_step = KS_RUN;
out:
	write_all(wfd, &m, sizeof(m));
	_exit(0);
}

/*
 * recv_msg: read the child's message from rfd, calling tick every
 * POLL_MS.  => 0, -EPIPE if the child closed the pipe early, or tick's
 *    error.
 */
static int
recv_msg(int rfd, struct ks_msg *m, int (*tick)(void))
{
	char *p = (char *)m;
	size_t got = 0;
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	ssize_t n;
	int error;

	while (got < sizeof(*m)) {
		if (poll(&pfd, 1, POLL_MS) <= 0) {
			if (tick != NULL && (error = tick()) != 0)
				return error;
			continue;
		}
		if ((n = read(rfd, p + got, sizeof(*m) - got)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

/* child_failed: why the child of a run failed, into why. */
static void
child_failed(const struct ks_msg *m, int status, int error, char *why,
    size_t len)
{
	static const char *const steps[] = {
		[KS_OK] = "run", [KS_JOIN] = "join the cgroup",
		[KS_MAP] = "map the region", [KS_RUN] = "run the workload",
	};

	if (error == 0) {
		snprintf(why, len, "the child could not %s: %s",
		    steps[m->km_step], strerror(-m->km_error));
		return;
	}
	if (WIFSIGNALED(status))
		snprintf(why, len, "the child was killed by signal %d%s",
		    WTERMSIG(status), WTERMSIG(status) == SIGKILL ?
		    " (the cgroup's OOM killer?)" : "");
	else
		snprintf(why, len, "the child exited (status %d) without a "
		    "result", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/*
 * ks_run: one run of wl in a child under the cgroup, c as the region's
 * geometry (wc_base unused); tick (may be NULL) about every 100 ms.
 * => 0 with *before, *after, *res and *peak (bytes, 0: unknown) filled;
 *    tick's error (the child killed); -ECHILD or the child's error, with
 *    why filled.
 */
int
ks_run(const struct workload *wl, const struct wl_ctx *c,
    struct sample *before, struct sample *after, int (*tick)(void),
    struct wl_result *res, uint64_t *peak, char *why, size_t len)
{
	struct ks_msg m;
	int fds[2], status = 0, error, e;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		error = -errno;
		snprintf(why, len, "pipe: %s", strerror(-error));
		return error;
	}
	if ((pid = fork()) < 0) {
		error = -errno;
		close(fds[0]);
		close(fds[1]);
		snprintf(why, len, "fork: %s", strerror(-error));
		return error;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], wl, c);
	}
	ks_child = pid;
	close(fds[1]);
	error = recv_msg(fds[0], &m, tick);
	close(fds[0]);
	if (error != 0 && error != -EPIPE)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ks_child = 0;
	/* a terminal's ^C reaches the child too: ask tick before blaming */
	if (error == -EPIPE && tick != NULL && (e = tick()) != 0)
		error = e;
	if (error != 0 && error != -EPIPE)
		return error;
	if (error == -EPIPE || m.km_error != 0) {
		child_failed(&m, status, error, why, len);
		return error == -EPIPE ? -ECHILD : m.km_error;
	}
	*before = m.km_before;
	*after = m.km_after;
	*res = m.km_res;
	*peak = m.km_peak;
	return 0;
}
