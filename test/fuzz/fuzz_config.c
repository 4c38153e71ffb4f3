/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_config.c: libFuzzer target for the configuration parsers: the
 * input is an environment, one "NAME=value" per line (UPVM_CONF among
 * them), applied to the defaults with config_apply_env and, when that
 * takes it, checked with config_check; each line is also given alone to
 * config_parse_conf and config_parse_size (with and without "%"), and to
 * upvm_log_parse_level.  Any crash, leak or undefined behaviour is a bug;
 * a refusal is the parser's answer.  test/fuzz/run.sh builds and runs it.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define MAXVARS		64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet = -1;
	char *text, *envp[MAXVARS + 1], *line, *save = NULL;
	struct upvm_config cfg;
	uint64_t bytes;
	int n = 0;

	if (quiet < 0) {
		quiet = open("/dev/null", O_WRONLY);
		upvm_log_set_fd(quiet);	/* each refusal logs a line */
	}
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL && n < MAXVARS;
	    line = strtok_r(NULL, "\n", &save))
		envp[n++] = line;
	envp[n] = NULL;
	upvm_config_default(&cfg);
	if (config_apply_env(&cfg, envp) == 0)
		(void)config_check(&cfg);
	for (int i = 0; i < n; i++) {
		upvm_config_default(&cfg);
		(void)config_parse_conf(&cfg, envp[i]);
		if (config_parse_size(envp[i], false, &bytes) == 0) {
			/* what it parsed, printed in bytes, parses the same */
			char back[32];
			uint64_t again;

			snprintf(back, sizeof(back), "%llu",
			    (unsigned long long)bytes);
			if (config_parse_size(back, false, &again) != 0 ||
			    again != bytes)
				abort();
		}
		(void)config_parse_size(envp[i], true, &bytes);
		(void)upvm_log_parse_level(envp[i]);
	}
	free(text);
	return 0;
}
