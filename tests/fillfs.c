/* fillfs.c - fill a file system with 64-byte appends, and time it.
 *
 *   fillfs write DIR [MAX_S]      write(2) of 64-byte records to a new file in DIR
 *   fillfs mmapfile DIR [MAX_S]   mmapfile_write of 64-byte records, the same way
 *
 * Either goes on until a call fails, which must be ENOSPC (exit 1
 * otherwise); the mmapfile fill then checks that every record it was told
 * was written is in the file (read(2) on a fresh descriptor) and that close
 * succeeded or reported ENOSPC/EIO.  The file is removed at the end.  One
 * line on stdout for tests/fsmatrix.sh:
 *
 *   fillfs: mode=write records=N bytes=N seconds=S close_seconds=S close=RC errno=ENOSPC gave_up=0
 *
 * seconds is the fill until the failing call; close_seconds the close.
 * With MAX_S, a fill still going after MAX_S seconds stops there (the
 * file is checked all the same) and the line says gave_up=1; exit 3.
 * Not a test of its own: the matrix script compares the two fills. */
#define _GNU_SOURCE
#include "mmapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REC 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record i: 64 bytes that name it. */
static void record(unsigned char *buf, unsigned long i)
{
	for (int k = 0; k < REC; k++)
		buf[k] = (unsigned char)(i * 131 + (unsigned long)k * 7 + (i >> 8) + 1);
}

static int fail(const char *path, const char *fmt, const char *what, int err)
{
	fprintf(stderr, "fillfs: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "%s%s\n", err ? ": " : "", err ? strerror(err) : "");
	unlink(path);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "mmapfile"))) {
		fprintf(stderr, "usage: fillfs write|mmapfile DIR [MAX_SECONDS]\n");
		return 2;
	}
	const double max_s = argc == 4 ? atof(argv[3]) : 0;
	int gave_up = 0;
	const int use_mmapfile = strcmp(argv[1], "mmapfile") == 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/fillfs-%s-%ld", argv[2], argv[1], (long)getpid());
	unsigned char buf[REC];
	unsigned long n = 0;
	size_t bytes = 0;
	int err = 0, rc = 0;
	double t0, t1, t2;

	if (!use_mmapfile) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(path, "open %s", path, errno);
		t0 = now();
		for (;; n++) {
			record(buf, n);
			ssize_t w = write(fd, buf, REC);
			if (w == REC) {
				bytes += REC;
				if (max_s > 0 && (n & 255) == 0 && now() - t0 > max_s) {
					gave_up = 1;
					break;
				}
				continue;
			}
			if (w > 0) { /* short: the next call says why */
				bytes += (size_t)w;
				continue;
			}
			err = errno;
			break;
		}
		t1 = now();
		rc = close(fd);
		t2 = now();
	} else {
		mmapfile_t *f = mmapfile_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (!f)
			return fail(path, "mmapfile_open %s", path, errno);
		t0 = now();
		for (;; n++) {
			record(buf, n);
			ssize_t w = mmapfile_write(f, buf, REC);
			if (w == REC) {
				bytes += REC;
				if (max_s > 0 && (n & 255) == 0 && now() - t0 > max_s) {
					gave_up = 1;
					break;
				}
				continue;
			}
			err = errno;
			if (w != -1) {
				fprintf(stderr, "fillfs: mmapfile_write returned %zd, not 64 or -1\n", w);
				unlink(path);
				return 1;
			}
			break;
		}
		t1 = now();
		if (mmapfile_size(f) != (off_t)bytes) {
			fprintf(stderr, "fillfs: size %lld after %zu bytes written\n",
			        (long long)mmapfile_size(f), bytes);
			unlink(path);
			return 1;
		}
		errno = 0;
		rc = mmapfile_close(f);
		t2 = now();
		if (rc != 0 && (gave_up || (errno != ENOSPC && errno != EIO)))
			return fail(path, "%s", "mmapfile_close on a full disk", errno);
		/* Every record reported written is there. */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(path, "reopen %s", path, errno);
		struct stat st;
		if (fstat(fd, &st) != 0 || (rc == 0 && st.st_size != (off_t)bytes) ||
		    st.st_size < (off_t)bytes) {
			fprintf(stderr, "fillfs: file of %lld bytes after %zu written (close %d)\n",
			        (long long)st.st_size, bytes, rc);
			unlink(path);
			return 1;
		}
		static unsigned char in[REC * 1024];
		size_t off = 0;
		unsigned long i = 0;
		while (off < bytes) {
			size_t want = bytes - off < sizeof in ? bytes - off : sizeof in;
			ssize_t r = pread(fd, in, want, (off_t)off);
			if (r <= 0 || (size_t)r % REC)
				return fail(path, "%s", "pread of the file", r < 0 ? errno : EIO);
			for (size_t k = 0; k < (size_t)r; k += REC, i++) {
				record(buf, i);
				if (memcmp(in + k, buf, REC)) {
					fprintf(stderr, "fillfs: record %lu (at %zu) differs\n", i,
					        off + k);
					unlink(path);
					return 1;
				}
			}
			off += (size_t)r;
		}
		close(fd);
	}
	if (unlink(path) != 0)
		return fail(path, "unlink %s", path, errno);
	printf("fillfs: mode=%s records=%lu bytes=%zu seconds=%.3f close_seconds=%.3f close=%d "
	       "errno=%s gave_up=%d\n",
	       argv[1], n, bytes, t1 - t0, t2 - t1, rc,
	       gave_up ? "-" : err == ENOSPC ? "ENOSPC" : strerror(err), gave_up);
	if (gave_up) {
		fprintf(stderr, "fillfs: %s fill still going after %.1f s (%zu bytes): stopped\n", argv[1],
		        max_s, bytes);
		return 3;
	}
	if (bytes == 0) {
		fprintf(stderr, "fillfs: not a record fitted: the file system was full before the fill\n");
		return 1;
	}
	if (err != ENOSPC) {
		fprintf(stderr, "fillfs: the fill ended with %s, not ENOSPC\n", strerror(err));
		return 1;
	}
	return 0;
}
