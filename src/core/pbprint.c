/*
 * pbprint: a generic protobuf-c message printer (see pbprint.h).
 *
 * protobuf-c lays a message out as a C struct described by its descriptor:
 * each field has an offset to its value and, for optional and repeated
 * fields, a "quantifier" offset. The quantifier is a protobuf_c_boolean
 * has_NAME for optional scalars and bytes, a size_t n_NAME for repeated
 * fields (the value is then a pointer to an array), and the case enum for
 * oneof members. Optional strings and messages have no quantifier: they are
 * absent when the pointer is NULL (or, for strings, the default value).
 * The functions below read values only through those rules.
 */
#include "core/pbprint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PB_INDENT 2
#define PB_TEXT_BYTES 32

enum style { STYLE_TEXT, STYLE_JSON };

static void pad(FILE *f, int indent)
{
	fprintf(f, "%*s", indent * PB_INDENT, "");
}

static bool has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return true;
	return false;
}

bool pb_field_is_hex(const char *name)
{
	static const char *const exact[] = {
	    "vaddr",	   "start",	      "end",	    "addr",
	    "off",	   "offset",	      "handler",    "restorer",
	    "mask",	   "blocked",	      "sp",	    "brk",
	    "pgoff",	   "xfeatures",	      "shmid",	    "xxh3",
	    "auxv",	   "flags",	      "prot",	    "madv",
	    "personality", "securebits",      "boot_id_hi", "boot_id_lo",
	    "robust_list", "clear_child_tid", NULL,
	};
	static const char *const prefixes[] = {"start_", "end_", "cap_", NULL};
	static const char *const suffixes[] = {"_start", "_end",  "_addr",  "_off",
					       "_sp",	 "_mask", "_flags", NULL};

	if (has_suffix(name, "_time") || has_suffix(name, "_ns") || has_suffix(name, "_size") ||
	    has_suffix(name, "_len"))
		return false;
	if (name_in(name, exact))
		return true;
	for (const char *const *p = prefixes; *p; p++)
		if (has_prefix(name, *p))
			return true;
	for (const char *const *s = suffixes; *s; s++)
		if (has_suffix(name, *s))
			return true;
	return false;
}

static bool field_is_octal(const char *name)
{
	return !strcmp(name, "mode") || !strcmp(name, "umask");
}

/* Size of one value of this type in the C struct (or in a repeated array). */
static size_t value_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

static const char *member(const ProtobufCMessage *m, unsigned offset)
{
	return (const char *)m + offset;
}

/* proto3 fields without a label are present when they are not zero. */
static bool value_is_zero(const ProtobufCFieldDescriptor *fd, const void *v)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)v;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)v)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const void *const *)v == NULL;
	default: {
		static const char zeros[8];
		return !memcmp(v, zeros, value_size(fd->type));
	}
	}
}

/* How many values the field holds in m: the array length if repeated, else 0 or 1. */
static size_t field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const void *v = member(m, fd->offset);

	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)member(m, fd->quantifier_offset);
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)member(m, fd->quantifier_offset) == fd->id;
	if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
		return 1;
	if (fd->label == PROTOBUF_C_LABEL_NONE)
		return !value_is_zero(fd, v);
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
		const void *p = *(const void *const *)v;
		return p && p != fd->default_value;
	}
	return *(const protobuf_c_boolean *)member(m, fd->quantifier_offset) != 0;
}

/* Address of value i of the field (i is 0 for a non-repeated field). */
static const void *field_value(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
			       size_t i)
{
	const char *v = member(m, fd->offset);

	if (fd->label != PROTOBUF_C_LABEL_REPEATED)
		return v;
	return *(const char *const *)v + i * value_size(fd->type);
}

static bool is_shown(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	return fd->label == PROTOBUF_C_LABEL_REPEATED || field_count(m, fd) > 0;
}

static bool has_shown_fields(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields)
		return true;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (is_shown(m, &d->fields[i]))
			return true;
	return false;
}

static void put_unsigned(FILE *f, const char *name, uint64_t v, enum style style)
{
	/* Small values read the same in every base: no prefix for them. */
	if (style == STYLE_TEXT && v >= 10 && (pb_field_is_hex(name) || v == UINT64_MAX))
		fprintf(f, "0x%" PRIx64, v);
	else if (style == STYLE_TEXT && v >= 8 && field_is_octal(name))
		fprintf(f, "0%" PRIo64, v);
	else
		fprintf(f, "%" PRIu64, v);
}

/* The shortest %g that reads back as the same value (a float needs at most 9 digits). */
static void put_double(FILE *f, double v, bool is_float, enum style style)
{
	char buf[40];

	if (!isfinite(v)) {
		const char *s = isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
		fprintf(f, style == STYLE_JSON ? "\"%s\"" : "%s", s);
		return;
	}
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
}

static void put_enum(FILE *f, const ProtobufCFieldDescriptor *fd, int v, enum style style)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);

	if (!ev)
		fprintf(f, "%d", v);
	else if (style == STYLE_JSON)
		fprintf(f, "\"%s\"", ev->name);
	else
		fputs(ev->name, f);
}

/* Length of the valid UTF-8 sequence starting at s, 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	/* The second byte's range excludes overlong forms, surrogates and > U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* The backslash escape that C and JSON share for c, NULL if there is none. */
static const char *short_escape(unsigned char c)
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	default:
		return NULL;
	}
}

/*
 * Quote s: valid multi-byte UTF-8 passes through, short escapes where they
 * exist, other control bytes as \u00XX (JSON) or \xXX (text). An invalid
 * byte becomes U+FFFD in JSON, which must be UTF-8, and \xXX in text.
 */
static void put_string(FILE *f, const char *s, size_t len, enum style style)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	fputc('"', f);
	while (p < end) {
		size_t n = utf8_len(p, end - p);
		const char *esc = n == 1 ? short_escape(*p) : NULL;

		if (n > 1)
			fwrite(p, 1, n, f);
		else if (esc)
			fputs(esc, f);
		else if (n == 1 && *p >= 0x20 && *p != 0x7f)
			fputc(*p, f);
		else if (style == STYLE_TEXT)
			fprintf(f, "\\x%02x", *p);
		else if (n == 0)
			fputs("\\ufffd", f);
		else
			fprintf(f, "\\u%04x", *p);
		p += n ? n : 1;
	}
	fputc('"', f);
}

void pb_text_string(FILE *f, const char *s)
{
	put_string(f, s, strlen(s), STYLE_TEXT);
}

void pb_json_string(FILE *f, const char *s, size_t len)
{
	put_string(f, s, len, STYLE_JSON);
}

static void put_hex(FILE *f, const uint8_t *data, size_t len, bool grouped)
{
	for (size_t i = 0; i < len; i++) {
		if (grouped && i && i % 8 == 0)
			fputc(' ', f);
		fprintf(f, "%02x", data[i]);
	}
}

static void put_bytes(FILE *f, const ProtobufCBinaryData *b, enum style style)
{
	if (style == STYLE_JSON) {
		fputc('"', f);
		put_hex(f, b->data, b->len, false);
		fputc('"', f);
		return;
	}
	fprintf(f, "<%zu bytes>", b->len);
	if (!b->len)
		return;
	fputc(' ', f);
	put_hex(f, b->data, b->len < PB_TEXT_BYTES ? b->len : PB_TEXT_BYTES, true);
	if (b->len > PB_TEXT_BYTES)
		fputs(" ...", f);
}

static void json_message(FILE *f, const ProtobufCMessage *m, int indent);

/* One value that fits on the current line (any type but a message in text style). */
static void put_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *v, enum style style,
		      int indent)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		put_unsigned(f, fd->name, *(const uint32_t *)v, style);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%" PRId64, *(const int64_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		put_unsigned(f, fd->name, *(const uint64_t *)v, style);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_double(f, *(const float *)v, true, style);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_double(f, *(const double *)v, false, style);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)v ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		put_enum(f, fd, *(const int *)v, style);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)v;
		if (!s)
			s = "";
		if (style == STYLE_JSON)
			pb_json_string(f, s, strlen(s));
		else
			pb_text_string(f, s);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		put_bytes(f, v, style);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (style == STYLE_JSON)
			json_message(f, *(const ProtobufCMessage *const *)v, indent);
		break;
	}
}

/* Scalars of a repeated field go on one line; strings, bytes and messages one per line. */
static bool one_line_type(ProtobufCType type)
{
	return type != PROTOBUF_C_TYPE_STRING && type != PROTOBUF_C_TYPE_BYTES &&
	       type != PROTOBUF_C_TYPE_MESSAGE;
}

static const char *wire_type_name(ProtobufCWireType wt)
{
	switch (wt) {
	case PROTOBUF_C_WIRE_TYPE_VARINT:
		return "varint";
	case PROTOBUF_C_WIRE_TYPE_64BIT:
		return "64-bit";
	case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
		return "length-delimited";
	case PROTOBUF_C_WIRE_TYPE_32BIT:
		return "32-bit";
	default:
		return "unknown";
	}
}

static void text_message(FILE *f, const ProtobufCMessage *m, int indent);

/*
 * A message whose fields are all single scalars or strings: elements of a
 * repeated field of such messages (VMAs, page runs, rlimits) print one per
 * line, which keeps a pagemap of thousands of runs readable.
 */
static bool is_flat(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields)
		return false;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (!is_shown(m, fd))
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED || fd->type == PROTOBUF_C_TYPE_BYTES ||
		    fd->type == PROTOBUF_C_TYPE_MESSAGE)
			return false;
	}
	return true;
}

/* "{a: 1, b: "x"}" for a flat message. */
static void text_inline(FILE *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	fputc('{', f);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (!is_shown(m, fd))
			continue;
		fprintf(f, "%s%s: ", first ? "" : ", ", fd->name);
		put_value(f, fd, field_value(m, fd, 0), STYLE_TEXT, 0);
		first = false;
	}
	fputc('}', f);
}

/* "name: value" for one value; a nested message continues on the lines below. */
static void text_entry(FILE *f, const ProtobufCFieldDescriptor *fd, const void *v, int indent,
		       long index)
{
	pad(f, indent);
	if (index < 0)
		fprintf(f, "%s:", fd->name);
	else
		fprintf(f, "%s[%ld]:", fd->name, index);
	if (fd->type != PROTOBUF_C_TYPE_MESSAGE) {
		fputc(' ', f);
		put_value(f, fd, v, STYLE_TEXT, indent);
		fputc('\n', f);
		return;
	}
	v = *(const ProtobufCMessage *const *)v;
	if (!has_shown_fields(v)) {
		fputs(" {}\n", f);
	} else if (index >= 0 && is_flat(v)) {
		fputc(' ', f);
		text_inline(f, v);
		fputc('\n', f);
	} else {
		fputc('\n', f);
		text_message(f, v, indent + 1);
	}
}

static void text_field(FILE *f, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
		       int indent)
{
	size_t n = field_count(m, fd);

	if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
		if (n)
			text_entry(f, fd, field_value(m, fd, 0), indent, -1);
		return;
	}
	if (n == 0 || one_line_type(fd->type)) {
		pad(f, indent);
		fprintf(f, "%s: [", fd->name);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputs(", ", f);
			put_value(f, fd, field_value(m, fd, i), STYLE_TEXT, indent);
		}
		fputs("]\n", f);
		return;
	}
	for (size_t i = 0; i < n; i++)
		text_entry(f, fd, field_value(m, fd, i), indent, (long)i);
}

static void text_message(FILE *f, const ProtobufCMessage *m, int indent)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++)
		text_field(f, m, &d->fields[i], indent);
	for (size_t i = 0; i < m->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
		pad(f, indent);
		fprintf(f, "unknown field %" PRIu32 ": %s, %zu bytes\n", u->tag,
			wire_type_name(u->wire_type), u->len);
	}
}

int pb_print_text(FILE *f, const ProtobufCMessage *m, int indent)
{
	text_message(f, m, indent);
	return ferror(f) ? -EIO : 0;
}

static void json_array(FILE *f, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
		       int indent)
{
	size_t n = field_count(m, fd);

	if (n == 0 || one_line_type(fd->type)) {
		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputs(", ", f);
			put_value(f, fd, field_value(m, fd, i), STYLE_JSON, indent);
		}
		fputc(']', f);
		return;
	}
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n" : "\n", f);
		pad(f, indent + 1);
		put_value(f, fd, field_value(m, fd, i), STYLE_JSON, indent + 1);
	}
	fputc('\n', f);
	pad(f, indent);
	fputc(']', f);
}

static void json_key(FILE *f, const char *name, bool *first, int indent)
{
	fputs(*first ? "\n" : ",\n", f);
	*first = false;
	pad(f, indent);
	pb_json_string(f, name, strlen(name));
	fputs(": ", f);
}

static void json_unknown(FILE *f, const ProtobufCMessage *m, int indent)
{
	fputc('[', f);
	for (size_t i = 0; i < m->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
		fprintf(f, "%s{\"tag\": %" PRIu32 ", \"wire_type\": \"%s\", \"len\": %zu}",
			i ? ", " : "", u->tag, wire_type_name(u->wire_type), u->len);
	}
	fputc(']', f);
}

static void json_message(FILE *f, const ProtobufCMessage *m, int indent)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	fputc('{', f);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (!is_shown(m, fd))
			continue;
		json_key(f, fd->name, &first, indent + 1);
		if (fd->label == PROTOBUF_C_LABEL_REPEATED)
			json_array(f, m, fd, indent + 1);
		else
			put_value(f, fd, field_value(m, fd, 0), STYLE_JSON, indent + 1);
	}
	if (m->n_unknown_fields) {
		/* Fields a newer ferry wrote: name them so that the loss is visible. */
		json_key(f, "_unknown_fields", &first, indent + 1);
		json_unknown(f, m, indent + 1);
	}
	if (!first) {
		fputc('\n', f);
		pad(f, indent);
	}
	fputc('}', f);
}

int pb_print_json(FILE *f, const ProtobufCMessage *m, int indent)
{
	json_message(f, m, indent);
	return ferror(f) ? -EIO : 0;
}
