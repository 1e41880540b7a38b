/* stdio.c - a stdio stream over a handle (fopencookie(3)).
 *
 * The stream's reads, writes and seeks are the handle's cursor calls;
 * closing the stream frees the cookie and leaves the handle open.  The
 * rules follow fdopen(3): the mode must be allowed by the handle's access
 * mode, "w" does not truncate, and the stream starts at the handle's
 * cursor.  "a" makes every write of the stream append (at the file's end,
 * atomically with the handle's other calls) without changing the handle
 * itself; on an O_APPEND handle every write appends whatever the mode, and
 * stdio is told so. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* The offset type of the seek hook: off64_t in glibc, off_t elsewhere (the
 * same 64-bit type under _FILE_OFFSET_BITS=64). */
#ifdef __GLIBC__
typedef off64_t cookie_off;
#else
typedef off_t cookie_off;
#endif

struct cookie {
	struct mmapfile *f;
	FILE *fp;    /* the stream (set once fopencookie returns) */
	bool append; /* "a": every write at the end */
};

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
	/* stdio's contract is the handle's: bytes, 0 at the end, -1 on error. */
	return mmapfile_read(((struct cookie *)c)->f, buf, n > SSIZE_MAX ? SSIZE_MAX : n);
}

/* One write at the file's end, as an O_APPEND handle makes it: under the
 * cursor lock, landing after whatever is there (other processes' appends
 * included), leaving the cursor after it. */
static ssize_t append_once(struct mmapfile *f, const char *buf, size_t n)
{
	return mmf_cursor_write(f, buf, n, true);
}

/* stdio wants the bytes written, and takes fewer than asked for as an
 * error (it must never see a negative count): write all of them, or stop
 * at the first failure with its errno. */
static ssize_t write_all(struct mmapfile *f, const char *buf, size_t n, bool append)
{
	size_t done = 0;
	while (done < n) {
		size_t want = n - done > SSIZE_MAX ? SSIZE_MAX : n - done;
		ssize_t k = append ? append_once(f, buf + done, want)
		                   : mmapfile_write(f, buf + done, want);
		if (k <= 0) {
			if (k == 0)
				errno = EIO; /* no progress and no error: never loop on it */
			break;
		}
		done += (size_t)k;
	}
	return (ssize_t)done;
}

static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
	struct cookie *ck = c;
	ssize_t k = write_all(ck->f, buf, n, ck->append);
#if defined(__GLIBC__) && !defined(__UCLIBC__)
	/* glibc's stdio caches the stream's offset (_offset), and its write for
	 * files advances it, but the write for cookie streams does not (libio's
	 * _IO_cookie_write; fmemopen has the same flaw): a seek inside the
	 * buffer, a write, then fseek(SEEK_CUR) or ftell would come out short
	 * by the bytes written.  Do what _IO_new_file_write does.  (Appending
	 * streams keep no cached offset: it stays -1.) */
	if (k > 0 && ck->fp && ck->fp->_offset >= 0)
		ck->fp->_offset += k;
#endif
	return k;
}

static int cookie_seek(void *c, cookie_off *off, int whence)
{
	off_t pos = mmapfile_seek(((struct cookie *)c)->f, (off_t)*off, whence);
	if (pos < 0)
		return -1;
	*off = pos;
	return 0;
}

/* The stream does not own the handle: closing it frees the cookie only. */
static int cookie_close(void *c)
{
	free(c);
	return 0;
}

static const cookie_io_functions_t hooks = {
	.read = cookie_read, .write = cookie_write, .seek = cookie_seek, .close = cookie_close,
};

/* fopen's modes: "r", "w" or "a", then any of '+', and 'b', 'e', 'x', which
 * mean nothing here (binary is text on POSIX, the descriptor is already
 * close-on-exec, the file already exists).  Anything else is refused rather
 * than ignored, so that "rw" does not quietly give a read-only stream. */
static int parse_mode(const char *mode, bool *rd, bool *wr, bool *app)
{
	if (!mode)
		return -1;
	*rd = *mode == 'r';
	*wr = *mode == 'w' || *mode == 'a';
	*app = *mode == 'a';
	if (!*rd && !*wr)
		return -1;
	for (const char *p = mode + 1; *p; p++) {
		switch (*p) {
		case '+':
			*rd = *wr = true;
			break;
		case 'b':
		case 'e':
		case 'x':
			break;
		default:
			return -1;
		}
	}
	return 0;
}

FILE *mmapfile_fopen(mmapfile_t *f, const char *mode)
{
	bool rd, wr, app;
	if (!f || parse_mode(mode, &rd, &wr, &app) != 0 || (rd && !f->readable) ||
	    (wr && !f->writable)) {
		errno = EINVAL;
		return NULL;
	}
	/* Tell stdio when writes land at the end, so that it does not trust its
	 * idea of the position after one (an O_APPEND handle appends in any
	 * mode, as a descriptor with O_APPEND does). */
	bool at_eof = wr && (app || f->append);
	const char *how = !wr ? "r" : at_eof ? (rd ? "a+" : "a") : (rd ? "r+" : "w");
	struct cookie *ck = malloc(sizeof *ck);
	if (!ck)
		return NULL; /* ENOMEM */
	*ck = (struct cookie){ .f = f, .fp = NULL, .append = app };
	/* fopencookie's only failure is memory (errno ENOMEM). */
	FILE *fp = fopencookie(ck, how, hooks);
	if (!fp) {
		int err = errno;
		free(ck);
		errno = err;
		return NULL;
	}
	ck->fp = fp;
	return fp;
}
