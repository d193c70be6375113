// Build: clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc -Ibuild tests/fuzz/fuzz_proc.c src/proc/proc.c src/core/err.c src/core/util.c -o build/fuzz_proc && build/fuzz_proc -max_total_time=20
/*
 * libFuzzer target for the /proc text parsers. The input's first byte picks
 * the parser (maps, smaps, status, stat, fdinfo, children, auxv); the rest,
 * NUL-terminated, is its text. Bytes after an embedded NUL are simply unseen,
 * as they would be for the real parsers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(uint8_t which, const char *text, size_t len)
{
	struct ferry_err err = {0};
	struct proc_status status;
	struct proc_stat stat;
	struct proc_fdinfo fdinfo;
	struct proc_vma *vmas;
	uint64_t *auxv;
	pid_t *kids;
	size_t n;

	switch (which % 7) {
	case 0:
	case 1:
		if (proc_parse_maps_text(text, which % 7 == 1, &vmas, &n, &err) == 0)
			proc_free_maps(vmas, n);
		break;
	case 2:
		proc_parse_status_text(text, &status, &err);
		break;
	case 3:
		proc_parse_stat_text(text, &stat, &err);
		break;
	case 4:
		proc_parse_fdinfo_text(text, &fdinfo, &err);
		break;
	case 5:
		if (proc_parse_children_text(text, &kids, &n, &err) == 0)
			free(kids);
		break;
	case 6:
		if (proc_parse_auxv_data(text, len, &auxv, &n, &err) == 0)
			free(auxv);
		break;
	}
	/* An error message must always be a terminated string. */
	if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	parse(data[0], text, size - 1);
	free(text);
	return 0;
}
