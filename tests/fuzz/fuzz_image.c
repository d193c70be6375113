// Build: clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc -Ibuild tests/fuzz/fuzz_image.c src/core/image.c src/core/err.c src/core/util.c src/core/pbprint.c build/ferry.pb-c.c -lprotobuf-c -lxxhash -o build/fuzz_image && build/fuzz_image -max_total_time=20
/*
 * libFuzzer target for image decoding: whatever bytes an image file holds,
 * img_decode() either returns a message or a clear error, and the message
 * can be printed (ferry show) without reading out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <xxhash.h>

#include "core/image.h"
#include "core/pbprint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct ferry_err err;
	ProtobufCMessage *msg = NULL;
	enum img_kind kind;

	if (!null)
		null = fopen("/dev/null", "w");
	/* mostly fix the length and checksum up, so that the message decoder and
	 * the printers see the bytes; sometimes leave them, for the checks */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size >= FERRY_IMG_HDR_SIZE && (size & 7) != 7) {
		struct img_hdr h;
		memcpy(&h, copy, sizeof(h));
		memcpy(h.magic, FERRY_IMG_MAGIC, 8);
		h.version = htole32(FERRY_IMG_VERSION);
		h.len = htole64(size - FERRY_IMG_HDR_SIZE);
		h.csum = htole64(XXH3_64bits(copy + FERRY_IMG_HDR_SIZE, size - FERRY_IMG_HDR_SIZE));
		memcpy(copy, &h, sizeof(h));
	}
	if (img_decode(copy, size, "fuzz.img", &kind, &msg, &err) == 0 && msg) {
		pb_print_text(null, msg, 0);
		pb_print_json(null, msg, 0);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	free(copy);
	return 0;
}
