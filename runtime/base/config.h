/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.h: validating and parsing the configuration (UPVM_* variables,
 * UPVM_CONF strings).  The keys and their ranges are documented in upvm.h.
 */
#ifndef UPVM_CONFIG_H
#define UPVM_CONFIG_H

#include "upvm.h"

/* config_check: 0, or -EINVAL after logging the first bad field */
int config_check(const struct upvm_config *);

/*
 * config_parse_conf: apply a "key:value,key:value" string to cfg.
 * => -EINVAL (logged, naming the key) for an unknown key or a bad value;
 *    cfg may be partly updated.
 */
int config_parse_conf(struct upvm_config *, const char *conf);

/*
 * config_apply_env: apply an environment (NULL-terminated "NAME=value"
 * array): UPVM_CONF first, then the single UPVM_* variables.
 * => -EINVAL (logged) for an unknown UPVM_* name or a bad value.
 */
int config_apply_env(struct upvm_config *, char *const *envp);

/*
 * config_parse_size: "123", "64K", "512M", "4G", "1T" (binary units, any
 * case, "B" or "iB" after the unit allowed, "B" alone too) -> bytes; with
 * pct, also "25%" of physical memory.  The one size parser: upvm's
 * variables and configuration file, and the tools (upvm_parse_size).
 * => 0, -EINVAL (not a size), -ERANGE (over 2^64 - 1).
 */
int config_parse_size(const char *s, bool pct, uint64_t *out);

#endif /* UPVM_CONFIG_H */
