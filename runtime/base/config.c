/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.c: the configuration: defaults, UPVM_CONF and UPVM_* parsing,
 * validation.  One table describes every key; parsing, validation and the
 * error messages all come from it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fault.h"
#include "policy.h"
#include "log.h"
#include "vm.h"

extern char **environ;

enum conf_type { CT_UINT, CT_POW2, CT_BOOL, CT_LOG, CT_SIZE, CT_PCTSIZE,
    CT_PATH, CT_ENUM, CT_NUMA, CT_BUDGETS };

struct conf_key {
	const char	*ck_key;	/* in UPVM_CONF */
	const char	*ck_env;	/* the single variable */
	enum conf_type	 ck_type;
	size_t		 ck_off;	/* in struct upvm_config */
	unsigned	 ck_min, ck_max;
	const char	*ck_what;	/* for error messages */
	const char *const *ck_names;	/* CT_ENUM: value i is ck_names[i] */
};

#define KEY(k, e, t, f, lo, hi, what)					\
	{ k, e, t, offsetof(struct upvm_config, f), lo, hi, what, NULL }
#define ENUMKEY(k, e, f, names, what)					\
	{ k, e, CT_ENUM, offsetof(struct upvm_config, f), 0,		\
	  nitems(names) - 1, what, names }

/* indexed by UPVM_PAGEOUT_* */
static const char *const pageout_names[] = { "auto", "move", "wp" };

static const struct conf_key conf_keys[] = {
	KEY("cluster", "UPVM_CLUSTER", CT_POW2, cluster_pages, 1, 512,
	    "a power of two from 1 to 512 (pages)"),
	KEY("seq_max", "UPVM_SEQ_MAX", CT_POW2, seq_max_pages, 16,
	    FAULT_MAX_CLUSTER, "a power of two from 16 to 1024 (pages)"),
	KEY("readahead", "UPVM_READAHEAD", CT_POW2, readahead_pages, 1, 64,
	    "a power of two from 1 to 64 (pages)"),
	KEY("handlers", "UPVM_HANDLERS", CT_UINT, handlers, 0, 256,
	    "a number from 0 (one per CPU) to 256"),
	KEY("spin_us", "UPVM_SPIN_US", CT_UINT, spin_us, 0, 10000,
	    "microseconds from 0 to 10000"),
	KEY("pin", "UPVM_PIN", CT_BOOL, pin_handlers, 0, 1, "0 or 1"),
	KEY("files", "UPVM_FILES", CT_BOOL, files, 0, 1, "0 or 1"),
	KEY("inactive", "UPVM_INACTIVE", CT_UINT, inactive_pct, 0, 50,
	    "a percentage of the budget from 0 to 50"),
	KEY("flush", "UPVM_FLUSH", CT_UINT, flush_s, 0, 3600,
	    "seconds from 0 to 3600"),
	KEY("log", "UPVM_LOG", CT_LOG, log_level, 0, 4,
	    "none, error, warn, info or debug"),
	KEY("budget", "UPVM_BUDGET", CT_PCTSIZE, budget, 0, 0,
	    "a size such as 512M or 4G, or a percentage of RAM such as 25%"),
	KEY("swap", "UPVM_SWAP", CT_PATH, swap_path, 0, 0,
	    "a directory, the path of a file that does not exist yet, or "
	    "memcached://host:port[,host:port...][?replicas=N]"),
	KEY("swap_encrypt", "UPVM_SWAP_ENCRYPT", CT_BOOL, swap_encrypt, 0, 1,
	    "0 or 1"),
	KEY("swap_tier", "UPVM_SWAP_TIER", CT_PATH, swap_tier, 0, 0,
	    "memcached://host:port[,...] after a swap directory, or a "
	    "directory after a memcached:// swap"),
	KEY("swap_max", "UPVM_SWAP_MAX", CT_SIZE, swap_max, 0, 0,
	    "a size of at least 4K, such as 16G"),
	KEY("threshold", "UPVM_THRESHOLD", CT_SIZE, threshold, 0, 0,
	    "a size of at least 4K, such as 1M"),
	KEY("daemon", "UPVM_DAEMON", CT_PATH, daemon, 0, 0,
	    "the path of upvmd's socket, such as /run/upvm/upvmd.sock"),
	KEY("stats", "UPVM_STATS", CT_PATH, stats_path, 0, 0,
	    "- (stderr) or the path of a file"),
	ENUMKEY("pageout", "UPVM_PAGEOUT", pageout, pageout_names,
	    "auto, move or wp"),
	KEY("numa", "UPVM_NUMA", CT_NUMA, numa, 0, 0,
	    "none, local, bind:N, preferred:N, interleave[:NODES] or nearest"),
	KEY("node_budget", "UPVM_NODE_BUDGET", CT_BUDGETS, node_budget, 0, 0,
	    "NODE=SIZE pairs such as 0=1G,1=4G (0=1G;1=4G in UPVM_CONF)"),
	KEY("numa_promote", "UPVM_NUMA_PROMOTE", CT_BOOL, numa_promote, 0, 1,
	    "0 or 1"),
};

/* numa_check: a NUMA policy or node budget string (syntax only: the
   nodes are checked against the machine by upvm_init) */
static bool
numa_check(int type, const char *val, char *err, int errlen)
{
	struct numa_policy pol;
	uint64_t bytes[NUMA_NODES_MAX];

	if (type == CT_NUMA)
		return strlen(val) < UPVM_NUMA_NAME_MAX &&
		    numa_policy_parse(val, &pol, err, errlen) == 0;
	return strlen(val) < UPVM_PATH_MAX &&
	    numa_budgets_parse(val, bytes, err, errlen) == 0;
}

UPVM_API void
upvm_config_default(struct upvm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cluster_pages = 16;
	cfg->seq_max_pages = 512;
	cfg->readahead_pages = 8;
	cfg->handlers = 0;
	cfg->spin_us = 0;
	cfg->pin_handlers = false;
	cfg->inactive_pct = 0;	/* README: Paging, inactive pages */
	cfg->flush_s = 30;
	cfg->log_level = UPVM_LOG_WARN;
	cfg->budget = 0;
	cfg->swap_max = (uint64_t)64 << 30;
	cfg->threshold = (uint64_t)1 << 20;
	strcpy(cfg->numa, "local");
}

static bool
parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT_MAX)
		return false;
	*out = (unsigned)v;
	return true;
}

int
config_parse_size(const char *s, bool pct, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -ERANGE;
	if (pct && end[0] == '%' && end[1] == '\0') {
		long pages = sysconf(_SC_PHYS_PAGES);

		if (v == 0 || v > 100 || pages <= 0)
			return -EINVAL;
		*out = (uint64_t)pages * PAGE_SIZE / 100 * v;
		return 0;
	}
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (shift != 0 && (end[0] == 'i' || end[0] == 'I') &&
	    (end[1] == 'b' || end[1] == 'B'))
		end += 2;
	else if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (shift != 0 && v > (~0ULL >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

/*
 * conf_set: parse one value for key k into cfg.
 * => -EINVAL after logging "<source> <name>=<value> is invalid: want ...".
 */
static int
conf_set(struct upvm_config *cfg, const struct conf_key *k,
    const char *name, const char *val)
{
	char *field = (char *)cfg + k->ck_off, why[192] = "";
	unsigned v = 0;
	uint64_t sz;
	int lvl;
	bool ok;

	switch (k->ck_type) {
	case CT_LOG:
		lvl = upvm_log_parse_level(val);
		if ((ok = lvl >= 0))
			memcpy(field, &lvl, sizeof(lvl));
		break;
	case CT_BOOL:
		if ((ok = parse_uint(val, &v) && v <= 1)) {
			bool b = v != 0;

			memcpy(field, &b, sizeof(b));
		}
		break;
	case CT_SIZE:
	case CT_PCTSIZE:
		if ((ok = config_parse_size(val, k->ck_type == CT_PCTSIZE,
		    &sz) == 0 &&
		    (k->ck_type == CT_PCTSIZE || sz >= PAGE_SIZE)))
			memcpy(field, &sz, sizeof(sz));
		break;
	case CT_PATH:
		if ((ok = val[0] != '\0' && strlen(val) < UPVM_PATH_MAX))
			strcpy(field, val);
		break;
	case CT_NUMA:
	case CT_BUDGETS:
		if ((ok = numa_check(k->ck_type, val, why, sizeof(why))))
			strcpy(field, val);
		break;
	case CT_ENUM:
		ok = false;
		for (int i = 0; i <= (int)k->ck_max && !ok; i++)
			if ((ok = strcmp(val, k->ck_names[i]) == 0))
				memcpy(field, &i, sizeof(i));
		break;
	default:
		ok = parse_uint(val, &v) && v >= k->ck_min && v <= k->ck_max &&
		    (k->ck_type != CT_POW2 || (v & (v - 1)) == 0);
		if (ok)
			memcpy(field, &v, sizeof(v));
		break;
	}
	if (!ok && why[0] != '\0') {
		upvm_log(LOG_ERR, "%s=\"%s\" is invalid: %s", name, val, why);
		return -EINVAL;
	}
	if (!ok) {
		upvm_log(LOG_ERR, "%s=\"%s\" is invalid: use %s", name, val,
		    k->ck_what);
		return -EINVAL;
	}
	return 0;
}

static const struct conf_key *
conf_find(const char *s, size_t len, bool env)
{
	for (size_t i = 0; i < nitems(conf_keys); i++) {
		const char *name = env ? conf_keys[i].ck_env :
		    conf_keys[i].ck_key;

		if (strlen(name) == len && strncmp(name, s, len) == 0)
			return &conf_keys[i];
	}
	return NULL;
}

/* conf_key_names: every UPVM_CONF key, comma separated, for messages */
static const char *
conf_key_names(void)
{
	static char names[512];
	size_t off = 0;

	for (size_t i = 0; i < nitems(conf_keys) && off < sizeof(names);
	    i++)
		off += (size_t)snprintf(names + off, sizeof(names) - off,
		    "%s%s", i > 0 ? ", " : "", conf_keys[i].ck_key);
	return names;
}

int
config_parse_conf(struct upvm_config *cfg, const char *conf)
{
	char item[128], name[160];
	const struct conf_key *k;
	const char *p = conf, *comma, *colon;
	size_t len;
	int error;

	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(item)) {
			upvm_log(LOG_ERR, "UPVM_CONF=\"%s\" is malformed: use "
			    "key:value[,key:value...]", conf);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		colon = strchr(item, ':');
		if (colon == NULL || (k = conf_find(item,
		    (size_t)(colon - item), false)) == NULL) {
			upvm_log(LOG_ERR, "UPVM_CONF: \"%s\" is not a known "
			    "key:value (keys: %s)", item, conf_key_names());
			return -EINVAL;
		}
		snprintf(name, sizeof(name), "UPVM_CONF %.*s",
		    (int)(colon - item), item);
		if ((error = conf_set(cfg, k, name, colon + 1)) != 0)
			return error;
		p += len + (comma != NULL);
	}
	return 0;
}

int
config_apply_env(struct upvm_config *cfg, char *const *envp)
{
	const struct conf_key *k;
	const char *eq;
	int error;

	for (char *const *e = envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, "UPVM_CONF=", 10) == 0 &&
		    (error = config_parse_conf(cfg, *e + 10)) != 0)
			return error;
	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "UPVM_", 5) != 0 ||
		    strncmp(*e, "UPVM_CONF=", 10) == 0)
			continue;
		if ((eq = strchr(*e, '=')) == NULL)
			continue;
		if ((k = conf_find(*e, (size_t)(eq - *e), true)) == NULL) {
			upvm_log(LOG_ERR, "unknown variable %.*s: see upvm.h "
			    "or upvm(1) for the UPVM_* variables",
			    (int)(eq - *e), *e);
			return -EINVAL;
		}
		if ((error = conf_set(cfg, k, k->ck_env, eq + 1)) != 0)
			return error;
	}
	return config_check(cfg);
}

/*
 * within_seq_max: a block of `pages` (the key `key`) is no wider than a
 * stream's widest window, else one log line.
 */
static bool
within_seq_max(const struct upvm_config *cfg, const char *key,
    unsigned pages, const char *whose)
{
	if (pages <= cfg->seq_max_pages)
		return true;
	upvm_log(LOG_ERR, "%s %u is larger than seq_max %u: a stream's window "
	    "must not be smaller than %s block; raise seq_max", key, pages,
	    cfg->seq_max_pages, whose);
	return false;
}

int
config_check(const struct upvm_config *cfg)
{
	char val[32];

	for (size_t i = 0; i < nitems(conf_keys); i++) {
		const struct conf_key *k = &conf_keys[i];
		struct upvm_config tmp = *cfg;
		const char *field = (const char *)cfg + k->ck_off;
		uint64_t sz;
		unsigned u;
		int lvl;

		switch (k->ck_type) {
		case CT_ENUM:
		case CT_LOG:
			memcpy(&lvl, field, sizeof(lvl));
			if (lvl < (int)k->ck_min || lvl > (int)k->ck_max) {
				upvm_log(LOG_ERR, "config %s=%d is invalid: "
				    "use %s", k->ck_key, lvl, k->ck_what);
				return -EINVAL;
			}
			continue;
		case CT_BOOL:
		case CT_PCTSIZE:
			continue;
		case CT_SIZE:
			memcpy(&sz, field, sizeof(sz));
			if (sz < PAGE_SIZE) {
				upvm_log(LOG_ERR, "config %s=%llu is invalid: "
				    "use %s", k->ck_key,
				    (unsigned long long)sz, k->ck_what);
				return -EINVAL;
			}
			continue;
		case CT_NUMA:
		case CT_BUDGETS:
			if (memchr(field, '\0', k->ck_type == CT_NUMA ?
			    UPVM_NUMA_NAME_MAX : UPVM_PATH_MAX) == NULL ||
			    ((field[0] != '\0' || k->ck_type == CT_NUMA) &&
			    conf_set(&tmp, k, k->ck_key,
			    field) != 0))
				return -EINVAL;
			continue;
		case CT_PATH:
			if (memchr(field, '\0', UPVM_PATH_MAX) == NULL) {
				upvm_log(LOG_ERR, "config %s is not a "
				    "NUL-terminated string", k->ck_key);
				return -EINVAL;
			}
			continue;
		default:
			memcpy(&u, field, sizeof(u));
			snprintf(val, sizeof(val), "%u", u);
			if (conf_set(&tmp, k, k->ck_key, val) != 0)
				return -EINVAL;
		}
	}
	if (!within_seq_max(cfg, "cluster", cfg->cluster_pages,
	    "a random fault's") ||
	    !within_seq_max(cfg, "readahead", cfg->readahead_pages,
	    "a pagein's"))
		return -EINVAL;
	return 0;
}

UPVM_API int
upvm_parse_size(const char *s, uint64_t *bytes)
{
	return config_parse_size(s, false, bytes);
}

UPVM_API int
upvm_config_from_env(struct upvm_config *cfg)
{
	int error;

	upvm_config_default(cfg);
	if ((error = config_apply_env(cfg, environ)) != 0)
		upvm_config_default(cfg);
	return error;
}
