/*
 * Opening a page-server connection: the hello exchange (version and
 * features) and the optional challenge-response over a pre-shared key
 * (HMAC-SHA256 from nettle; docs/protocol.md, "Authentication").
 *
 * Both sides refuse a peer of another protocol version, a peer that is not
 * ferry, and a key mismatch (or a key on one side only), with an ERROR to the
 * peer and an error here that says which of these it was.
 */
#ifndef FERRY_NET_AUTH_H
#define FERRY_NET_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/wire.h"

#define WIRE_KEY_MIN 16
#define WIRE_KEY_MAX 4096

struct wire_key {
	size_t len;
	uint8_t data[WIRE_KEY_MAX];
};

/* Read a key file (16 to 4096 bytes, used as it is). */
int wire_key_load(const char *path, struct wire_key *k, struct ferry_err *err);
/* Forget the key (overwrites it). */
void wire_key_wipe(struct wire_key *k);

/* HMAC-SHA256(key, label || a || b): the proof of a client (server = 0) or server. */
void wire_auth_proof(const struct wire_key *k, int server, const uint8_t a[WIRE_NONCE_SIZE],
		     const uint8_t b[WIRE_NONCE_SIZE], uint8_t out[WIRE_PROOF_SIZE]);

/*
 * Client side: send HELLO with role and features, check the reply, and
 * authenticate with key (NULL: none). *features gets the agreed set.
 */
int wire_client_hello(int fd, const char *peer, enum wire_role role, uint64_t features,
		      const struct wire_key *key, uint64_t *agreed, struct ferry_err *err);

/*
 * Server side: wait for HELLO (at most timeout_ms), answer it, and check the
 * client's proof when key is set. *role and *agreed describe the client.
 */
int wire_server_hello(int fd, const char *peer, uint64_t features, const struct wire_key *key,
		      int timeout_ms, uint16_t *role, uint64_t *agreed, struct ferry_err *err);

#endif
