/*
 * common/config.c: settings from defaults, VGEN_* environment variables and
 * --flags, in that order of precedence (the last wins).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vg.h"

static int
set_value(const struct vg_opt *o, const char *val, const char *from)
{
	char *end;
	long v;

	switch (o->type) {
	case VG_OPT_STR:
		*(const char **)o->ptr = val;
		return 0;
	case VG_OPT_BOOL:
		if (val == NULL || strcasecmp(val, "1") == 0 ||
		    strcasecmp(val, "true") == 0 || strcasecmp(val, "yes") == 0 ||
		    strcasecmp(val, "on") == 0) {
			*(bool *)o->ptr = true;
			return 0;
		}
		if (strcasecmp(val, "0") == 0 || strcasecmp(val, "false") == 0 ||
		    strcasecmp(val, "no") == 0 || strcasecmp(val, "off") == 0) {
			*(bool *)o->ptr = false;
			return 0;
		}
		break;
	case VG_OPT_INT:
		if (val == NULL || *val == '\0')
			break;
		errno = 0;
		v = strtol(val, &end, 10);
		if (errno != 0 || *end != '\0' || v < o->min || v > o->max) {
			fprintf(stderr, "%s: %s must be a whole number from %ld "
			    "to %ld, not \"%s\"\n", from, o->name, o->min, o->max,
			    val);
			return VG_EINVAL;
		}
		*(long *)o->ptr = v;
		return 0;
	}
	fprintf(stderr, "%s: bad value \"%s\" for %s\n", from,
	    val ? val : "", o->name);
	return VG_EINVAL;
}

void
vg_config_help(const struct vg_opt *opts, const char *usage)
{
	printf("%s\n\nSettings (flag, environment variable, default):\n", usage);
	for (const struct vg_opt *o = opts; o->name != NULL; o++) {
		printf("  --%-22s %s\n", o->name, o->help);
		printf("  %-24s   env %s, default %s\n", "",
		    o->env ? o->env : "-", o->def ? o->def : "(none)");
	}
	printf("  --%-22s %s\n", "help", "show this help");
}

int
vg_config_load(const struct vg_opt *opts, const char *usage, int argc,
    char **argv, char ***rest, int *nrest)
{
	const struct vg_opt *o;
	int n = 0;

	for (o = opts; o->name != NULL; o++) {
		const char *env = o->env ? getenv(o->env) : NULL;

		if (o->def != NULL && set_value(o, o->def, "default") < 0)
			return VG_EINVAL;
		if (env != NULL && *env != '\0' && set_value(o, env, o->env) < 0)
			return VG_EINVAL;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL, *eq;
		size_t len;
		bool neg = false;

		if (strcmp(arg, "--") == 0) {
			while (++i < argc)
				argv[1 + n++] = argv[i];
			break;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			argv[1 + n++] = argv[i];	/* a positional argument */
			continue;
		}
		if (strcmp(arg, "--help") == 0) {
			vg_config_help(opts, usage);
			return 1;
		}
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (o = opts; o->name != NULL; o++)
			if (strlen(o->name) == len &&
			    strncmp(o->name, arg, len) == 0)
				break;
		if (o->name == NULL && len > 3 && strncmp(arg, "no-", 3) == 0) {
			for (o = opts; o->name != NULL; o++)
				if (o->type == VG_OPT_BOOL &&
				    strlen(o->name) == len - 3 &&
				    strncmp(o->name, arg + 3, len - 3) == 0)
					break;
			neg = true;
		}
		if (o->name == NULL) {
			fprintf(stderr, "unknown flag --%.*s (see --help)\n",
			    (int)len, arg);
			return VG_EINVAL;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (neg)
			val = "false";
		else if (o->type != VG_OPT_BOOL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "--%s needs a value\n", o->name);
				return VG_EINVAL;
			}
			val = argv[++i];
		}
		if (set_value(o, val, "flag") < 0)
			return VG_EINVAL;
	}
	if (rest != NULL)
		*rest = argv + 1;
	if (nrest != NULL)
		*nrest = n;
	return 0;
}
