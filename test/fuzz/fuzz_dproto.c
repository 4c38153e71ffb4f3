/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_dproto.c: libFuzzer target for upvmd's message decoder
 * (runtime/base/dproto.c, dproto_check), which every packet a client
 * sends passes before upvmd reads a field.  Besides crashes and undefined
 * behaviour it checks the decoder's promises on what it accepts: the
 * exact size of its type, the header's length, terminated strings.
 * test/fuzz/run.sh builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_hdr h;
	const char *why = NULL;
	int type;
	/* a copy of exactly `size` bytes: ASan sees any read past it */
	uint8_t *buf = malloc(size > 0 ? size : 1);

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	type = dproto_check(buf, size, &why);
	if (type < 0) {
		if (why == NULL || *why == '\0')
			abort();	/* every refusal says why */
	} else {
		memcpy(&h, buf, sizeof(h));
		if (type >= DM_NTYPES || dproto_size((unsigned)type) != size ||
		    h.mh_len != size || h.mh_magic != DPROTO_MAGIC)
			abort();
		if (type == DM_HELLO && (((const struct dm_hello *)
		    (const void *)buf)->pid <= 0 || strnlen(((const struct
		    dm_hello *)(const void *)buf)->comm, DPROTO_COMM) ==
		    DPROTO_COMM))
			abort();
	}
	free(buf);
	return 0;
}
