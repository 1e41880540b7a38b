/* iterate.c - handing successive chunks of the file to a callback. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#define MMF_CHUNK_DEFAULT ((size_t)64 << 10)

int mmapfile_foreach(mmapfile_t *f, off_t off, size_t len, size_t chunk, mmapfile_chunk_fn fn,
                     void *arg)
{
	if (!f || !fn || off < 0 || len > (size_t)MMF_OFF_MAX || (off_t)len > MMF_OFF_MAX - off ||
	    chunk > SSIZE_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (!f->readable) {
		errno = EBADF;
		return -1;
	}
	if (chunk == 0)
		chunk = MMF_CHUNK_DEFAULT;
	/* The callback gets a copy, so that it never touches the mapping: a
	 * fault there (another process cut the file) would be its own. */
	char *buf = malloc(chunk);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	off_t end = len ? off + (off_t)len : MMF_OFF_MAX;
	int rc = 0;
	while (off < end) {
		size_t want = (off_t)chunk < end - off ? chunk : (size_t)(end - off);
		ssize_t got = mmf_readat(f, buf, want, off);
		if (got <= 0) {
			rc = got < 0 ? -1 : 0; /* the end of the file */
			break;
		}
		if ((rc = fn(buf, (size_t)got, off, arg)) != 0)
			break;
		off += got;
	}
	int err = errno;
	free(buf);
	errno = err;
	return rc;
}
