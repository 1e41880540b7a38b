/* mmcopy.c - copy a file with libmmapfile, the way a program would with
 * fread/fwrite.
 *
 *   mmcopy            generate a few MiB of records in a temporary directory,
 *                     copy them, scan and verify the copy, clean up
 *   mmcopy SRC DST    copy SRC to DST
 *
 * Every mmapfile_* call here stands where a stdio or system call would: open
 * for fopen/open, read/write for fread/fwrite, readat for pread, sync for
 * fsync, close for fclose.  There is no buffer to flush: a write is in the
 * file (and visible to other processes) when the call returns.
 *
 * Build against an installed library with
 *   cc -o mmcopy mmcopy.c $(pkg-config --cflags --libs mmapfile)
 */
#define _POSIX_C_SOURCE 200809L

/* First, so that off_t is 64-bit in every header that follows. */
#include <mmapfile.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK       (64 * 1024)        /* copy and scan buffer */
#define INPUT_BYTES (4 * 1024 * 1024)  /* generated input, at least */

static char buf[CHUNK], buf2[CHUNK];

/* The temporary directory and its files, removed on every exit path. */
static char tmpdir[4096], inpath[4096], outpath[4096];

static void cleanup(void)
{
	/* Errors here are reported but cannot change the outcome. */
	if (inpath[0] && unlink(inpath) != 0 && errno != ENOENT)
		fprintf(stderr, "mmcopy: removing %s: %s\n", inpath, strerror(errno));
	if (outpath[0] && unlink(outpath) != 0 && errno != ENOENT)
		fprintf(stderr, "mmcopy: removing %s: %s\n", outpath, strerror(errno));
	if (tmpdir[0] && rmdir(tmpdir) != 0)
		fprintf(stderr, "mmcopy: removing %s: %s\n", tmpdir, strerror(errno));
	inpath[0] = outpath[0] = tmpdir[0] = '\0';
}

/* Report a failed call with errno's message and exit. */
static void die(const char *what, const char *path)
{
	int err = errno;

	fprintf(stderr, "mmcopy: %s %s: %s\n", what, path, strerror(err));
	cleanup();
	exit(1);
}

/* Report a failure that has no errno and exit. */
static void fail(const char *msg, const char *path)
{
	fprintf(stderr, "mmcopy: %s: %s\n", path, msg);
	cleanup();
	exit(1);
}

/* FNV-1a, 64-bit: a running checksum over a stream of bytes. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}
#define FNV_INIT UINT64_C(0xcbf29ce484222325)

/* Close a handle, reporting the error: close trims the file to its size,
 * so its result matters as much as fclose's. */
static void close_or_die(mmapfile_t *f, const char *path)
{
	if (mmapfile_close(f) != 0)
		die("closing", path);
}

/* Copy src to dst in CHUNK-sized pieces; return the number of bytes. */
static off_t copy(const char *src, const char *dst)
{
	mmapfile_t *in, *out;
	ssize_t n;
	off_t total = 0;

	in = mmapfile_open(src, O_RDONLY, 0);
	if (in == NULL)
		die("opening", src);
	out = mmapfile_open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out == NULL)
		die("creating", dst);

	/* A single pass from start to end: ask for aggressive read-ahead.  It is
	 * only a hint, so a refusal is worth a warning, not an exit. */
	if (mmapfile_madvise(in, 0, 0, MMAPFILE_MADV_SEQUENTIAL) != 0)
		fprintf(stderr, "mmcopy: %s: madvise: %s (continuing)\n", src, strerror(errno));

	/* The fread/fwrite loop: a short read means the end of the file, 0 means
	 * done; a write is all or nothing, so anything but n is an error. */
	while ((n = mmapfile_read(in, buf, sizeof buf)) > 0) {
		if (mmapfile_write(out, buf, (size_t)n) != n)
			die("writing", dst);
		total += n;
	}
	if (n < 0)
		die("reading", src);

	/* A copy should survive a crash: flush it before saying it is done. */
	if (mmapfile_sync(out) != 0)
		die("syncing", dst);
	close_or_die(out, dst);
	close_or_die(in, src);
	return total;
}

/* Write the generated input with one small write per record, as a program
 * logging with fprintf would.  Return its size; count its lines and
 * checksum it on the way. */
static off_t generate(const char *path, unsigned long *lines, uint64_t *sum)
{
	mmapfile_t *f;
	char rec[64];
	off_t total = 0;
	unsigned long i;

	f = mmapfile_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (f == NULL)
		die("creating", path);
	*sum = FNV_INIT;
	for (i = 0; total < INPUT_BYTES; i++) {
		/* Each record carries a checksum of its own number, so the
		 * content is not just a counter. */
		uint64_t h = fnv1a(FNV_INIT, &i, sizeof i);
		int len = snprintf(rec, sizeof rec, "record %lu checksum %08" PRIx32 "\n",
		                   i, (uint32_t)(h ^ (h >> 32)));

		if (len < 0 || (size_t)len >= sizeof rec)
			fail("record too long", path);
		if (mmapfile_write(f, rec, (size_t)len) != len)
			die("writing", path);
		*sum = fnv1a(*sum, rec, (size_t)len);
		total += len;
	}
	*lines = i;
	close_or_die(f, path);
	return total;
}

/* Read a file through in chunks, counting lines and checksumming it. */
static off_t scan(const char *path, unsigned long *lines, uint64_t *sum)
{
	mmapfile_t *f;
	ssize_t n;
	off_t total = 0;

	f = mmapfile_open(path, O_RDONLY, 0);
	if (f == NULL)
		die("opening", path);
	*lines = 0;
	*sum = FNV_INIT;
	while ((n = mmapfile_read(f, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				(*lines)++;
		*sum = fnv1a(*sum, buf, (size_t)n);
		total += n;
	}
	if (n < 0)
		die("reading", path);
	close_or_die(f, path);
	return total;
}

/* Compare two files byte for byte.  This uses mmapfile_readat, the pread
 * of the library: both files are read at the same offset and neither
 * cursor moves. */
static void verify(const char *a, const char *b)
{
	mmapfile_t *fa, *fb;
	off_t off = 0;
	ssize_t na, nb;

	fa = mmapfile_open(a, O_RDONLY, 0);
	if (fa == NULL)
		die("opening", a);
	fb = mmapfile_open(b, O_RDONLY, 0);
	if (fb == NULL)
		die("opening", b);
	if (mmapfile_size(fa) != mmapfile_size(fb))
		fail("size differs from the input", b);
	do {
		na = mmapfile_readat(fa, buf, sizeof buf, off);
		if (na < 0)
			die("reading", a);
		nb = mmapfile_readat(fb, buf2, sizeof buf2, off);
		if (nb < 0)
			die("reading", b);
		if (na != nb || memcmp(buf, buf2, (size_t)na) != 0)
			fail("copy differs from the input", b);
		off += na;
	} while (na > 0);
	close_or_die(fb, b);
	close_or_die(fa, a);
}

/* The report went to stdout: make sure it got there. */
static int finish(void)
{
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mmcopy: writing standard output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long gen_lines, scan_lines;
	uint64_t gen_sum, scan_sum;
	off_t written, copied, scanned;
	const char *base;
	char dirbuf[sizeof tmpdir];

	if (argc == 3) {
		copied = copy(argv[1], argv[2]);
		printf("mmcopy: copied %jd bytes from %s to %s\n", (intmax_t)copied, argv[1], argv[2]);
		return finish();
	}
	if (argc != 1) {
		fprintf(stderr, "usage: mmcopy [SRC DST]\n"
		        "  with no arguments, copy and verify a generated file in a temporary directory\n");
		return 2;
	}

	base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if ((size_t)snprintf(dirbuf, sizeof dirbuf, "%s/mmcopy.XXXXXX", base) >= sizeof dirbuf)
		fail("path too long", base);
	if (mkdtemp(dirbuf) == NULL)
		die("creating a directory in", base);
	strcpy(tmpdir, dirbuf); /* from now on, cleanup() removes it */
	if ((size_t)snprintf(inpath, sizeof inpath, "%s/input.txt", tmpdir) >= sizeof inpath ||
	    (size_t)snprintf(outpath, sizeof outpath, "%s/copy.txt", tmpdir) >= sizeof outpath)
		fail("path too long", tmpdir);

	written = generate(inpath, &gen_lines, &gen_sum);
	printf("mmcopy: wrote %jd bytes (%lu records) to %s\n", (intmax_t)written, gen_lines, inpath);

	copied = copy(inpath, outpath);
	printf("mmcopy: copied %jd bytes to %s in %d KiB chunks\n", (intmax_t)copied, outpath, CHUNK / 1024);

	scanned = scan(outpath, &scan_lines, &scan_sum);
	printf("mmcopy: scanned %jd bytes: %lu lines, checksum %016" PRIx64 "\n",
	       (intmax_t)scanned, scan_lines, scan_sum);

	/* Check each step against what the generator knows it wrote. */
	if (copied != written || scanned != written)
		fail("size of the copy differs from the input", outpath);
	if (scan_lines != gen_lines)
		fail("line count of the copy differs from the input", outpath);
	if (scan_sum != gen_sum)
		fail("checksum of the copy differs from the input", outpath);
	verify(inpath, outpath);
	printf("mmcopy: copy verified: %jd bytes identical\n", (intmax_t)written);

	cleanup();
	return finish();
}
