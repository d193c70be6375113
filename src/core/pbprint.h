/*
 * pbprint: print any protobuf-c message by walking its descriptor.
 *
 * Nothing here knows ferry's schemas: the printers look only at the
 * ProtobufCMessageDescriptor, so a field added to images/ferry.proto shows up
 * without touching this code. Optional fields that are absent are skipped;
 * repeated fields are always printed (an empty one as []), so that a reader
 * sees that the list exists and is empty.
 *
 * Two formats:
 *  - text: one "name: value" per line, nested messages indented by two
 *    spaces per level; an element of a repeated field whose fields are all
 *    single scalars or strings (a VMA, a page run) goes on one line as
 *    "name[i]: {a: 1, b: 2}". Unsigned fields whose name says they hold an
 *    address, offset, mask or flag set (vaddr, start, end_code, arg_start,
 *    handler, mask, flags, ...) are printed in hex, as is an all-ones u64
 *    (RLIM_INFINITY), mode/umask in octal, bytes as their length and the
 *    first 32 bytes in hex.
 *  - JSON: valid JSON (strings escaped, invalid UTF-8 replaced by U+FFFD),
 *    integers of every width as plain numbers, enums by name, bytes as a
 *    string of lowercase hex digits, non-finite floats as "NaN"/"Infinity".
 *
 * Both return 0, or -EIO if the stream reported an error.
 */
#ifndef FERRY_CORE_PBPRINT_H
#define FERRY_CORE_PBPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

/* Print the fields of m, each line indented by `indent` levels (two spaces each). */
int pb_print_text(FILE *f, const ProtobufCMessage *m, int indent);

/*
 * Print m as one JSON object. The opening brace goes where the stream is;
 * the lines inside are indented as if the object sat at depth `indent`, so
 * that a caller can nest it inside its own pretty-printed object.
 */
int pb_print_json(FILE *f, const ProtobufCMessage *m, int indent);

/* Print s (len bytes) as a quoted, escaped JSON string. */
void pb_json_string(FILE *f, const char *s, size_t len);

/* Print s quoted for a human: C escapes for quotes, control bytes and invalid UTF-8. */
void pb_text_string(FILE *f, const char *s);

/* True if an unsigned field of this name reads best in hex. */
bool pb_field_is_hex(const char *name);

#endif
