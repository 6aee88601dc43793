/*
 * worker/media.c: videos on local disk.  Provider URLs expire within
 * minutes, so a finished generation is downloaded right away into the
 * media folder, checked (status, Content-Type, the MP4 'ftyp' box, the
 * size cap) and recorded with its file:// URL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wrk_int.h"

void
wrk_media_path(const struct wrk_job *job, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.mp4", job->w->cfg->media_dir, job->row.id);
}

int
wrk_media_fetch(struct wrk_job *job, const char *url, bool auth)
{
	struct wrk_xfer *x;

	/* Only http(s): file://, ftp:// and friends never reach libcurl. */
	if (strncasecmp(url, "https://", 8) != 0 &&
	    strncasecmp(url, "http://", 7) != 0)
		return VG_EPERM;
	x = wrk_xfer_new(job, WRK_XFER_MEDIA, url, auth, NULL);
	if (x == NULL)
		return VG_ENOMEM;
	wrk_media_path(job, x->path, sizeof(x->path));
	snprintf(x->part, sizeof(x->part), "%s.%d", x->path,
	    job->fence.attempt);
	x->file = fopen(x->part, "wbx");
	if (x->file == NULL && errno == EEXIST) {
		unlink(x->part);	/* a leftover of a killed worker */
		x->file = fopen(x->part, "wbx");
	}
	if (x->file == NULL) {
		vg_error("cannot create media file path=%s error=\"%s\"",
		    x->part, strerror(errno));
		x->part[0] = '\0';
		wrk_xfer_free(x);
		return VG_EINTERNAL;
	}
	if (wrk_xfer_start(x) < 0) {
		wrk_xfer_free(x);
		return VG_EINTERNAL;
	}
	return 0;
}

void
wrk_media_finish(struct wrk_job *job, struct wrk_xfer *x, int rc,
    const char *source_url, int duration, json_t *metadata)
{
	char url[600];
	int err;

	if (!wrk_xfer_ok(x, rc) || x->bad_type || x->too_big) {
		json_decref(metadata);
		wrk_job_http_failed(job, x, rc, "video download");
		return;
	}
	if (x->nhead < 8 || memcmp(x->head + 4, "ftyp", 4) != 0) {
		json_decref(metadata);
		wrk_job_failed(job, WRK_CLASS_PERMANENT,
		    "the provider's video file is not an MP4 video", -1);
		return;
	}
	err = fflush(x->file) != 0 || ferror(x->file);
	err |= fclose(x->file) != 0;
	x->file = NULL;
	if (err || rename(x->part, x->path) < 0) {
		vg_error("cannot store media job=%s path=%s error=\"%s\"",
		    job->row.id, x->path, strerror(errno));
		json_decref(metadata);
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the video could not be stored", -1);
		return;
	}
	x->part[0] = '\0';
	snprintf(url, sizeof(url), "file://%s", x->path);
	if (metadata != NULL) {
		json_object_set_new(metadata, "source_url",
		    json_string(source_url));
		json_object_set_new(metadata, "bytes",
		    json_integer((json_int_t)x->total));
	}
	wrk_job_succeed(job, url, duration, metadata);
}

int
wrk_media_write_sample(const char *path)
{
	/* ftyp isom, a free box and a small mdat: enough to look like MP4. */
	static const unsigned char ftyp[] = {
		0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm',
		0, 0, 2, 0, 'i', 's', 'o', 'm', 'm', 'p', '4', '1',
		0, 0, 0, 8, 'f', 'r', 'e', 'e',
		0, 0, 4, 8, 'm', 'd', 'a', 't',
	};
	char part[600];
	FILE *f;
	int err;

	snprintf(part, sizeof(part), "%s.part", path);
	f = fopen(part, "wb");
	if (f == NULL)
		return VG_EINTERNAL;
	err = fwrite(ftyp, 1, sizeof(ftyp), f) != sizeof(ftyp);
	for (int i = 0; i < 1024; i++)
		err |= fwrite("\0\0\0\0", 1, 4, f) != 4;
	err |= fclose(f) != 0;
	if (err || rename(part, path) < 0) {
		unlink(part);
		return VG_EINTERNAL;
	}
	return 0;
}
