// Build: clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_wire_reader.c src/net/sock.c src/net/wire.c src/core/err.c -o build/fuzz_wire_reader && build/fuzz_wire_reader -max_total_time=30
/*
 * libFuzzer target for the buffered reader of the lazy-pages fault path
 * (wire_reader_next), which takes whatever the socket holds and hands out
 * whole messages from its buffer. The input is what a peer sends, through a
 * socket pair; the reader's buffer is small (four pages of data) so that
 * messages too large for it come up. Every message handed out lies wholly
 * inside the bytes sent, in order, with its data right after its fixed part;
 * the stream ends with an orderly EOF or one refused message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_reader rd;
	struct ferry_err err;
	struct wire_msg m;
	const uint8_t *payload;
	size_t consumed = 0;
	int sv[2];

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	if (write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	if (wire_reader_init(&rd, WIRE_HDR_SIZE + WIRE_MAX_CTRL + 4 * WIRE_PAGE) < 0)
		abort();
	while (wire_reader_next(&rd, sv[0], &m, &payload, 1000, true, "fuzz", &err) == 0) {
		size_t total = WIRE_HDR_SIZE + (size_t)m.h.len;
		uint64_t dlen = wire_data_len(&m);
		if (consumed + total > size || total > rd.cap)
			abort(); /* more than was sent, or than the buffer holds */
		if (payload < rd.buf || payload + dlen > rd.buf + rd.cap ||
		    (size_t)(payload + dlen - rd.buf) != rd.start)
			abort(); /* the data ends where the next message begins */
		if (dlen && memcmp(payload, data + consumed + total - dlen, dlen))
			abort(); /* the data handed out is the data sent */
		consumed += total;
	}
	wire_reader_free(&rd);
	close(sv[0]);
	return 0;
}
