/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_config.c: defaults, UPVM_CONF and UPVM_* parsing, validation.
 *
 * Every rejection must write exactly one line to the log, naming what was
 * wrong: each test sends the log to a pipe (upvm_log_set_fd()) and reads
 * it back.  config_apply_env() gets arrays built here; the tests of
 * upvm_config_from_env() use setenv(), which is safe because Criterion
 * runs each test in its own process.  config_check() == 0 after every
 * accepted change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "harness.h"
#include "log.h"
#include "upvm.h"
#include "vm.h"

extern char **environ;

#define CHECK(cfg)	cr_assert_eq(config_check(cfg), 0, "config_check")

static bool
same_config(const struct upvm_config *a, const struct upvm_config *b)
{
	return a->cluster_pages == b->cluster_pages &&
	    a->seq_max_pages == b->seq_max_pages &&
	    a->readahead_pages == b->readahead_pages &&
	    a->handlers == b->handlers && a->spin_us == b->spin_us &&
	    a->pin_handlers == b->pin_handlers &&
	    a->log_level == b->log_level;
}

/* config_parse_conf(conf) on defaults must fail, logging one line */
static void
expect_conf_rejected(const char *conf, const char *name)
{
	struct upvm_config cfg;

	upvm_config_default(&cfg);
	cr_assert_eq(config_parse_conf(&cfg, conf), -EINVAL,
	    "UPVM_CONF=\"%s\" accepted", conf);
	test_expect_one_line(conf, name);
}

/* config_apply_env({var}) on defaults must fail, logging one line */
static void
expect_env_rejected(const char *var, const char *name)
{
	char *envp[] = { (char *)var, NULL };
	struct upvm_config cfg;

	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL, "%s accepted",
	    var);
	test_expect_one_line(var, name);
}

/* drop every UPVM_* variable this process inherited */
static void
clear_upvm_env(void)
{
	char name[256];

	for (;;) {
		char **e;
		size_t len;

		for (e = environ; *e != NULL; e++)
			if (strncmp(*e, "UPVM_", 5) == 0)
				break;
		if (*e == NULL)
			return;
		len = strcspn(*e, "=");
		cr_assert_lt(len, sizeof(name));
		memcpy(name, *e, len);
		name[len] = '\0';
		cr_assert_eq(unsetenv(name), 0);
	}
}

Test(config, defaults, .timeout = 10)
{
	struct upvm_config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	upvm_config_default(&cfg);
	cr_assert_eq(cfg.cluster_pages, 16);
	cr_assert_eq(cfg.seq_max_pages, 512);
	cr_assert_eq(cfg.readahead_pages, 8);
	cr_assert_eq(cfg.handlers, 0);
	cr_assert_eq(cfg.spin_us, 0);
	cr_assert_eq(cfg.pin_handlers, false);
	cr_assert_eq(cfg.flush_s, 30);
	cr_assert_eq(cfg.log_level, UPVM_LOG_WARN);
	test_log_capture();
	CHECK(&cfg);
	test_expect_no_log("config_check(defaults)");
}

Test(config, conf_string_sets_keys, .timeout = 10)
{
	struct upvm_config cfg, want;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_parse_conf(&cfg,
	    "cluster:32,handlers:2,log:debug"), 0);
	CHECK(&cfg);
	upvm_config_default(&want);
	want.cluster_pages = 32;
	want.handlers = 2;
	want.log_level = UPVM_LOG_DEBUG;
	cr_assert(same_config(&cfg, &want));

	cr_assert_eq(config_parse_conf(&cfg,
	    "seq_max:1024,spin_us:250,pin:1,log:none"), 0);
	CHECK(&cfg);
	want.seq_max_pages = 1024;
	want.spin_us = 250;
	want.pin_handlers = true;
	want.log_level = UPVM_LOG_NONE;
	cr_assert(same_config(&cfg, &want));

	/* empty: nothing changes; a later key wins over an earlier one */
	cr_assert_eq(config_parse_conf(&cfg, ""), 0);
	cr_assert(same_config(&cfg, &want));
	cr_assert_eq(config_parse_conf(&cfg, "cluster:4,cluster:8"), 0);
	cr_assert_eq(cfg.cluster_pages, 8);
	CHECK(&cfg);
	test_expect_no_log("valid UPVM_CONF");
}

Test(config, range_edges_accepted, .timeout = 10)
{
	const char *ok[] = {
		"cluster:1", "cluster:512", "seq_max:16", "seq_max:1024",
		"readahead:1", "readahead:64",
		"handlers:0", "handlers:256", "spin_us:0", "spin_us:10000",
		"pin:0", "pin:1", "log:none", "log:error", "log:warn",
		"log:info", "log:debug", "flush:0", "flush:3600",
	};
	struct upvm_config cfg;

	test_log_capture();
	for (size_t i = 0; i < nitems(ok); i++) {
		upvm_config_default(&cfg);
		cr_assert_eq(config_parse_conf(&cfg, ok[i]), 0, "%s", ok[i]);
		CHECK(&cfg);
	}
	upvm_config_default(&cfg);
	cr_assert_eq(config_parse_conf(&cfg, "cluster:512"), 0);
	cr_assert_eq(cfg.cluster_pages, 512);
	cr_assert_eq(config_parse_conf(&cfg, "log:error"), 0);
	cr_assert_eq(cfg.log_level, UPVM_LOG_ERROR);
	cr_assert_eq(config_parse_conf(&cfg, "log:info"), 0);
	cr_assert_eq(cfg.log_level, UPVM_LOG_INFO);
	test_expect_no_log("edge values");
}

Test(config, env_applies_conf_then_single_variables, .timeout = 10)
{
	/* the single variable comes first in envp and still wins */
	char *envp[] = {
		"UPVM_CLUSTER=64", "HOME=/root", "UPVM_CONF=cluster:32,"
		"handlers:2,log:debug", "UPVM_LOG=info", "PATH=/bin", NULL,
	};
	struct upvm_config cfg, want;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), 0);
	CHECK(&cfg);
	upvm_config_default(&want);
	want.cluster_pages = 64;
	want.handlers = 2;
	want.log_level = UPVM_LOG_INFO;
	cr_assert(same_config(&cfg, &want), "cluster %u handlers %u log %d",
	    cfg.cluster_pages, cfg.handlers, cfg.log_level);
	test_expect_no_log("valid environment");
}

Test(config, every_single_variable_is_known, .timeout = 10)
{
	char *envp[] = {
		"UPVM_CLUSTER=64", "UPVM_SEQ_MAX=128", "UPVM_HANDLERS=3",
		"UPVM_SPIN_US=50", "UPVM_PIN=0", "UPVM_LOG=error",
		"UPVM_READAHEAD=16", "UPVM_FLUSH=5", NULL,
	};
	struct upvm_config cfg;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), 0);
	CHECK(&cfg);
	cr_assert_eq(cfg.cluster_pages, 64);
	cr_assert_eq(cfg.seq_max_pages, 128);
	cr_assert_eq(cfg.readahead_pages, 16);
	cr_assert_eq(cfg.handlers, 3);
	cr_assert_eq(cfg.spin_us, 50);
	cr_assert_eq(cfg.pin_handlers, false);
	cr_assert_eq(cfg.log_level, UPVM_LOG_ERROR);
	cr_assert_eq(cfg.flush_s, 5);
	test_expect_no_log("valid variables");

	/* no environment, an empty one, non-UPVM names: no change */
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, NULL), 0);
	{
		char *empty[] = { NULL };
		char *other[] = { "UPVMX=1", "XUPVM_CLUSTER=3", "LANG=C",
		    NULL };
		struct upvm_config def;

		cr_assert_eq(config_apply_env(&cfg, empty), 0);
		cr_assert_eq(config_apply_env(&cfg, other), 0);
		upvm_config_default(&def);
		cr_assert(same_config(&cfg, &def));
	}
	test_expect_no_log("no UPVM variables");
}

Test(config, unknown_key_rejected, .timeout = 10)
{
	test_log_capture();
	expect_conf_rejected("foo:1", "foo");
	expect_conf_rejected("cluster:32,bogus:7", "bogus");
	expect_conf_rejected("Cluster:32", "Cluster");
	expect_conf_rejected("clusters:32", "clusters");
	expect_env_rejected("UPVM_CONF=nope:1", "nope");
}

Test(config, unknown_variable_rejected, .timeout = 10)
{
	test_log_capture();
	expect_env_rejected("UPVM_FOO=1", "UPVM_FOO");
	expect_env_rejected("UPVM_CLUSTERS=16", "UPVM_CLUSTERS");
	expect_env_rejected("UPVM_=1", "UPVM_");
	expect_env_rejected("UPVM_CONFIG=cluster:16", "UPVM_CONFIG");
}

Test(config, malformed_rejected, .timeout = 10)
{
	const struct {
		const char *conf, *name;
	} bad[] = {
		{ "cluster", "cluster" },
		{ "cluster:", "cluster" },
		{ ":3", ":3" },
		{ "cluster:3x", "cluster" },
		{ "cluster:-1", "cluster" },
		{ "cluster:99999999999", "cluster" },
		{ "cluster:999999999999999999999999", "cluster" },
		{ "cluster: 32", "cluster" },
		{ "cluster:+32", "cluster" },
		{ ",cluster:32", "UPVM_CONF" },
		{ "cluster:32,,log:info", "UPVM_CONF" },
		{ "handlers:0x10", "handlers" },
	};

	test_log_capture();
	for (size_t i = 0; i < nitems(bad); i++)
		expect_conf_rejected(bad[i].conf, bad[i].name);
	expect_env_rejected("UPVM_CLUSTER=", "UPVM_CLUSTER");
	expect_env_rejected("UPVM_CLUSTER=3x", "UPVM_CLUSTER");
	expect_env_rejected("UPVM_HANDLERS=-1", "UPVM_HANDLERS");
	expect_env_rejected("UPVM_SPIN_US=99999999999", "UPVM_SPIN_US");
	expect_env_rejected("UPVM_CONF=cluster", "cluster");
}

Test(config, not_power_of_two_rejected, .timeout = 10)
{
	test_log_capture();
	expect_conf_rejected("cluster:3", "cluster");
	expect_conf_rejected("cluster:0", "cluster");
	expect_conf_rejected("cluster:24", "cluster");
	expect_conf_rejected("seq_max:48", "seq_max");
	expect_conf_rejected("seq_max:1000", "seq_max");
	expect_env_rejected("UPVM_CLUSTER=3", "UPVM_CLUSTER");
	expect_env_rejected("UPVM_SEQ_MAX=100", "UPVM_SEQ_MAX");
}

Test(config, out_of_range_rejected, .timeout = 10)
{
	test_log_capture();
	expect_conf_rejected("seq_max:8", "seq_max");
	expect_conf_rejected("seq_max:2048", "seq_max");
	expect_conf_rejected("cluster:1024", "cluster");
	expect_conf_rejected("spin_us:20000", "spin_us");
	expect_conf_rejected("spin_us:10001", "spin_us");
	expect_conf_rejected("handlers:257", "handlers");
	expect_conf_rejected("pin:2", "pin");
	expect_conf_rejected("pin:true", "pin");
	expect_env_rejected("UPVM_SEQ_MAX=2048", "UPVM_SEQ_MAX");
	expect_env_rejected("UPVM_SPIN_US=20000", "UPVM_SPIN_US");
	expect_env_rejected("UPVM_PIN=2", "UPVM_PIN");
	expect_env_rejected("UPVM_NUMA_PROMOTE=yes", "UPVM_NUMA_PROMOTE");
	expect_env_rejected("UPVM_HANDLERS=1000", "UPVM_HANDLERS");
	expect_conf_rejected("flush:3601", "flush");
	expect_env_rejected("UPVM_FLUSH=-1", "UPVM_FLUSH");
	expect_env_rejected("UPVM_FLUSH=30s", "UPVM_FLUSH");
}

Test(config, bad_log_level_rejected, .timeout = 10)
{
	test_log_capture();
	expect_conf_rejected("log:loud", "log");
	expect_conf_rejected("log:", "log");
	expect_conf_rejected("log:2", "log");
	expect_conf_rejected("log:warning", "log");
	expect_env_rejected("UPVM_LOG=verbose", "UPVM_LOG");
	expect_env_rejected("UPVM_LOG=", "UPVM_LOG");
}

Test(config, first_bad_entry_stops_parsing, .timeout = 10)
{
	char *envp[] = {
		"UPVM_CONF=cluster:32,handlers:2", "UPVM_BOGUS=1",
		"UPVM_SEQ_MAX=3", NULL,
	};
	struct upvm_config cfg;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL);
	test_expect_one_line("two bad variables", "UPVM_BOGUS");
	upvm_config_default(&cfg);
	cr_assert_eq(config_parse_conf(&cfg, "cluster:3,seq_max:5,foo:1"),
	    -EINVAL);
	test_expect_one_line("three bad keys", "cluster");
}

Test(config, from_env_reads_process_environment, .timeout = 10)
{
	struct upvm_config cfg;

	clear_upvm_env();
	test_log_capture();
	cr_assert_eq(setenv("UPVM_CONF", "cluster:32,handlers:2,log:debug",
	    1), 0);
	cr_assert_eq(setenv("UPVM_HANDLERS", "5", 1), 0);
	cr_assert_eq(setenv("UPVM_PIN", "1", 1), 0);
	memset(&cfg, 0xa5, sizeof(cfg));
	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	CHECK(&cfg);
	cr_assert_eq(cfg.cluster_pages, 32);
	cr_assert_eq(cfg.handlers, 5, "the variable wins over UPVM_CONF");
	cr_assert_eq(cfg.log_level, UPVM_LOG_DEBUG);
	cr_assert_eq(cfg.pin_handlers, true, "UPVM_PIN=1 over the default");
	cr_assert_eq(cfg.seq_max_pages, 512, "untouched keys keep defaults");
	cr_assert_eq(cfg.spin_us, 0);
	test_expect_no_log("valid process environment");

	cr_assert_eq(unsetenv("UPVM_HANDLERS"), 0);
	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cr_assert_eq(cfg.handlers, 2);
}

Test(config, from_env_without_variables_gives_defaults, .timeout = 10)
{
	struct upvm_config cfg, def;

	clear_upvm_env();
	test_log_capture();
	memset(&cfg, 0xa5, sizeof(cfg));
	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	upvm_config_default(&def);
	cr_assert(same_config(&cfg, &def));
	CHECK(&cfg);
	test_expect_no_log("empty environment");
}

Test(config, from_env_rejects_and_keeps_defaults, .timeout = 10)
{
	const struct {
		const char *name, *val, *logname;
	} bad[] = {
		{ "UPVM_CONF", "cluster:32,seq_max:2048", "seq_max" },
		{ "UPVM_CONF", "cluster:3", "cluster" },
		{ "UPVM_CONF", "what:1", "what" },
		{ "UPVM_CLUSTER", "3", "UPVM_CLUSTER" },
		{ "UPVM_READAHEAD", "3", "UPVM_READAHEAD" },
		{ "UPVM_READAHEAD", "128", "UPVM_READAHEAD" },
		{ "UPVM_CONF", "readahead:0", "readahead" },
		{ "UPVM_CONF", "readahead:64,seq_max:32", "seq_max" },
		{ "UPVM_LOG", "loud", "UPVM_LOG" },
		{ "UPVM_FOO", "1", "UPVM_FOO" },
	};
	struct upvm_config cfg, def;

	upvm_config_default(&def);
	clear_upvm_env();
	test_log_capture();
	for (size_t i = 0; i < nitems(bad); i++) {
		cr_assert_eq(setenv("UPVM_HANDLERS", "7", 1), 0);
		cr_assert_eq(setenv(bad[i].name, bad[i].val, 1), 0);
		memset(&cfg, 0xa5, sizeof(cfg));
		cr_assert_eq(upvm_config_from_env(&cfg), -EINVAL, "%s=%s",
		    bad[i].name, bad[i].val);
		cr_assert(same_config(&cfg, &def), "%s=%s: not the defaults",
		    bad[i].name, bad[i].val);
		test_expect_one_line(bad[i].val, bad[i].logname);
		cr_assert_eq(unsetenv(bad[i].name), 0);
	}
}

Test(config, check_rejects_bad_fields, .timeout = 10)
{
	struct upvm_config cfg;

	test_log_capture();
	/* one bad field at a time; each rejection logs one line */
#define EXPECT_BAD(field, value, key) do {				\
		upvm_config_default(&cfg);				\
		cfg.field = (value);					\
		cr_assert_eq(config_check(&cfg), -EINVAL,		\
		    #field " = " #value " accepted");			\
		test_expect_one_line(#field " = " #value, key);		\
	} while (0)
	EXPECT_BAD(cluster_pages, 3, "cluster");
	EXPECT_BAD(cluster_pages, 0, "cluster");
	EXPECT_BAD(cluster_pages, 1024, "cluster");
	EXPECT_BAD(seq_max_pages, 8, "seq_max");
	EXPECT_BAD(seq_max_pages, 2048, "seq_max");
	EXPECT_BAD(seq_max_pages, 100, "seq_max");
	EXPECT_BAD(handlers, 257, "handlers");
	EXPECT_BAD(handlers, ~0u, "handlers");
	EXPECT_BAD(spin_us, 20000, "spin_us");
	EXPECT_BAD(log_level, 5, "log");
	EXPECT_BAD(log_level, -1, "log");
#undef EXPECT_BAD
	/* two bad fields: still one line */
	upvm_config_default(&cfg);
	cfg.cluster_pages = 3;
	cfg.spin_us = 20000;
	cr_assert_eq(config_check(&cfg), -EINVAL);
	test_expect_one_line("two bad fields", "cluster");
}

Test(config, long_input_rejected_in_one_line, .timeout = 10)
{
	static char var[2048], conf[2048];
	char *envp[] = { var, NULL };
	struct upvm_config cfg;

	test_log_capture();
	/* an unknown variable with a 1000-character name */
	memset(var, 'X', sizeof(var) - 1);
	memcpy(var, "UPVM_", 5);
	var[1000] = '=';
	var[1001] = '1';
	var[1002] = '\0';
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL);
	test_expect_one_line("long variable name", "UPVM_XXXX");
	/* a 1500-character value, and a 1500-character item */
	snprintf(var, sizeof(var), "UPVM_CLUSTER=%01500d", 16);
	cr_assert_eq(config_apply_env(&cfg, envp), 0,
	    "leading zeros are still 16");
	cr_assert_eq(cfg.cluster_pages, 16);
	var[sizeof("UPVM_CLUSTER=") - 1] = '7';	/* 7000...016 */
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL);
	test_expect_one_line("long value", "UPVM_CLUSTER");
	memset(conf, 'k', 1500);
	conf[1500] = '\0';
	conf[700] = ':';
	cr_assert_eq(config_parse_conf(&cfg, conf), -EINVAL);
	test_expect_one_line("long item", "UPVM_CONF");
}

/*
 * The offending input is quoted in the message: a newline inside it must
 * not split the one line into two (log readers count lines).
 */
Test(config, newline_in_bad_input_stays_one_line, .timeout = 10)
{
	test_log_capture();
	expect_env_rejected("UPVM_CLUSTER=3\n4", "UPVM_CLUSTER");
	expect_env_rejected("UPVM_LOG=warn\nupvm: info: fake", "UPVM_LOG");
	expect_conf_rejected("cluster:3\n", "cluster");
	expect_conf_rejected("fo\no:1", "fo");
}

Test(config, cluster_larger_than_seq_max_is_rejected, .timeout = 10)
{
	char *envp[] = { "UPVM_CONF=cluster:512,seq_max:16", NULL };
	struct upvm_config cfg;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL);
	test_expect_one_line(envp[0], "seq_max");
	upvm_config_default(&cfg);
	cfg.cluster_pages = 64;
	cfg.seq_max_pages = 32;
	cr_assert_eq(config_check(&cfg), -EINVAL);
}

Test(config, readahead_larger_than_seq_max_is_rejected, .timeout = 10)
{
	char *envp[] = { "UPVM_CONF=readahead:64,seq_max:32", NULL };
	struct upvm_config cfg;

	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), -EINVAL);
	test_expect_one_line(envp[0], "readahead 64 is larger than seq_max");
	upvm_config_default(&cfg);
	cfg.readahead_pages = 32;
	cfg.seq_max_pages = 16;
	cr_assert_eq(config_check(&cfg), -EINVAL);
}

Test(config, sizes_and_percentages_parse, .timeout = 10)
{
	struct upvm_config cfg;
	long ram = sysconf(_SC_PHYS_PAGES) * 4096L;

	upvm_config_default(&cfg);
	cr_assert_eq(cfg.budget, 0);
	cr_assert_eq(cfg.swap_max, (uint64_t)64 << 30);
	cr_assert_eq(cfg.swap_path[0], '\0');
	cr_assert_eq(config_parse_conf(&cfg, "budget:512M,swap_max:2G"), 0);
	cr_assert_eq(cfg.budget, (uint64_t)512 << 20);
	cr_assert_eq(cfg.swap_max, (uint64_t)2 << 30);
	cr_assert_eq(config_parse_conf(&cfg, "budget:64k,swap_max:1TB"), 0);
	cr_assert_eq(cfg.budget, 65536);
	cr_assert_eq(cfg.swap_max, (uint64_t)1 << 40);
	cr_assert_eq(config_parse_conf(&cfg, "budget:25%"), 0);
	cr_assert_eq(cfg.budget, (uint64_t)ram / 100 * 25);
	cr_assert_eq(config_parse_conf(&cfg, "swap:/var/tmp"), 0);
	cr_assert_str_eq(cfg.swap_path, "/var/tmp");
	CHECK(&cfg);
}

/* the one size parser, as the tools get it */
Test(config, upvm_parse_size_takes_every_spelling, .timeout = 10)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4096B", 4096 },
		{ "64K", 65536 }, { "64k", 65536 }, { "64KB", 65536 },
		{ "64KiB", 65536 }, { "2GiB", (uint64_t)2 << 30 },
		{ "1T", (uint64_t)1 << 40 }, { "16777215T", 16777215ULL << 40 },
	};
	static const char *bad[] = { "", "K", "-1", "1.5G", "1X", "1KiBB",
	    "1iB", " 1", "1 ", "1%", "0x10" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(upvm_parse_size(good[i].s, &v), 0, "%s",
		    good[i].s);
		cr_assert_eq(v, good[i].v, "%s", good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(upvm_parse_size(bad[i], &v), -EINVAL, "'%s'",
		    bad[i]);
	cr_assert_eq(upvm_parse_size("16777216T", &v), -ERANGE);
	cr_assert_eq(upvm_parse_size("99999999999999999999", &v), -ERANGE);
}

Test(config, pageout_protocols_parse, .timeout = 10)
{
	struct upvm_config cfg;

	upvm_config_default(&cfg);
	cr_assert_eq(cfg.pageout, UPVM_PAGEOUT_AUTO);
	cr_assert_eq(config_parse_conf(&cfg, "pageout:wp"), 0);
	cr_assert_eq(cfg.pageout, UPVM_PAGEOUT_WP);
	cr_assert_eq(config_parse_conf(&cfg, "pageout:move"), 0);
	cr_assert_eq(cfg.pageout, UPVM_PAGEOUT_MOVE);
	cr_assert_eq(config_parse_conf(&cfg, "pageout:auto"), 0);
	cr_assert_eq(cfg.pageout, UPVM_PAGEOUT_AUTO);
	CHECK(&cfg);
	cfg.pageout = 3;
	test_log_capture();
	cr_assert_eq(config_check(&cfg), -EINVAL);
	test_expect_one_line("pageout=3", "pageout");
}

Test(config, bad_sizes_and_paths_are_rejected_in_one_line, .timeout = 10)
{
	const char *bad[] = {
		"budget:abc", "budget:12Q", "budget:0%", "budget:101%",
		"budget:-1G", "budget:99999999999T", "budget:", "swap_max:1",
		"swap_max:0", "swap:", "pageout:fast", "pageout:", "pageout:1",
	};
	struct upvm_config cfg;
	char name[64];

	test_log_capture();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		upvm_config_default(&cfg);
		cr_assert_eq(config_parse_conf(&cfg, bad[i]), -EINVAL, "%s",
		    bad[i]);
		snprintf(name, sizeof(name), "%.*s",
		    (int)(strchr(bad[i], ':') - bad[i]), bad[i]);
		test_expect_one_line(bad[i], name);
	}
}

Test(config, numa_policies_and_node_budgets_parse, .timeout = 10)
{
	char *envp[] = { "UPVM_NUMA=interleave:0,2",
	    "UPVM_NODE_BUDGET=0=1G,1=512M", "UPVM_NUMA_PROMOTE=1", NULL };
	struct upvm_config cfg;

	upvm_config_default(&cfg);
	cr_assert_str_eq(cfg.numa, "local");
	cr_assert_str_eq(cfg.node_budget, "");
	cr_assert(!cfg.numa_promote);
	cr_assert_eq(config_parse_conf(&cfg,
	    "numa:bind:1,node_budget:0=1G;1=2G,numa_promote:1"), 0);
	cr_assert(cfg.numa_promote);
	cr_assert_str_eq(cfg.numa, "bind:1");
	cr_assert_str_eq(cfg.node_budget, "0=1G;1=2G");
	CHECK(&cfg);
	test_log_capture();
	upvm_config_default(&cfg);
	cr_assert_eq(config_apply_env(&cfg, envp), 0);
	cr_assert_str_eq(cfg.numa, "interleave:0,2");
	cr_assert_str_eq(cfg.node_budget, "0=1G,1=512M");
	cr_assert(cfg.numa_promote);
	test_expect_no_log("valid NUMA variables");
	strcpy(cfg.numa, "fastest");
	cr_assert_eq(config_check(&cfg), -EINVAL);
	test_expect_one_line("numa=fastest", "fastest");
}

Test(config, bad_numa_settings_are_rejected_in_one_line, .timeout = 10)
{
	const char *bad[] = {
		"numa:", "numa:fast", "numa:bind", "numa:bind:x",
		"numa:bind:64", "numa:local:1", "numa:interleave:3-1",
		"node_budget:", "node_budget:0", "node_budget:0=",
		"node_budget:x=1G", "node_budget:0=abc",
		"node_budget:0=1G;0=2G",
	};
	struct upvm_config cfg;
	char name[64];

	test_log_capture();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		upvm_config_default(&cfg);
		cr_assert_eq(config_parse_conf(&cfg, bad[i]), -EINVAL, "%s",
		    bad[i]);
		snprintf(name, sizeof(name), "%.*s",
		    (int)(strchr(bad[i], ':') - bad[i]), bad[i]);
		test_expect_one_line(bad[i], name);
	}
}
