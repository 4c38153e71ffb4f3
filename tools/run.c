/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * run.c: `upvm run [options] -- PROGRAM [ARGS...]`: run an unmodified
 * program with libupvm.so preloaded.
 *
 * The options become UPVM_* variables (so that children and exec'ed
 * programs, which inherit them with LD_PRELOAD, stay under upvm); the
 * whole configuration is then checked by starting upvm here once, with
 * the same swap directory, before the program starts: a bad option, a
 * swap directory that cannot take a file, or a missing program end
 * `upvm run` with one line and status 2 (127 for the program), and the
 * program never runs.  upvm run waits for the program and exits with its
 * status, or 128 + the signal that ended it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dproto.h"
#include "run.h"
#include "upvm.h"

#ifndef UPVM_LIBDIR
#define UPVM_LIBDIR	"/usr/local/lib"
#endif

const char *run_prog = "upvm run";

void
run_die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", run_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void
run_usage(FILE *f)
{
	fputs(
"usage: upvm run [options] -- PROGRAM [ARGS...]\n"
"Run PROGRAM with its large anonymous memory (and its malloc heap) paged\n"
"by upvm within a budget.  Its children and exec'ed programs stay under\n"
"upvm.  Exits with PROGRAM's status, or 128 + the signal that ended it.\n"
"\n"
"  --budget SIZE      resident memory allowed, K/M/G/T or a % of RAM\n"
"                     (UPVM_BUDGET; none: nothing pages out)\n"
"  --swap DIR|FILE    where the private swap file goes (UPVM_SWAP;\n"
"                     $TMPDIR, else /var/tmp)\n"
"  --swap memcached://HOST:PORT[,HOST:PORT...][?replicas=N]\n"
"                     page to the memory of memcached servers instead,\n"
"                     encrypted and authenticated\n"
"  --swap-max SIZE    cap on the swap file (UPVM_SWAP_MAX; 64G)\n"
"  --swap-tier SPEC   a second tier, used when the first is full: a\n"
"                     memcached:// store after a swap directory, or a\n"
"                     directory after a memcached:// store\n"
"                     (UPVM_SWAP_TIER; each tier --swap-max)\n"
"  --swap-encrypt     encrypt and authenticate the swap file's pages\n"
"                     (UPVM_SWAP_ENCRYPT=1; AES-256-GCM, a random key)\n"
"  --threshold SIZE   smallest anonymous mapping managed (UPVM_THRESHOLD;\n"
"                     1M)\n"
"  --files            manage mappings of regular files of at least\n"
"                     --threshold too, read from and written back to the\n"
"                     file by upvm (UPVM_FILES)\n"
"  --cluster PAGES    pages resolved around a random fault, a power of\n"
"                     two 1..512 (UPVM_CLUSTER; 16)\n"
"  --readahead PAGES  most swapped-out pages read around a random\n"
"                     pagein, a power of two 1..64 (UPVM_READAHEAD; 8)\n"
"  --inactive PCT     percent of the budget kept as inactive pages,\n"
"                     0..50 (UPVM_INACTIVE; 0: none; move protocol only)\n"
"  --flush SECONDS    write shared file mappings back every SECONDS,\n"
"                     0..3600, 0: only at pageout, msync, munmap and exit\n"
"                     (UPVM_FLUSH; 30)\n"
"  --pageout PROTO    auto, move or wp (UPVM_PAGEOUT; auto)\n"
"  --numa POLICY      NUMA placement: none, local, bind:N, preferred:N,\n"
"                     interleave[:NODES], nearest (UPVM_NUMA; local)\n"
"  --node-budget LIST resident memory per node, as 0=1G,1=4G; a full\n"
"                     node demotes to the nearest with room, then swap\n"
"                     (UPVM_NODE_BUDGET)\n"
"  --numa-promote     a demoted unit written again moves back to the\n"
"                     writer's node (UPVM_NUMA_PROMOTE=1; needs\n"
"                     --node-budget)\n"
"  --stats[=FILE]     a summary at exit on stderr, or JSON in FILE (%p in\n"
"                     FILE: the pid, a file per process)\n"
"                     (UPVM_STATS)\n"
"  --daemon[=SOCK]    attach to upvmd (socket SOCK, default\n"
"                     " DPROTO_DEFAULT_SOCKET "): one budget for\n"
"                     every process attached, children included;\n"
"                     --budget then caps this program's share\n"
"                     (UPVM_DAEMON)\n"
"  -v, --verbose      log what upvm does (UPVM_LOG=info)\n"
"  -h, --help         this text\n"
"\n"
"The same variables work with LD_PRELOAD=libupvm.so directly; see upvm(1).\n",
	    f);
}

/* run_library: libupvm.so of this build tree, else the installed one */
static void
run_library(char *buf, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0 && n < PATH_MAX - 32) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			strcpy(slash, "/../libupvm.so");
			snprintf(buf, len, "%s", exe);
			if (access(buf, R_OK) == 0 && realpath(buf, exe) !=
			    NULL && strlen(exe) < len) {
				strcpy(buf, exe);
				return;
			}
		}
	}
	snprintf(buf, len, "%s/libupvm.so", UPVM_LIBDIR);
	if (access(buf, R_OK) != 0)
		run_die(2, "cannot find libupvm.so (looked next to this "
		    "program and in %s); install upvm or run it from its "
		    "build tree", UPVM_LIBDIR);
}

/* run_find: PROGRAM exists and is executable (as execvp would find it) */
static bool
run_find(const char *prog)
{
	char path[PATH_MAX];
	const char *dirs, *end;
	size_t n;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if ((dirs = getenv("PATH")) == NULL)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	for (; *dirs != '\0'; dirs = *end == ':' ? end + 1 : end) {
		end = strchrnul(dirs, ':');
		n = (size_t)(end - dirs);
		if (snprintf(path, sizeof(path), "%.*s/%s", (int)n,
		    n == 0 ? "." : dirs, prog) < (int)sizeof(path) &&
		    access(path, X_OK) == 0)
			return true;
	}
	return false;
}

static volatile pid_t run_child;

static void
run_forward(int sig)
{
	if (run_child > 0)
		(void)kill(run_child, sig);
}

static void
run_setenv(const char *name, const char *value)
{
	if (setenv(name, value, 1) != 0)
		run_die(2, "cannot set %s: %s", name, strerror(errno));
}

/*
 * run_swap_dir: a swap directory's path gets a trailing '/', which makes
 * it a directory for good (swp_open): a program started later, after the
 * directory was removed, then says so rather than making a file of its
 * name.
 */
static void
run_swap_dir(void)
{
	const char *p = getenv("UPVM_SWAP");
	struct stat st;
	char *slash;

	if (p == NULL || *p == '\0' || p[strlen(p) - 1] == '/' ||
	    stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	if (asprintf(&slash, "%s/", p) < 0)
		run_die(2, "out of memory");
	run_setenv("UPVM_SWAP", slash);
	free(slash);
}

/*
 * run_check: start upvm here with the configuration the program will get
 * and stop it: every error the program's upvm would meet, met now.  A
 * swap path given without a budget is tried too (with the smallest
 * budget), so that a bad one is not silently ignored.
 */
static void
run_check(void)
{
	struct upvm_config cfg;

	if (upvm_config_from_env(&cfg) != 0)
		exit(2);		/* the line is out */
	cfg.stats_path[0] = '\0';
	if (cfg.swap_path[0] != '\0' && cfg.budget == 0 &&
	    cfg.node_budget[0] == '\0')
		cfg.budget = 4u << 20;
	if (upvm_init(&cfg) != 0)
		exit(2);
	(void)upvm_fini();
}

int
run_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "budget", required_argument, NULL, 'b' },
		{ "swap", required_argument, NULL, 's' },
		{ "swap-max", required_argument, NULL, 'm' },
		{ "swap-encrypt", no_argument, NULL, 'E' },
		{ "swap-tier", required_argument, NULL, 'T' },
		{ "threshold", required_argument, NULL, 't' },
		{ "files", no_argument, NULL, 'F' },
		{ "cluster", required_argument, NULL, 'c' },
		{ "readahead", required_argument, NULL, 'R' },
		{ "inactive", required_argument, NULL, 'I' },
		{ "flush", required_argument, NULL, 'W' },
		{ "pageout", required_argument, NULL, 'p' },
		{ "numa", required_argument, NULL, 'N' },
		{ "node-budget", required_argument, NULL, 'B' },
		{ "numa-promote", no_argument, NULL, 'P' },
		{ "stats", optional_argument, NULL, 'S' },
		{ "daemon", optional_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char lib[PATH_MAX], *preload;
	const char *old;
	int c, status;
	pid_t pid;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'b': run_setenv("UPVM_BUDGET", optarg); break;
		case 's': run_setenv("UPVM_SWAP", optarg); break;
		case 'm': run_setenv("UPVM_SWAP_MAX", optarg); break;
		case 'E': run_setenv("UPVM_SWAP_ENCRYPT", "1"); break;
		case 'T': run_setenv("UPVM_SWAP_TIER", optarg); break;
		case 't': run_setenv("UPVM_THRESHOLD", optarg); break;
		case 'F': run_setenv("UPVM_FILES", "1"); break;
		case 'c': run_setenv("UPVM_CLUSTER", optarg); break;
		case 'R': run_setenv("UPVM_READAHEAD", optarg); break;
		case 'I': run_setenv("UPVM_INACTIVE", optarg); break;
		case 'W': run_setenv("UPVM_FLUSH", optarg); break;
		case 'p': run_setenv("UPVM_PAGEOUT", optarg); break;
		case 'N': run_setenv("UPVM_NUMA", optarg); break;
		case 'B': run_setenv("UPVM_NODE_BUDGET", optarg); break;
		case 'P': run_setenv("UPVM_NUMA_PROMOTE", "1"); break;
		case 'S':
			run_setenv("UPVM_STATS", optarg != NULL ? optarg : "-");
			break;
		case 'D':
			run_setenv("UPVM_DAEMON", optarg != NULL ? optarg :
			    DPROTO_DEFAULT_SOCKET);
			break;
		case 'v': run_setenv("UPVM_LOG", "info"); break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			run_die(2, "unknown option %s, or it lacks its value; "
			    "see upvm run --help", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		run_die(2, "no program given; usage: upvm run [options] -- "
		    "PROGRAM [ARGS...]");
	if (!run_find(argv[optind]))
		run_die(127, "%s: no such program (or not executable); check "
		    "the name and PATH", argv[optind]);
	run_library(lib, sizeof(lib));
	run_swap_dir();
	run_check();
	old = getenv("LD_PRELOAD");
	if (asprintf(&preload, "%s%s%s", lib, old != NULL && *old != '\0' ?
	    ":" : "", old != NULL ? old : "") < 0)
		run_die(2, "out of memory");
	run_setenv("LD_PRELOAD", preload);
	free(preload);
	fflush(NULL);
	if ((pid = fork()) < 0)
		run_die(2, "cannot fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "upvm run: cannot run %s: %s\n", argv[optind],
		    strerror(errno));
		_exit(127);
	}
	/* the terminal's signals reach the program too: it decides; the
	   ones sent to upvm run alone are passed on */
	run_child = pid;
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, run_forward);
	signal(SIGHUP, run_forward);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			run_die(2, "waiting for %s: %s", argv[optind],
			    strerror(errno));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
