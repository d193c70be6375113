// Build: clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_wire.c src/net/wire.c src/core/err.c -o build/fuzz_wire && build/fuzz_wire -max_total_time=30
/*
 * libFuzzer target for the page server's message decoder. The input is a
 * byte stream as a peer would send it: messages are framed exactly as the
 * server reads them (header, then the fixed part or the whole control
 * payload, then page data skipped), until the stream ends or a message is
 * refused. Every message that decodes must encode back to the same bytes
 * (except ERROR, whose text is cleaned for the log): the decoder accepts
 * nothing the encoder would not produce. A DATA_HASH that decodes covers
 * whole pages within the limit the server's buffer is sized by.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[WIRE_HDR_SIZE + WIRE_MAX_CTRL];
	struct ferry_err err;
	struct wire_msg m;
	size_t off = 0;

	while (size - off >= WIRE_HDR_SIZE) {
		const uint8_t *p = data + off;
		if (wire_hdr_decode(p, &m.h, &err) < 0)
			break;
		size_t want = wire_has_data(m.h.type) ? (size_t)wire_fixed_len(m.h.type) : m.h.len;
		if (want > WIRE_MAX_CTRL)
			abort(); /* the header check must bound what the server reads */
		if (size - off - WIRE_HDR_SIZE < want)
			break;
		/* the server reads the payload into its own buffer: no bytes beyond it are visible */
		uint8_t *copy = malloc(want ? want : 1);
		memcpy(copy, p + WIRE_HDR_SIZE, want);
		int r = wire_decode(&m, copy, want, &err);
		free(copy);
		if (r < 0)
			break;
		uint64_t data_len = wire_data_len(&m);
		if (m.h.len != want + data_len)
			abort(); /* a decoded message says exactly how much follows */
		if (m.h.type == WT_DATA_HASH &&
		    (!m.u.hash.len || m.u.hash.len % WIRE_PAGE || m.u.hash.len > WIRE_MAX_HASHED))
			abort();
		if (m.h.type != WT_ERROR) {
			struct wire_msg e = m;
			int n = wire_encode(&e, again, sizeof(again), &err);
			if (n != (int)(WIRE_HDR_SIZE + want) || memcmp(again, p, n))
				abort();
		}
		off += WIRE_HDR_SIZE + want;
		if (size - off < data_len)
			break;
		off += data_len;
	}
	return 0;
}
