/*
 * server/wire.c: a walk over serialized protobuf bytes that checks every
 * string field before protobuf-c unpacks it.  protobuf-c accepts invalid
 * UTF-8 and keeps a string only up to its first NUL byte, so a password
 * "abc\0def" would arrive as "abc"; checking the raw bytes is the only
 * place such input can be seen.
 */
#include "srv_int.h"

static bool
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		x |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return true;
		}
	}
	return false;
}

static const char *
walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
    const uint8_t *end, int depth)
{
	if (depth > 16)
		return "(nesting)";
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, len;
		const char *bad;

		if (!varint(&p, end, &key))
			return NULL;	/* malformed: unpack will reject it */
		f = protobuf_c_message_descriptor_get_field(desc,
		    (unsigned)(key >> 3));
		switch (key & 7) {
		case 0:
			if (!varint(&p, end, &len))
				return NULL;
			continue;
		case 1:
			p += 8;
			continue;
		case 5:
			p += 4;
			continue;
		case 2:
			break;
		default:
			return NULL;
		}
		if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
			return NULL;
		if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
		    !vg_utf8_valid((const char *)p, (size_t)len))
			return f->name;
		if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
			bad = walk(f->descriptor, p, p + len, depth + 1);
			if (bad != NULL)
				return f->name;
		}
		p += len;
	}
	return NULL;
}

const char *
srv_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
    size_t len)
{
	return walk(desc, buf, buf + len, 0);
}
