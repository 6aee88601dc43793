/*
 * client/ctl_table.c: what the jobs and videos commands share: a
 * positional ID, page sizes and enum names on the command line, and
 * lists printed as tables that fit the terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define TABLE_MAX_COLS 16
#define FLEX_MIN 10		/* a cut column keeps at least this much */

int
ctl_cmd_parse_id(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv, char **id)
{
	char *found = NULL;
	int i = 1, rv;

	while (i < argc) {
		rv = ctl_flags_parse(ctl, cmd, flags, argc, argv, &i);
		if (rv == CTL_HELP) {
			/* ctl_cmd_parse prints the help. */
			char *help[] = { argv[0], "--help", NULL };

			return ctl_cmd_parse(ctl, cmd, flags, 2, help);
		}
		if (rv != 0)
			return rv;
		if (i >= argc)
			break;
		if (found != NULL)
			return ctl_usage(ctl, cmd, "unexpected argument '%s'",
			    argv[i]);
		found = argv[i++];
	}
	if (found == NULL || found[0] == '\0')
		return ctl_usage(ctl, cmd, "an ID is required");
	*id = found;
	return 0;
}

int
ctl_page_size_parse(const char *s, int32_t *out)
{
	long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}

int
ctl_enum_parse(const ProtobufCEnumDescriptor *desc, const char *prefix,
    const char *s)
{
	size_t plen = strlen(prefix);
	unsigned i;

	for (i = 0; i < desc->n_values; i++) {
		const char *name = desc->values[i].name;

		if (desc->values[i].value == 0)
			continue;
		if (strncmp(name, prefix, plen) == 0)
			name += plen;
		if (strcasecmp(name, s) == 0)
			return desc->values[i].value;
	}
	return -1;
}

const char *
ctl_enum_lower(const ProtobufCEnumDescriptor *desc, const char *prefix,
    int value, char *buf, size_t len)
{
	const ProtobufCEnumValue *ev;
	const char *name;
	size_t i;

	ev = protobuf_c_enum_descriptor_get_value(desc, value);
	if (value == 0) {
		snprintf(buf, len, "-");
	} else if (ev == NULL) {
		snprintf(buf, len, "%d", value);
	} else {
		name = ev->name;
		if (strncmp(name, prefix, strlen(prefix)) == 0)
			name += strlen(prefix);
		for (i = 0; name[i] != '\0' && i + 1 < len; i++)
			buf[i] = (char)tolower((unsigned char)name[i]);
		if (len > 0)
			buf[i] = '\0';
	}
	return buf;
}

const char *
ctl_time_local(const Google__Protobuf__Timestamp *ts, char *buf, size_t len)
{
	time_t t;
	struct tm tm;

	if (ts == NULL || (t = (time_t)ts->seconds, localtime_r(&t, &tm)) ==
	    NULL || strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

int
ctl_term_width(void)
{
	struct winsize ws;
	const char *env;
	long v;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) ==
	    0 && ws.ws_col > 0)
		return ws.ws_col;
	env = getenv("COLUMNS");
	if (env != NULL && (v = strtol(env, NULL, 10)) > 0 && v < 100000)
		return (int)v;
	return 0;
}

/* ulen counts the characters of UTF-8 text (ctl_json_str made it valid). */
static size_t
ulen(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * cell_put writes at most w characters of s, "..." ending a cut, then
 * pads to w when `pad`.
 */
static void
cell_put(const char *s, size_t w, bool pad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = ulen(s), keep = n, shown = 0;

	if (n > w)
		keep = w > 3 ? w - 3 : w;
	for (; *p != '\0'; p++) {
		if ((*p & 0xc0) != 0x80 && shown++ == keep)
			break;
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
	}
	if (n > w) {
		if (w > 3)
			fputs("...", stdout);
		n = w;
	}
	if (pad)
		printf("%*s", (int)(w - n), "");
}

static void
row_put(const json_t *row, const size_t *w, size_t ncol)
{
	size_t j;

	for (j = 0; j < ncol; j++) {
		if (j > 0)
			fputs("  ", stdout);
		cell_put(json_string_value(json_array_get(row, j)) ?
		    json_string_value(json_array_get(row, j)) : "", w[j],
		    j + 1 < ncol);
	}
	putchar('\n');
}

int
ctl_table_print(const json_t *titles, const json_t *rows, size_t flex,
    int width)
{
	size_t w[TABLE_MAX_COLS] = { 0 }, ncol, i, j, n, total, others;
	const json_t *row;

	ncol = json_array_size(titles);
	if (ncol > TABLE_MAX_COLS)
		ncol = TABLE_MAX_COLS;
	for (j = 0; j < ncol; j++)
		w[j] = ulen(json_string_value(json_array_get(titles, j)));
	json_array_foreach(rows, i, row)
		for (j = 0; j < ncol; j++) {
			const char *s = json_string_value(
			    json_array_get(row, j));

			if (s != NULL && (n = ulen(s)) > w[j])
				w[j] = n;
		}

	total = 2 * (ncol - 1);
	for (j = 0; j < ncol; j++)
		total += w[j];
	if (width > 0 && total > (size_t)width && flex < ncol) {
		others = total - w[flex];
		w[flex] = (size_t)width > others + FLEX_MIN ?
		    (size_t)width - others : FLEX_MIN;
	}

	row_put(titles, w, ncol);
	json_array_foreach(rows, i, row)
		row_put(row, w, ncol);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write the output");
		return CTL_EXIT_RPC;
	}
	return 0;
}

int
ctl_pages_fetch(struct ctl *ctl, const char *method, ProtobufCMessage *req,
    char **page_token, const ProtobufCMessageDescriptor *resp_desc, bool all,
    ProtobufCMessage ***pages, size_t *n)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(resp_desc,
	    "next_page_token");
	ProtobufCMessage *m, **grown;
	struct vgen_status st;
	const char *next;

	*pages = NULL;
	*n = 0;
	for (;;) {
		m = NULL;
		if (vgen_call(ctl->client, method, req, resp_desc, &m,
		    &st) != 0)
			return ctl_rpc_fail(ctl, &st);
		grown = realloc(*pages, (*n + 1) * sizeof(**pages));
		if (grown == NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			ctl_err("out of memory");
			return CTL_EXIT_RPC;
		}
		*pages = grown;
		(*pages)[(*n)++] = m;
		next = *(char **)((char *)m + f->offset);
		if (!all || next == NULL || next[0] == '\0')
			return 0;
		/* A server handing the same token back would loop forever. */
		if (strcmp(next, *page_token) == 0) {
			ctl_err("the server repeated page token %s", next);
			return CTL_EXIT_RPC;
		}
		*page_token = (char *)next;
	}
}

void
ctl_pages_free(ProtobufCMessage **pages, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(pages[i], NULL);
	free(pages);
}

int
ctl_print_listing(struct ctl *ctl, const char *key, json_t *items,
    bool failed, json_t *titles, size_t flex, const char *next)
{
	json_t *obj;
	int rv;

	if (next == NULL)
		next = "";
	if (items == NULL || failed || (!ctl->json && titles == NULL)) {
		ctl_err("out of memory");
		rv = CTL_EXIT_RPC;
	} else if (ctl->json) {
		obj = json_pack("{s:O,s:o}", key, items, "next_page_token",
		    ctl_json_str(next));
		rv = ctl_print(ctl, obj);
		json_decref(obj);
	} else {
		rv = ctl_table_print(titles, items, flex, ctl_term_width());
		if (rv == 0 && next[0] != '\0')
			ctl_err("more: add --page-token %s (or --all)", next);
	}
	json_decref(titles);
	json_decref(items);
	return rv;
}
