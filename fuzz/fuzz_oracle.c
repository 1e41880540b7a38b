/* fuzz_oracle.c - a libFuzzer harness: every input is a sequence of
 * operations, run on an mmapfile_t and on a twin file driven through a plain
 * descriptor opened with the same flags (the oracle).  Every return value,
 * errno on failure, the bytes read, the cursor and (while the handle can know
 * it) the size must agree; the two files are compared regularly, exactly
 * after mmapfile_sync and mmapfile_close.  A mismatch prints the operation's
 * index, the operation, both results and the operations before it, then
 * aborts (libFuzzer saves the input).
 *
 * Where DESIGN.md deliberately differs from a Linux descriptor the twin is
 * not asked and the handle is held to DESIGN.md: writeat on an O_APPEND
 * handle, a NULL buffer with n > 0, n > SSIZE_MAX, SEEK_DATA/SEEK_HOLE, open
 * flags outside the supported set: all EINVAL, in DESIGN.md's error order.
 * mmapfile_sync is held to 0 (the twin needs no flush).  madvise is held to
 * DESIGN.md's range rules (EINVAL, ENOMEM), an errno the kernel can give
 * otherwise, and MADV_REMOVE's effect (the twin gets the same pages zeroed).
 *
 * "Another process" changes the file through a descriptor of its own
 * (truncate(2)/pwrite(2) by path; the same is done to the twin):
 *   - a shrink is to any length below the handle's size (half of them to a
 *     page boundary).  A cut inside a page leaves that page mapped until the
 *     handle learns it (DESIGN.md "Faults"): a read that ends before the
 *     handle's size and inside that page reads the bytes past the cut as
 *     zeros (held to that; the twin's cursor is moved as the handle's), and
 *     bytes written there are past the file's end until the handle learns
 *     the cut and writes them again (the file may be shorter than the twin by
 *     what lies inside that page).  The harness writes no trailing zero byte
 *     then (those cannot be told from the cut's zeros), and makes the handle
 *     learn before another process changes the file or MADV_REMOVE/PAGEOUT
 *     while such bytes are pending.
 *   - growth is only past the file's length on disk (the handle's reserve
 *     cannot be told from the file, DESIGN.md "Growth by others"); while a
 *     shrink is not yet learned, only to a page boundary below the handle's
 *     size (growth into the handle's size reads as the twin does).
 *   - data written by another process lands inside the handle's size, past
 *     the length on disk, or into the handle's reserve (past its size, inside
 *     the file's length; it ends with a byte other than zero): the handle
 *     learns those bytes at its trim only, so mmapfile_sync follows at once
 *     and must keep them (the size grows to cover them).
 * Other processes for real (fork(2); a child always leaves by _exit, checks
 * itself against the twin through a descriptor of its own and reports a
 * mismatch through a pipe):
 *   - another process appends records through its own O_APPEND handle, or
 *     with write(2) on an O_APPEND descriptor; the twin gets them with
 *     write(2) on an O_APPEND descriptor.  They land at the file's end, past
 *     this handle's reserve, whose zeros thereby become part of the file
 *     (DESIGN.md "Growth by others"): the twin gets those zeros first.  The
 *     files must then be identical (nothing between the records, none lost).
 *   - fork with this handle open: the child's copy writes (writeat inside the
 *     size, write at its own cursor), reads, and closes it or leaves by _exit
 *     without closing.  It never cuts the file; bytes it wrote into this
 *     handle's reserve are learned (and kept) at this handle's sync.
 *   - another process opens its own handle (O_RDWR, also O_APPEND, O_DSYNC),
 *     appends and writes, and is killed with SIGKILL: its bytes are all
 *     there, and past them at most one 2 MiB step of zeros (none for
 *     O_APPEND, O_DSYNC).  The harness then truncates the file to the twin's
 *     length by path, so that leftovers do not pile up.
 *   After MADV_DONTFORK (or WIPEONFORK) the child of fork has not got the
 *   mapping: it then only closes or leaves.
 * Until the handle learns such a change (DESIGN.md: a read reaching its end,
 * seek(SEEK_END), a write that needs growth, a truncate below its size; also
 * a reopen) mmapfile_size() is the handle's knowledge, not the file's, and is
 * not compared.  An O_APPEND handle appends with write(2) on an O_APPEND
 * descriptor: its appends land at the file's end whether it learned the
 * growth or not.  Reads and writes are compared all the same.  While the
 * size is compared, a writable handle's file is at most 2 MiB longer than
 * the size (none for O_SYNC/O_DSYNC and O_APPEND handles).  MADV_REMOVE on
 * an O_APPEND handle punches only what is mapped, and its appends do not
 * grow the mapping (DESIGN.md): its effect there is held to a leading part
 * of the range.
 *
 * Bounds: writes and truncates start below 1 MiB (transfers below 64 KiB;
 * files stay below about 2 MiB); far offsets are used only where they fail
 * (EINVAL on overflow, EFBIG past the file system's largest size, probed at
 * start) or only seek or read.
 *
 * Environment:
 *   FUZZ_ORACLE_TRACE=1   print every operation to stderr
 *   FUZZ_ORACLE_LAX=list  comma-separated checks to leave out, for known
 *                         library deviations (see README.md):
 *                           stale-truncate  no truncate through the handle
 *                                           while it has not learned
 *                                           another process's change
 *                           sync-learn      do not require mmapfile_sync of
 *                                           a writable handle to learn a
 *                                           shrink by another process
 *                           read-clobber    after a shrink by another
 *                                           process, do not require a read
 *                                           to leave the buffer past what
 *                                           it returns untouched
 *                           fork-sync       no writes by a child of fork
 *                                           through its inherited O_SYNC/
 *                                           O_DSYNC handle (the parent's
 *                                           next flush waited forever on
 *                                           the io_uring ring the child
 *                                           used; fixed)
 *                           stale-pwrite    after a shrink by another
 *                                           process, make the handle learn
 *                                           the size before a write of 16 KiB
 *                                           or more (the library's pwrite
 *                                           path does not look at the file)
 *   TMPDIR                where the temporary directory is made
 */
#define _GNU_SOURCE
#include "mmapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SEEK_DATA
#define SEEK_DATA 3
#endif
#ifndef SEEK_HOLE
#define SEEK_HOLE 4
#endif
#ifndef O_PATH
#define O_PATH 010000000
#endif
#ifndef O_DIRECT
#define O_DIRECT 040000
#endif

#define OFF_MAX ((off_t)INT64_MAX)
#define OFF_MIN ((off_t)INT64_MIN)
#define CAP ((off_t)1 << 20)   /* writes and truncates start below this */
#define MAXLEN ((size_t)65535) /* the longest transfer */
#define CANARY 0x5A
#define HIST 16
#define MAX_OPS 400
#define CHECK_EVERY 8
#define STEP ((off_t)2 << 20)  /* the most a reserve may run ahead (SPEC point 8) */

/* ---- the input ----------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned u16(struct in *in)
{
	unsigned v = u8(in);
	return v | u8(in) << 8;
}

static uint32_t u24(struct in *in)
{
	uint32_t v = u16(in);
	return v | (uint32_t)u8(in) << 16;
}

/* ---- state ----------------------------------------------------------------- */

struct state {
	char dir[512], mpath[600], tpath[600], fifo[600];
	mmapfile_t *h;
	int tfd;
	int flags;           /* the handle's flags */
	bool stale_shrink;   /* another process shrank the file; not learned yet */
	bool stale_grow;     /* another process grew the file; not learned yet */
	long idx;
	char desc[320];
	char hist[HIST][400];
	bool trace;
	bool lax_stale_truncate, lax_sync_learn, lax_clobber, lax_stale_pwrite, lax_fork_sync;
	bool dontfork;       /* MADV_DONTFORK (or WIPEONFORK) given: a child lacks the mapping */
	int child_out;       /* in a child process: the pipe to the parent; else -1 */
	bool huge_efbig;     /* offsets >= fs_max fail with EFBIG (and fs_max is far) */
	off_t fs_max;
	size_t page;
	unsigned long long inputs, ops;
};

static struct state S;
static unsigned char wbuf[MAXLEN + 1], hbuf[MAXLEN + 1], tbuf[MAXLEN + 1];
static unsigned char cmp_a[1 << 16], cmp_b[1 << 16];

static bool readable(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
static bool writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }
static bool appending(int flags) { return (flags & O_APPEND) != 0; }

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EFBIG: return "EFBIG";
	case EFAULT: return "EFAULT";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EAGAIN: return "EAGAIN";
	case EIO: return "EIO";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case EOVERFLOW: return "EOVERFLOW";
	default: return strerror(e);
	}
}

static const char *flags_str(int flags)
{
	static char s[200];
	int acc = flags & O_ACCMODE;
	snprintf(s, sizeof s, "%s%s%s%s%s%s%s%s%s",
		 acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : acc == O_RDWR ? "O_RDWR" : "O_ACCMODE",
		 flags & O_APPEND ? "|O_APPEND" : "", flags & O_TRUNC ? "|O_TRUNC" : "",
		 (flags & O_SYNC) == O_SYNC ? "|O_SYNC" : (flags & O_DSYNC) ? "|O_DSYNC" : "",
		 flags & O_CREAT ? "|O_CREAT" : "", flags & O_EXCL ? "|O_EXCL" : "",
		 flags & O_CLOEXEC ? "|O_CLOEXEC" : "", flags & O_NOATIME ? "|O_NOATIME" : "",
		 flags & ~(O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_CREAT | O_EXCL |
			   O_CLOEXEC | O_NOATIME) ? "|other" : "");
	return s;
}

static void cleanup(void);
static void mismatch(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void mismatch(int line, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (S.child_out >= 0) {
		/* In a child: the parent reports it (no cleanup, no libFuzzer). */
		dprintf(S.child_out, "(fuzz_oracle.c:%d) %s", line, msg);
		_exit(3);
	}
	fprintf(stderr, "\nfuzz_oracle: MISMATCH at op %ld (fuzz_oracle.c:%d)\n", S.idx, line);
	fprintf(stderr, "fuzz_oracle: the operations (handle %s, stale shrink %d, stale growth %d):\n",
		flags_str(S.flags), S.stale_shrink, S.stale_grow);
	for (long i = S.idx - HIST + 1; i <= S.idx; i++)
		if (i >= 0)
			fprintf(stderr, "  op %ld: %s\n", i, S.hist[i % HIST]);
	fprintf(stderr, "fuzz_oracle: %s\n", msg);
	fflush(stderr);
	cleanup(); /* abort() skips atexit */
	abort();
}

#define EXPECT(cond, ...) do { if (!(cond)) mismatch(__LINE__, __VA_ARGS__); } while (0)

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(S.desc, sizeof S.desc, fmt, ap);
	va_end(ap);
	snprintf(S.hist[S.idx % HIST], sizeof S.hist[0], "%s", S.desc);
	if (S.trace)
		fprintf(stderr, "op %ld: %s\n", S.idx, S.desc);
}

/* Handle result against the twin's: the same value, and errno on failure. */
static void same(const char *what, long long r, int e, long long tr, int te)
{
	EXPECT(r == tr, "%s: the handle returned %lld (errno %s), the twin %lld (errno %s)",
	       what, r, r < 0 ? errname(e) : "-", tr, tr < 0 ? errname(te) : "-");
	if (tr < 0)
		EXPECT(e == te, "%s: the handle failed with errno %s, the twin with %s", what,
		       errname(e), errname(te));
}

/* A call the twin is not asked about: DESIGN.md says -1 with err. */
static void modelled(const char *what, long long r, int e, int err)
{
	EXPECT(r == -1 && e == err, "%s: expected -1 with %s (DESIGN.md), the handle returned %lld (errno %s)",
	       what, errname(err), r, r < 0 ? errname(e) : "-");
}

/* a - b, saturated at the ends of off_t. */
static off_t sub_sat(off_t a, off_t b)
{
	off_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? OFF_MAX : OFF_MIN;
	return r;
}

static off_t twin_size(void)
{
	struct stat st;
	EXPECT(fstat(S.tfd, &st) == 0, "fstat(twin): %s", strerror(errno));
	return st.st_size;
}

static off_t twin_cursor(void)
{
	off_t c = lseek(S.tfd, 0, SEEK_CUR);
	EXPECT(c >= 0, "lseek(twin): %s", strerror(errno));
	return c;
}

static off_t path_size(const char *p)
{
	struct stat st;
	EXPECT(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
	return st.st_size;
}

static off_t handle_size(void)
{
	errno = 0;
	off_t s = mmapfile_size(S.h);
	EXPECT(s >= 0, "mmapfile_size failed: %s", errname(errno));
	return s;
}

static void fill(unsigned char *b, size_t n, uint32_t seed)
{
	uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1) + (uint64_t)S.idx;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)(x >> 24);
	}
}

/* A last byte other than zero.  DESIGN.md: zeros written past a cut the
 * handle has not learned (inside the cut's page), or by another process into
 * the handle's reserve, cannot be told from the file's own zeros, and the
 * file ends before them; the harness does not write such trailing zeros. */
static void nonzero_end(unsigned char *b, size_t n)
{
	if (n && !b[n - 1])
		b[n - 1] = 0xA5;
}

/* ---- whole-file comparison ------------------------------------------------- */

static void full_pread(int fd, unsigned char *b, size_t n, off_t off, const char *p)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, b + got, n - got, off + (off_t)got);
		EXPECT(k > 0, "reading %s: %s", p, k < 0 ? strerror(errno) : "short file");
		got += (size_t)k;
	}
}

static off_t page_up(off_t v)
{
	return (v + (off_t)S.page - 1) & ~((off_t)S.page - 1);
}

/* The handle's file holds the twin's bytes; past them, up to its length on
 * disk, only zeros (the reserve).  exact: no reserve allowed.  While a cut
 * inside a page is not learned, bytes the handle wrote past the cut in that
 * page are in the page cache but past the file's end (DESIGN.md: written
 * again when the handle learns the cut), so the file may be shorter than
 * the twin by what lies inside that page. */
static void compare_files(const char *when, bool exact)
{
	int a = open(S.mpath, O_RDONLY | O_CLOEXEC), b = open(S.tpath, O_RDONLY | O_CLOEXEC);
	EXPECT(a >= 0 && b >= 0, "open for comparison: %s", strerror(errno));
	struct stat sa, sb;
	EXPECT(fstat(a, &sa) == 0 && fstat(b, &sb) == 0, "fstat: %s", strerror(errno));
	bool pending = !exact && S.stale_shrink && sa.st_size < sb.st_size && sb.st_size <= page_up(sa.st_size);
	if (exact)
		EXPECT(sa.st_size == sb.st_size, "%s: the file is %jd bytes on disk, the twin %jd",
		       when, (intmax_t)sa.st_size, (intmax_t)sb.st_size);
	else
		EXPECT(sa.st_size >= sb.st_size || pending,
		       "%s: the file is %jd bytes on disk, shorter than the twin's %jd",
		       when, (intmax_t)sa.st_size, (intmax_t)sb.st_size);
	off_t common = pending ? sa.st_size : sb.st_size;
	for (off_t o = 0; o < common; ) {
		size_t n = common - o < (off_t)sizeof cmp_a ? (size_t)(common - o) : sizeof cmp_a;
		full_pread(a, cmp_a, n, o, S.mpath);
		full_pread(b, cmp_b, n, o, S.tpath);
		if (memcmp(cmp_a, cmp_b, n) != 0) {
			size_t i = 0;
			while (cmp_a[i] == cmp_b[i])
				i++;
			mismatch(__LINE__, "%s: the files differ first at byte %jd (0x%02x, twin 0x%02x); "
				 "sizes %jd and %jd", when, (intmax_t)(o + (off_t)i), cmp_a[i], cmp_b[i],
				 (intmax_t)sa.st_size, (intmax_t)sb.st_size);
		}
		o += (off_t)n;
	}
	for (off_t o = sb.st_size; o < sa.st_size; ) {
		size_t n = sa.st_size - o < (off_t)sizeof cmp_a ? (size_t)(sa.st_size - o) : sizeof cmp_a;
		full_pread(a, cmp_a, n, o, S.mpath);
		for (size_t i = 0; i < n; i++)
			EXPECT(cmp_a[i] == 0, "%s: byte %jd of the reserve (past the twin's %jd bytes) is 0x%02x",
			       when, (intmax_t)(o + (off_t)i), (intmax_t)sb.st_size, cmp_a[i]);
		o += (off_t)n;
	}
	close(a);
	close(b);
}

static bool stale(void) { return S.stale_shrink || S.stale_grow; }

/* After every op: the cursor, and the size while the handle can know it. */
static void after_op(void)
{
	if (!S.h)
		return;
	errno = 0;
	off_t c = mmapfile_seek(S.h, 0, SEEK_CUR);
	int e = errno;
	off_t tc = twin_cursor();
	EXPECT(c == tc, "afterwards the cursor is %jd (errno %s), the twin's %jd", (intmax_t)c,
	       c < 0 ? errname(e) : "-", (intmax_t)tc);
	if (stale())
		return;
	off_t s = handle_size(), ts = twin_size(), d = path_size(S.mpath);
	EXPECT(s == ts, "afterwards mmapfile_size is %jd, the twin's %jd", (intmax_t)s, (intmax_t)ts);
	EXPECT(d >= s, "afterwards the file is %jd bytes on disk, less than mmapfile_size %jd",
	       (intmax_t)d, (intmax_t)s);
	if ((S.flags & (O_SYNC | O_DSYNC | O_APPEND)) && writable(S.flags))
		EXPECT(d == s, "the %s handle's file is %jd bytes on disk, its size %jd "
		       "(O_SYNC/O_DSYNC and O_APPEND keep no reserve)", flags_str(S.flags), (intmax_t)d,
		       (intmax_t)s);
	EXPECT(d - s <= STEP, "afterwards the file is %jd bytes on disk, %jd past mmapfile_size %jd "
	       "(the reserve is at most one 2 MiB step)", (intmax_t)d, (intmax_t)(d - s), (intmax_t)s);
}

/* ---- open and close ------------------------------------------------------ */

#define VALID_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW | \
		     O_NOATIME | O_SYNC | O_DSYNC)

static bool flags_valid(int flags)
{
	return !(flags & ~VALID_FLAGS) && (flags & O_ACCMODE) != O_ACCMODE;
}

/* The twin needs no durability: the same flags without O_SYNC/O_DSYNC. */
static int twin_flags(int flags)
{
	return flags & ~(O_SYNC | O_DSYNC);
}

static void check_identity(void)
{
	const char *name = mmapfile_name(S.h);
	EXPECT(name && strcmp(name, S.mpath) == 0, "mmapfile_name is %s, not the path opened", name ? name : "NULL");
	int fd = mmapfile_fd(S.h);
	struct stat a, b;
	EXPECT(fd >= 0 && fstat(fd, &a) == 0 && stat(S.mpath, &b) == 0 && a.st_ino == b.st_ino,
	       "mmapfile_fd %d is not the file's descriptor", fd);
	int fdf = fcntl(fd, F_GETFD);
	EXPECT(fdf >= 0 && (fdf & FD_CLOEXEC), "the descriptor is not close-on-exec");
}

/* Open both with flags (mode 0644); they must agree.  Returns whether open. */
static bool open_both(int flags, const char *what)
{
	errno = 0;
	S.h = mmapfile_open(S.mpath, flags, 0644);
	int e = errno;
	if (!flags_valid(flags)) {
		if (S.h) {
			mmapfile_close(S.h);
			S.h = NULL;
			mismatch(__LINE__, "%s: mmapfile_open(%s) succeeded; DESIGN.md: EINVAL", what, flags_str(flags));
		}
		modelled(what, -1, e, EINVAL);
		return false;
	}
	errno = 0;
	S.tfd = open(S.tpath, twin_flags(flags), 0644);
	int te = errno;
	same(what, S.h ? 0 : -1, e, S.tfd >= 0 ? 0 : -1, te);
	S.flags = flags;
	S.stale_shrink = S.stale_grow = false;
	S.dontfork = false;
	if (S.h)
		check_identity();
	return S.h != NULL;
}

static void close_both(const char *what)
{
	errno = 0;
	int r = mmapfile_close(S.h);
	int e = errno;
	S.h = NULL;
	int tr = close(S.tfd);
	S.tfd = -1;
	same(what, r, e, tr, errno);
	compare_files(what, true);
	S.stale_shrink = S.stale_grow = false;
}

/* After a failed open: always have a handle again. */
static void ensure_open(void)
{
	if (S.h)
		return;
	if (!open_both(O_RDWR | O_CREAT, "fallback open(O_RDWR|O_CREAT)"))
		mismatch(__LINE__, "fallback open failed on both: %s", strerror(errno));
}

/* Make the handle learn the file's length, on both: seek to the end and back. */
static void learn(void)
{
	off_t c = twin_cursor();
	errno = 0;
	off_t r = mmapfile_seek(S.h, 0, SEEK_END);
	int e = errno;
	off_t tr = lseek(S.tfd, 0, SEEK_END);
	same("learn: seek(0, SEEK_END)", r, e, tr, errno);
	errno = 0;
	r = mmapfile_seek(S.h, c, SEEK_SET);
	e = errno;
	tr = lseek(S.tfd, c, SEEK_SET);
	same("learn: seek back", r, e, tr, errno);
	S.stale_shrink = S.stale_grow = false;
}

/* Bytes the handle wrote past a cut it has not learned, inside the page the
 * cut ends in, are not in the file yet (DESIGN.md: written again when the
 * handle learns the cut; the file is shorter than the twin).  Another
 * process's change of the file would race them (an append lands on them, a
 * truncate to the same length leaves them), so the handle learns first. */
static void settle(void)
{
	if (S.stale_shrink && path_size(S.mpath) < twin_size())
		learn();
}

/* mmapfile_sync of a writable handle learns every change by another
 * process, and keeps another process's bytes in its reserve (DESIGN.md): the
 * files are then identical and the size is the file's. */
static void sync_learns(const char *why)
{
	errno = 0;
	int r = mmapfile_sync(S.h);
	int e = errno;
	EXPECT(r == 0, "%s: mmapfile_sync returned %d (errno %s)", why, r, r < 0 ? errname(e) : "-");
	compare_files(why, true);
	off_t s = handle_size(), ts = twin_size();
	EXPECT(s == ts, "%s: after mmapfile_sync mmapfile_size is %jd, the twin's %jd", why, (intmax_t)s,
	       (intmax_t)ts);
	S.stale_shrink = S.stale_grow = false;
}

/* ---- decoders -------------------------------------------------------------- */

static size_t dec_len_raw(struct in *in, off_t to_end)
{
	unsigned s = u8(in);
	size_t page = S.page;
	switch (s % 10) {
	case 0: return 0;
	case 1: return 1 + u8(in) % 16;
	case 2: return u8(in);
	case 3: return (1 + u8(in) % 4) * page + u8(in) % 3 - 1;
	case 4: return u16(in) % (MAXLEN + 1);
	case 5: return (16384 + u16(in) % 16384); /* the pwrite path for growth */
	case 6: return to_end > 0 && to_end <= (off_t)MAXLEN ? (size_t)to_end : u8(in);
	case 7: return (u8(in) % 16) * page;
	case 8: return to_end > 0 && to_end < (off_t)MAXLEN ? (size_t)to_end + 1 + u8(in) % 8 : u8(in) * 7;
	default: return 1 + u16(in) % 4096;
	}
}

static size_t dec_len(struct in *in, off_t to_end)
{
	size_t n = dec_len_raw(in, to_end);
	return n > MAXLEN ? MAXLEN : n;
}

/* A position: near the size, the cursor, pages; negative and far ones. */
static off_t dec_pos(struct in *in, off_t size, off_t cur)
{
	unsigned s = u8(in);
	off_t page = (off_t)S.page, v;
	switch (s % 14) {
	case 0: return 0;
	case 1: return size;
	case 2: v = size - 1 - (off_t)u8(in); return v < 0 ? 0 : v;
	case 3: return size + (off_t)u8(in);
	case 4: v = (off_t)u8(in) * page + (off_t)(u8(in) % 5) - 2; return v < 0 ? 0 : v;
	case 5: return (off_t)u16(in) * 16;
	case 6: return (off_t)(u24(in) % (uint32_t)CAP);
	case 7: v = cur > OFF_MAX - 128 ? cur : cur + (int8_t)u8(in); return v < 0 ? 0 : v;
	case 8: return size + (off_t)u16(in);
	case 9: {
		unsigned k = u8(in) % 4;
		return k == 0 ? -1 : k == 1 ? -(off_t)u16(in) - 1 : k == 2 ? OFF_MIN : -size - 1;
	}
	case 10: {
		unsigned k = u8(in) % 4;
		if (k == 0)
			return OFF_MAX - (off_t)u8(in);
		if (k == 1)
			return S.fs_max > OFF_MAX - 256 ? OFF_MAX - (off_t)u8(in) : S.fs_max + (off_t)u8(in) - 128;
		if (k == 2)
			return ((off_t)1 << 40) + (off_t)u16(in);
		return OFF_MAX / 2;
	}
	case 11: return size / 2;
	case 12: return size > 0 ? (off_t)(u24(in) % (uint32_t)(size < CAP ? size : CAP)) : 0;
	default: return (size + page - 1) / page * page;
	}
}

/* A write (or truncate) at pos of n bytes: fine below CAP; far ones only
 * where they fail on both (overflow, or past the file system's maximum);
 * anything else is folded below CAP. */
static off_t bound_write_pos(off_t pos, size_t n)
{
	if (pos < 0 || pos <= CAP)
		return pos;
	if ((off_t)n > OFF_MAX - pos)
		return pos; /* overflow: EINVAL */
	if (S.huge_efbig && pos >= S.fs_max)
		return pos; /* EFBIG */
	return pos % CAP;
}

static off_t bound_truncate(off_t size)
{
	if (size <= CAP)
		return size;
	if (S.huge_efbig && size > S.fs_max)
		return size;
	return size % CAP;
}

/* ---- operations ------------------------------------------------------------ */

enum { OP_READ, OP_WRITE, OP_READAT, OP_WRITEAT, OP_SEEK, OP_TRUNCATE, OP_SYNC, OP_SIZE,
       OP_MADVISE, OP_REOPEN, OP_CREATE, OP_EXT_SHRINK, OP_EXT_GROW, OP_EXT_WRITE, OP_NULL_HANDLE,
       OP_CHECK, OP_OTHER_APPEND, OP_FORK, OP_KILL, OP_KINDS };

/* The handle must fail with DESIGN.md's error before any transfer, or 0. */
static int io_error(bool write, bool positional, bool null_buf, size_t n, off_t off)
{
	if (positional && off < 0)
		return EINVAL;
	if (write ? !writable(S.flags) : !readable(S.flags))
		return EBADF;
	if (write && positional && appending(S.flags))
		return EINVAL;
	if (n > SSIZE_MAX || (positional && (off_t)n > OFF_MAX - off))
		return EINVAL;
	if (n == 0)
		return -1; /* returns 0 */
	if (null_buf)
		return EINVAL;
	return 0;
}

/* Which of those errors a descriptor gives the same way (so the twin may be
 * asked): all but the deliberate EINVALs. */
static bool twin_agrees(bool write, bool positional, bool null_buf, size_t n, off_t off)
{
	if (positional && off < 0)
		return true;
	if (write ? !writable(S.flags) : !readable(S.flags))
		return !null_buf;
	if (write && positional && appending(S.flags))
		return false;
	if (n > SSIZE_MAX || n > MAXLEN)
		return false;
	return !null_buf || n == 0;
}

/* DESIGN.md: until the handle learns a cut by another process whose end
 * falls inside a page, that page stays mapped: a read that ends before the
 * handle's size and inside that page reads its bytes past the file's end as
 * zeros, where read(2) returns fewer.  Whether the handle's read r against
 * the twin's tr is that case (else it must be the twin's answer). */
static bool cut_page_read(off_t off, size_t n, off_t hs, ssize_t r, ssize_t tr)
{
	if (!S.stale_shrink || r < 0 || tr < 0 || (size_t)r != n || tr >= r)
		return false;
	off_t end = off + (off_t)n;
	return end < hs && end <= page_up(path_size(S.mpath));
}

static void do_read(struct in *in, bool positional)
{
	off_t ts = twin_size(), cur = twin_cursor();
	off_t hs = handle_size();
	unsigned v = u8(in);
	off_t off = positional ? dec_pos(in, ts, cur) : cur;
	size_t n = dec_len(in, sub_sat(ts, off));
	bool null_buf = v % 16 == 1;
	if (v % 16 == 2)
		n = v & 0x80 ? SIZE_MAX : (size_t)SSIZE_MAX + 1 + u8(in);
	if (positional)
		note("readat(%s, n=%zu, off=%jd) [twin size %jd, handle size %jd]", null_buf ? "NULL" : "buf",
		     n, (intmax_t)off, (intmax_t)ts, (intmax_t)hs);
	else
		note("read(%s, n=%zu) [cursor %jd, twin size %jd, handle size %jd]", null_buf ? "NULL" : "buf",
		     n, (intmax_t)cur, (intmax_t)ts, (intmax_t)hs);

	size_t span = n <= MAXLEN ? n : 64;
	memset(hbuf, CANARY, span + 1);
	void *b = null_buf ? NULL : hbuf;
	errno = 0;
	ssize_t r = positional ? mmapfile_readat(S.h, b, n, off) : mmapfile_read(S.h, b, n);
	int e = errno;
	ssize_t got = r; /* what the handle wrote into the buffer */
	int derr = io_error(false, positional, null_buf, n, off);
	if (!twin_agrees(false, positional, null_buf, n, off)) {
		modelled(S.desc, r, e, derr);
	} else {
		errno = 0;
		ssize_t tr = positional ? pread(S.tfd, tbuf, n, off) : read(S.tfd, tbuf, n);
		int te = errno;
		if (cut_page_read(off, n, hs, r, tr)) {
			/* DESIGN.md: the twin's bytes, then zeros to n. */
			for (size_t i = (size_t)tr; i < (size_t)r; i++)
				EXPECT(hbuf[i] == 0, "read across an unlearned cut inside a page: byte %zu of %zd "
				       "(past the twin's %zd) is 0x%02x, not zero", i, r, tr, hbuf[i]);
			if (!positional) {
				EXPECT(lseek(S.tfd, cur + r, SEEK_SET) == cur + r, "lseek(twin): %s", strerror(errno));
			}
			got = r;
			r = tr;
		}
		same("read", r, e, tr, te);
		if (r > 0 && memcmp(hbuf, tbuf, (size_t)r) != 0) {
			size_t i = 0;
			while (hbuf[i] == tbuf[i])
				i++;
			mismatch(__LINE__, "the bytes read differ first at byte %zu of %zd (0x%02x, twin 0x%02x)",
				 i, r, hbuf[i], tbuf[i]);
		}
	}
	/* read(2) leaves the buffer past what it returns alone. */
	if (!(S.stale_shrink && S.lax_clobber))
		for (size_t i = got > 0 ? (size_t)got : 0; i < span + 1; i++)
			EXPECT(hbuf[i] == CANARY, "byte %zu of the buffer changed; the call returned %zd", i, got);
	/* A read that reached the handle's end asked the file (DESIGN.md). */
	if (derr == 0 && (off_t)n >= sub_sat(hs, off))
		S.stale_shrink = S.stale_grow = false;
}

static void do_write(struct in *in, bool positional)
{
	off_t ts = twin_size(), cur = twin_cursor();
	unsigned v = u8(in);
	off_t off = positional ? dec_pos(in, ts, cur) : cur;
	size_t n = dec_len(in, sub_sat(ts, off));
	uint32_t seed = u8(in);
	bool null_buf = v % 16 == 1;
	if (v % 16 == 2)
		n = v & 0x80 ? SIZE_MAX : (size_t)SSIZE_MAX + 1 + u8(in);
	if (n <= MAXLEN && !null_buf) {
		off_t at = positional ? off : appending(S.flags) ? ts : cur;
		if (positional) {
			off = bound_write_pos(off, n);
		} else if (writable(S.flags) && at > 2 * CAP && bound_write_pos(at, n) != at) {
			/* (the file itself stays below about 2 MiB) */
			note("write(n=%zu) skipped: it would write at %jd, far, and not fail", n, (intmax_t)at);
			return;
		}
		fill(wbuf, n, seed);
		if (S.stale_shrink)
			nonzero_end(wbuf, n);
	}
	bool learned = false;
	if (S.lax_stale_pwrite && S.stale_shrink && writable(S.flags) && !null_buf && n >= 16384 &&
	    n <= MAXLEN) {
		learn();
		learned = true;
	}
	if (positional)
		note("writeat(%s, n=%zu, off=%jd) [twin size %jd]%s", null_buf ? "NULL" : "buf", n,
		     (intmax_t)off, (intmax_t)ts, learned ? " (learned first: FUZZ_ORACLE_LAX=stale-pwrite)" : "");
	else
		note("write(%s, n=%zu) [cursor %jd, twin size %jd]%s", null_buf ? "NULL" : "buf", n,
		     (intmax_t)cur, (intmax_t)ts, learned ? " (learned first: FUZZ_ORACLE_LAX=stale-pwrite)" : "");

	const void *b = null_buf ? NULL : wbuf;
	errno = 0;
	ssize_t r = positional ? mmapfile_writeat(S.h, b, n, off) : mmapfile_write(S.h, b, n);
	int e = errno;
	if (!twin_agrees(true, positional, null_buf, n, off)) {
		modelled(S.desc, r, e, io_error(true, positional, null_buf, n, off));
		return;
	}
	errno = 0;
	ssize_t tr = positional ? pwrite(S.tfd, wbuf, n, off) : write(S.tfd, wbuf, n);
	same("write", r, e, tr, errno);
}

static void do_seek(struct in *in)
{
	off_t ts = twin_size(), cur = twin_cursor();
	unsigned w = u8(in);
	static const int bad[] = { SEEK_DATA, SEEK_HOLE, -1, 5, INT_MAX, INT_MIN };
	int whence = w % 16 < 12 ? (int)(w % 3) : bad[w % 16 - 12 + (w & 0x80 ? 2 : 0)];
	off_t base = whence == SEEK_CUR ? cur : whence == SEEK_END ? ts : 0;
	off_t off;
	unsigned k = u8(in) % 8;
	if (k == 0)
		off = 0;
	else if (k == 1)
		off = -base - 1 - (off_t)u8(in);      /* a negative result */
	else if (k == 2)
		off = OFF_MAX - (off_t)u8(in);         /* base + off overflows */
	else if (k == 3)
		off = OFF_MIN + (off_t)u8(in);
	else {
		off_t target = dec_pos(in, ts, cur);
		off = target >= 0 && base >= 0 ? target - base : target;
	}
	note("seek(off=%jd, whence=%d) [cursor %jd, twin size %jd]", (intmax_t)off, whence,
	     (intmax_t)cur, (intmax_t)ts);
	errno = 0;
	off_t r = mmapfile_seek(S.h, off, whence);
	int e = errno;
	if (whence == SEEK_DATA || whence == SEEK_HOLE) {
		modelled(S.desc, r, e, EINVAL);
		return;
	}
	errno = 0;
	off_t tr = lseek(S.tfd, off, whence);
	same("seek", r, e, tr, errno);
	if (whence == SEEK_END)
		S.stale_shrink = S.stale_grow = false;
}

static void do_truncate(struct in *in)
{
	off_t ts = twin_size(), hs = handle_size();
	off_t size = bound_truncate(dec_pos(in, ts, twin_cursor()));
	if (stale() && S.lax_stale_truncate && size >= hs && writable(S.flags)) {
		note("truncate(%jd) skipped: the handle has not learned another process's change "
		     "(FUZZ_ORACLE_LAX=stale-truncate)", (intmax_t)size);
		return;
	}
	note("truncate(%jd) [twin size %jd, handle size %jd]", (intmax_t)size, (intmax_t)ts, (intmax_t)hs);
	errno = 0;
	int r = mmapfile_truncate(S.h, size);
	int e = errno;
	errno = 0;
	int tr = ftruncate(S.tfd, size);
	same("truncate", r, e, tr, errno);
	/* Cutting below the handle's size cuts the file: then it knows. */
	if (r == 0 && size < hs)
		S.stale_shrink = S.stale_grow = false;
}

static void do_sync(void)
{
	bool was_stale = stale();
	note("sync() [stale %d]", was_stale);
	errno = 0;
	int r = mmapfile_sync(S.h);
	int e = errno;
	EXPECT(r == 0, "mmapfile_sync returned %d (errno %s)", r, r < 0 ? errname(e) : "-");
	compare_files("after mmapfile_sync", true);
	if (writable(S.flags) && was_stale && !S.lax_sync_learn) {
		/* DESIGN.md: sync and close learn a shrink by another process. */
		if (S.stale_shrink) {
			EXPECT(handle_size() == twin_size(), "after mmapfile_sync the handle's size is %jd, "
			       "the file's %jd (sync did not learn the shrink)", (intmax_t)handle_size(),
			       (intmax_t)twin_size());
			S.stale_shrink = false;
		}
	}
}

static void do_size(void)
{
	note("size() [stale %d]", stale());
	off_t s = handle_size();
	if (!stale())
		EXPECT(s == twin_size(), "mmapfile_size %jd, the twin's %jd", (intmax_t)s, (intmax_t)twin_size());
}

/* DESIGN.md: the range is clipped to the mapping, and an O_APPEND handle's
 * appends (write(2)) do not grow the mapping, so MADV_REMOVE there punches
 * a leading part of [start, end) only: as far as the handle's file reads as
 * whole pages of zeros from start.  The rest must be the twin's still. */
static off_t punched_prefix(off_t start, off_t end)
{
	int fd = open(S.mpath, O_RDONLY | O_CLOEXEC);
	EXPECT(fd >= 0, "open: %s", strerror(errno));
	off_t o = start;
	while (o < end) {
		size_t n = end - o < (off_t)S.page ? (size_t)(end - o) : S.page;
		full_pread(fd, cmp_a, n, o, S.mpath);
		size_t i = 0;
		while (i < n && !cmp_a[i])
			i++;
		if (i < n)
			break;
		o += (off_t)n;
	}
	close(fd);
	return o;
}

static const int advices[] = {
	MMAPFILE_MADV_NORMAL, MMAPFILE_MADV_RANDOM, MMAPFILE_MADV_SEQUENTIAL, MMAPFILE_MADV_WILLNEED,
	MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_FREE, MMAPFILE_MADV_REMOVE, MMAPFILE_MADV_DONTFORK,
	MMAPFILE_MADV_DOFORK, MMAPFILE_MADV_MERGEABLE, MMAPFILE_MADV_UNMERGEABLE, MMAPFILE_MADV_HUGEPAGE,
	MMAPFILE_MADV_NOHUGEPAGE, MMAPFILE_MADV_DONTDUMP, MMAPFILE_MADV_DODUMP, MMAPFILE_MADV_WIPEONFORK,
	MMAPFILE_MADV_KEEPONFORK, MMAPFILE_MADV_COLD, MMAPFILE_MADV_PAGEOUT, MMAPFILE_MADV_POPULATE_READ,
	MMAPFILE_MADV_POPULATE_WRITE, MMAPFILE_MADV_DONTNEED_LOCKED, MMAPFILE_MADV_COLLAPSE,
	MMAPFILE_MADV_GUARD_INSTALL, MMAPFILE_MADV_GUARD_REMOVE, MMAPFILE_MADV_REMOVE,
	MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_WILLNEED,
	/* not advice at all (HWPOISON and SOFT_OFFLINE are never given: as root
	 * they would really poison pages) */
	5, 6, 7, 26, 99, 104, -1, 1000,
};
#define N_ADVICES (sizeof advices / sizeof advices[0])
#define FIRST_INVALID 28

static bool lasting(int a)
{
	switch (a) {
	case MMAPFILE_MADV_NORMAL: case MMAPFILE_MADV_RANDOM: case MMAPFILE_MADV_SEQUENTIAL:
	case MMAPFILE_MADV_DONTFORK: case MMAPFILE_MADV_DOFORK: case MMAPFILE_MADV_WIPEONFORK:
	case MMAPFILE_MADV_KEEPONFORK: case MMAPFILE_MADV_MERGEABLE: case MMAPFILE_MADV_UNMERGEABLE:
	case MMAPFILE_MADV_HUGEPAGE: case MMAPFILE_MADV_NOHUGEPAGE: case MMAPFILE_MADV_DONTDUMP:
	case MMAPFILE_MADV_DODUMP:
		return true;
	default:
		return false;
	}
}

static void do_madvise(struct in *in)
{
	settle(); /* (MADV_REMOVE, MADV_PAGEOUT would drop bytes not in the file yet) */
	off_t ts = twin_size(), hs = handle_size();
	unsigned ai = u8(in) % N_ADVICES;
	int advice = advices[ai];
	unsigned k = u8(in);
	off_t off = k % 4 == 0 ? 0 : dec_pos(in, hs, 0);
	if (off > CAP && off < OFF_MAX - (off_t)MAXLEN)
		off %= CAP;
	size_t len = k % 3 == 0 ? 0 : k % 3 == 1 ? dec_len(in, sub_sat(hs, off)) : (size_t)u24(in);
	if (k == 0xff)
		len = SIZE_MAX - u8(in);
	note("madvise(off=%jd, len=%zu, %s) [handle size %jd]", (intmax_t)off, len,
	     mmapfile_madvise_name(advice) ? mmapfile_madvise_name(advice) : "invalid", (intmax_t)hs);
	errno = 0;
	int r = mmapfile_madvise(S.h, off, len, advice);
	int e = errno;
	EXPECT(r == 0 || r == -1, "madvise returned %d", r);
	if (r == 0 && (advice == MMAPFILE_MADV_DONTFORK || advice == MMAPFILE_MADV_WIPEONFORK))
		S.dontfork = true; /* a child would not have (all of) the mapping */

	/* DESIGN.md's rules. */
	off_t pm = (off_t)S.page - 1;
	if (off < 0 || len > (size_t)OFF_MAX || (off_t)len > OFF_MAX - off) { /* (off < 0 first) */
		modelled(S.desc, r, e, EINVAL);
		return;
	}
	if (advice == MMAPFILE_MADV_GUARD_INSTALL) {
		modelled(S.desc, r, e, EINVAL);
		return;
	}
	bool whole = off == 0 && len == 0 && lasting(advice);
	off_t extent = (hs + pm) & ~pm;
	off_t start = off & ~pm, end = len ? off + (off_t)len : hs;
	end = end > extent - pm ? extent : (end + pm) & ~pm;
	/* An O_APPEND handle's mapping may end before its size (its appends do
	 * not grow it): a range starting past the mapping is ENOMEM there too. */
	bool lags = appending(S.flags) && writable(S.flags) && r == -1 && e == ENOMEM;
	if (!whole && (start >= extent || lags) && (off > 0 || len > 0)) {
		modelled(S.desc, r, e, ENOMEM);
		return;
	}
	if (ai >= FIRST_INVALID) {
		modelled(S.desc, r, e, EINVAL);
		return;
	}
	if (r == -1)
		EXPECT(e == EINVAL || e == EACCES || e == EPERM || e == EAGAIN || e == EFAULT ||
		       e == EBUSY || e == EIO || e == ENOMEM,
		       "madvise failed with an errno the kernel does not give: %s", errname(e));
	if (r == 0 && advice == MMAPFILE_MADV_REMOVE && end > start) {
		/* The file's pages [start, end) were punched out: zeros in the
		 * twin too, through a descriptor that does not append. */
		off_t zend = end < ts ? end : ts;
		if (appending(S.flags) && writable(S.flags))
			zend = punched_prefix(start, zend);
		int fd = open(S.tpath, O_WRONLY | O_CLOEXEC);
		EXPECT(fd >= 0, "open twin: %s", strerror(errno));
		memset(tbuf, 0, MAXLEN);
		for (off_t o = start; o < zend; ) {
			size_t n = zend - o < (off_t)MAXLEN ? (size_t)(zend - o) : MAXLEN;
			EXPECT(pwrite(fd, tbuf, n, o) == (ssize_t)n, "zeroing the twin: %s", strerror(errno));
			o += (off_t)n;
		}
		close(fd);
	}
}

static int dec_flags(struct in *in)
{
	unsigned b = u8(in);
	static const int acc[] = { O_RDONLY, O_WRONLY, O_RDWR, O_RDWR };
	int flags = acc[b & 3];
	if (b & 4)
		flags |= O_APPEND;
	if ((b & 0x18) == 0x18)
		flags |= O_TRUNC;
	if (b & 0x20)
		flags |= O_CREAT;
	if ((b & 0xC0) == 0xC0)
		flags |= (b & 8) ? O_SYNC : O_DSYNC;
	else if (b & 0x40)
		flags |= O_CLOEXEC;
	else if (b & 0x80)
		flags |= O_NOATIME;
	return flags;
}

/* Occasionally: flags the library refuses, or O_EXCL, or a missing file. */
static int dec_flag_extras(struct in *in, int flags, bool *unlink_first)
{
	unsigned x = u8(in);
	static const int bad[] = { O_DIRECTORY, O_NONBLOCK, O_PATH, O_DIRECT, O_NOCTTY, O_ASYNC };
	*unlink_first = false;
	switch (x % 16) {
	case 1: return flags | bad[(x >> 4) % 6];
	case 2: return (flags & ~O_ACCMODE) | O_ACCMODE;
	case 3: return flags | O_CREAT | O_EXCL;
	case 4: *unlink_first = true; return flags;
	case 5: *unlink_first = true; return flags | O_CREAT;
	default: return flags;
	}
}

static void do_reopen(struct in *in)
{
	int flags = dec_flags(in);
	bool unlink_first;
	flags = dec_flag_extras(in, flags, &unlink_first);
	note("close; %sreopen(%s)", unlink_first ? "unlink; " : "", flags_str(flags));
	close_both("close before reopen");
	if (unlink_first) {
		EXPECT(unlink(S.mpath) == 0 && unlink(S.tpath) == 0, "unlink: %s", strerror(errno));
	}
	open_both(flags, "reopen");
	ensure_open();
}

static void do_create(struct in *in)
{
	int flags = dec_flags(in);
	bool unlink_first;
	flags = dec_flag_extras(in, flags, &unlink_first);
	off_t size = bound_truncate(dec_pos(in, twin_size(), 0));
	note("close; %smmapfile_create(size=%jd, %s)", unlink_first ? "unlink; " : "", (intmax_t)size,
	     flags_str(flags));
	close_both("close before create");
	if (unlink_first) {
		EXPECT(unlink(S.mpath) == 0 && unlink(S.tpath) == 0, "unlink: %s", strerror(errno));
	}
	errno = 0;
	S.h = mmapfile_create(S.mpath, size, flags, 0644);
	int e = errno;
	int cflags = (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_TRUNC;
	if (size < 0 || !flags_valid(cflags)) {
		int r = S.h ? 0 : -1;
		if (S.h) {
			mmapfile_close(S.h);
			S.h = NULL;
		}
		modelled(S.desc, r, e, EINVAL);
		ensure_open();
		return;
	}
	errno = 0;
	S.tfd = open(S.tpath, twin_flags(cflags), 0644);
	int te = errno;
	int tr = S.tfd < 0 ? -1 : 0;
	if (S.tfd >= 0 && size > 0) {
		errno = 0;
		tr = ftruncate(S.tfd, size);
		te = errno;
		if (tr != 0) {
			close(S.tfd); /* mmapfile_create closes on failure, the file stays */
			S.tfd = -1;
		}
	}
	same("create", S.h ? 0 : -1, e, tr, te);
	S.flags = cflags;
	S.stale_shrink = S.stale_grow = false;
	S.dontfork = false;
	if (S.h)
		check_identity();
	ensure_open();
}

/* Another process cuts the file to any length below the handle's size. */
static void do_ext_shrink(struct in *in)
{
	settle();
	off_t hs = handle_size(), disk = path_size(S.mpath);
	off_t lim = hs - 1 < disk ? hs - 1 : disk;
	uint32_t v = u24(in);
	if (hs == 0 || lim < 0) {
		note("another process shrinks: skipped (the handle's size is 0)");
		return;
	}
	off_t len = (off_t)v % (lim + 1);
	if (!(v >> 23))
		len &= ~((off_t)S.page - 1); /* half of them to a page boundary */
	note("another process truncates the file to %jd [handle size %jd, on disk %jd]", (intmax_t)len,
	     (intmax_t)hs, (intmax_t)disk);
	EXPECT(truncate(S.mpath, len) == 0 && truncate(S.tpath, len) == 0, "truncate: %s", strerror(errno));
	S.stale_shrink = true;
	S.stale_grow = false;
}

/* Another process extends the file past its length on disk (or, while a
 * shrink is unlearned, to a page boundary below the handle's size). */
static void do_ext_grow(struct in *in)
{
	settle();
	off_t hs = handle_size(), disk = path_size(S.mpath);
	unsigned k = u8(in);
	off_t len;
	if (S.stale_shrink) {
		off_t page = (off_t)S.page;
		off_t lo = (disk + page) & ~(page - 1), hi = (hs - 1) & ~(page - 1);
		if (hi < lo) {
			note("another process extends: skipped (no page boundary between %jd and %jd)",
			     (intmax_t)disk, (intmax_t)hs);
			return;
		}
		len = lo + (off_t)(u16(in) % (uint32_t)((hi - lo) / page + 1)) * page;
	} else {
		len = disk + 1 + (k % 2 ? (off_t)u8(in) : (off_t)u24(in) % CAP);
		if (len > 2 * CAP) {
			note("another process extends: skipped (the file is %jd bytes already)", (intmax_t)disk);
			return;
		}
		S.stale_grow = true;
	}
	note("another process extends the file to %jd [handle size %jd, on disk %jd]", (intmax_t)len,
	     (intmax_t)hs, (intmax_t)disk);
	EXPECT(truncate(S.mpath, len) == 0 && truncate(S.tpath, len) == 0, "truncate: %s", strerror(errno));
	/* (An O_APPEND handle's appends are write(2) on an O_APPEND descriptor:
	 * they land at the file's end, learned or not.) */
}

/* Another process writes: inside the handle's size and the file, into the
 * handle's reserve (past its size, inside the file's length), or past the
 * file's length on disk. */
static void do_ext_write(struct in *in)
{
	settle();
	off_t hs = handle_size(), disk = path_size(S.mpath);
	unsigned k = u8(in);
	size_t n = 1 + dec_len(in, 0) % MAXLEN;
	uint32_t seed = u8(in);
	off_t inside = hs < disk ? hs : disk;
	off_t off;
	bool reserve = false;
	if (k % 2 == 0 && (off_t)n <= inside) {
		off = (off_t)(u24(in) % (uint32_t)(inside - (off_t)n + 1));
	} else if (k % 4 == 1 && !stale() && writable(S.flags) && disk > hs) {
		off = hs + (off_t)(u16(in) % (uint32_t)(disk - hs));
		if ((off_t)n > disk - off)
			n = (size_t)(disk - off);
		reserve = true;
	} else if (!S.stale_shrink && disk < 2 * CAP) {
		off = disk + (k & 2 ? (off_t)u8(in) : (off_t)u16(in));
		S.stale_grow = true;
	} else {
		note("another process writes: skipped");
		return;
	}
	fill(wbuf, n, seed);
	if (reserve)
		nonzero_end(wbuf, n);
	note("another process writes %zu bytes at %jd [handle size %jd, on disk %jd]%s", n, (intmax_t)off,
	     (intmax_t)hs, (intmax_t)disk, reserve ? ", into the reserve; then sync" : "");
	const char *paths[2] = { S.mpath, S.tpath };
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		EXPECT(fd >= 0 && pwrite(fd, wbuf, n, off) == (ssize_t)n, "another process's write to %s: %s",
		       paths[i], strerror(errno));
		close(fd);
	}
	/* The handle learns bytes in its reserve at its trim (sync or close)
	 * only: until then a read to its end would stop at its size. */
	if (reserve)
		sync_learns("after another process wrote into the reserve, mmapfile_sync");
}

/* mmapfile_madvise_name and _parse agree with each other (DESIGN.md). */
static void check_advice_names(struct in *in)
{
	int a = advices[u8(in) % N_ADVICES];
	const char *name = mmapfile_madvise_name(a);
	note("madvise_name(%d) = %s, and parse it back", a, name ? name : "NULL");
	bool known = a >= 0 && (a <= 25 ? a < 5 || a > 7 : a >= 100 && a <= 103);
	EXPECT(known == (name != NULL), "mmapfile_madvise_name(%d) is %s", a, name ? name : "NULL");
	if (!name) {
		errno = 0;
		EXPECT(mmapfile_madvise_parse(NULL) == -1 && errno == EINVAL, "parse(NULL) is not -1/EINVAL");
		errno = 0;
		EXPECT(mmapfile_madvise_parse("madv_bogus") == -1 && errno == EINVAL, "parse(\"madv_bogus\") is not -1/EINVAL");
		return;
	}
	EXPECT(strncmp(name, "MADV_", 5) == 0, "the name %s does not start with MADV_", name);
	char v[3][64];
	size_t i;
	for (i = 0; name[5 + i] && i < sizeof v[0] - 1; i++) /* "populate-read" */
		v[0][i] = name[5 + i] == '_' ? '-' : (char)(name[5 + i] | 0x20);
	v[0][i] = '\0';
	snprintf(v[1], sizeof v[1], "mmapfile_%s", name);
	snprintf(v[2], sizeof v[2], "Madv-%s", v[0]);
	EXPECT(mmapfile_madvise_parse(name) == a, "parse(%s) is not %d", name, a);
	for (int j = 0; j < 3; j++)
		EXPECT(mmapfile_madvise_parse(v[j]) == a, "parse(%s) is not %d", v[j], a);
}

/* Files that cannot be mapped, and a NULL path: DESIGN.md's errors. */
static void check_unmappable(struct in *in)
{
	static const int acc[] = { O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_CREAT };
	int flags = acc[u8(in) % 4];
	unsigned k = u8(in) % 3;
	const char *path = k == 0 ? S.dir : k == 1 ? S.fifo : NULL;
	int err = k == 0 ? EISDIR : k == 1 ? ENODEV : EINVAL;
	note("mmapfile_open(%s, %s)", k == 0 ? "a directory" : k == 1 ? "a FIFO" : "NULL", flags_str(flags));
	errno = 0;
	mmapfile_t *f = mmapfile_open(path, flags, 0644);
	int e = errno;
	if (f)
		mmapfile_close(f);
	modelled(S.desc, f ? 0 : -1, e, err);
	if (k == 2) {
		errno = 0;
		f = mmapfile_create(NULL, 0, flags, 0644);
		e = errno;
		if (f)
			mmapfile_close(f);
		modelled("mmapfile_create(NULL)", f ? 0 : -1, e, EINVAL);
	}
}

static void do_null_handle(struct in *in)
{
	unsigned k = u8(in) % 14;
	if (k == 12) {
		check_advice_names(in);
		return;
	}
	if (k == 13) {
		check_unmappable(in);
		return;
	}
	note("call %u with a NULL handle", k);
	char b[8];
	long long r = 0;
	errno = 0;
	switch (k) {
	case 0: r = mmapfile_read(NULL, b, sizeof b); break;
	case 1: r = mmapfile_write(NULL, b, sizeof b); break;
	case 2: r = mmapfile_readat(NULL, b, sizeof b, 0); break;
	case 3: r = mmapfile_writeat(NULL, b, sizeof b, 0); break;
	case 4: r = mmapfile_seek(NULL, 0, SEEK_SET); break;
	case 5: r = mmapfile_truncate(NULL, 0); break;
	case 6: r = mmapfile_sync(NULL); break;
	case 7: r = mmapfile_size(NULL); break;
	case 8: r = mmapfile_madvise(NULL, 0, 0, MMAPFILE_MADV_NORMAL); break;
	case 9: r = mmapfile_close(NULL); break;
	case 10: r = mmapfile_fd(NULL); break;
	default: r = mmapfile_name(NULL) ? 0 : -1; break;
	}
	modelled(S.desc, r, errno, EINVAL);
}

/* ---- other processes ------------------------------------------------------ */

/* A child runs only what the parent decoded (and described) before the fork.
 * It checks itself against the twin through a descriptor of its own (the
 * parent's twin descriptor would share its offset with the child), reports a
 * mismatch through a pipe (mismatch() knows it is in a child) and always
 * leaves by _exit: never back into libFuzzer, never through the atexit
 * handlers. */

#define MAX_SUB 4

enum { SUB_APPEND, SUB_WRITEAT, SUB_WRITE, SUB_READAT };

struct sub {
	unsigned kind;
	off_t off;
	size_t n;
	uint32_t seed;
};

static const char *sub_name(unsigned k)
{
	return k == SUB_APPEND ? "append" : k == SUB_WRITEAT ? "writeat" : k == SUB_WRITE ? "write" : "readat";
}

/* A record's length: short ones, pages, and the pwrite path's 16 KiB. */
static size_t dec_rec(struct in *in)
{
	switch (u8(in) % 4) {
	case 0: return 1 + u8(in) % 64;
	case 1: return 1 + u16(in) % 4096;
	case 2: return 16384 + u16(in) % 16384;
	default: return 1 + u8(in);
	}
}

/* The operations as text, for the note. */
static void subs_str(char *b, size_t len, const struct sub *sub, unsigned n)
{
	size_t at = 0;
	b[0] = '\0';
	for (unsigned i = 0; i < n && at < len; i++) {
		int k = sub[i].kind == SUB_APPEND || sub[i].kind == SUB_WRITE
		        ? snprintf(b + at, len - at, "%s%s(%zu)", i ? ", " : "", sub_name(sub[i].kind), sub[i].n)
		        : snprintf(b + at, len - at, "%s%s(%zu, %jd)", i ? ", " : "", sub_name(sub[i].kind),
		                   sub[i].n, (intmax_t)sub[i].off);
		at += k > 0 ? (size_t)k : 0;
	}
}

/* fork(); in the parent: the child's pid and *rd the pipe it reports on; in
 * the child: 0. */
static pid_t start_child(int *rd)
{
	int p[2];
	EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	EXPECT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		S.child_out = p[1];
		signal(SIGALRM, SIG_DFL); /* libFuzzer's timer stays the parent's; a stuck child dies */
		alarm(30);
		return 0;
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

/* Wait for the child.  What it wrote to the pipe (after what was read of it
 * already) is the mismatch it found.  killed: it must have died of SIGKILL,
 * else it must have exited with 0. */
static void finish_child(pid_t pid, int rd, const char *already, bool killed)
{
	char msg[480];
	size_t got = strlen(already);
	memcpy(msg, already, got);
	while (got < sizeof msg - 1) {
		ssize_t k = read(rd, msg + got, sizeof msg - 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	msg[got] = '\0';
	close(rd);
	int st = 0;
	pid_t w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	EXPECT(w == pid, "waitpid: %s", strerror(errno));
	if (got)
		mismatch(__LINE__, "in the child: %s", msg);
	if (killed)
		EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child did not die of SIGKILL (status %#x)", st);
	else
		EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status %#x%s", st,
		       WIFSIGNALED(st) ? " (a signal)" : "");
}

/* Another process's appends land at the file's end: past this handle's
 * reserve, whose zeros thereby become part of the file (DESIGN.md "Growth by
 * others"); the twin gets those zeros first.  (A handle with no reserve:
 * nothing between.) */
static void pad_twin(off_t disk, off_t ts)
{
	if (disk > ts)
		EXPECT(truncate(S.tpath, disk) == 0, "truncate(twin): %s", strerror(errno));
}

/* After another process wrote or appended (hs, disk, shrunk: this handle's
 * size, the file's length and whether a cut was unlearned, before).  Growth
 * past the length the handle knows is learned when a read reaches its end.
 * Bytes inside that length but past its size (its reserve, or what it takes
 * for its reserve after a cut it has not learned) cannot be told from its
 * reserve (DESIGN.md "Growth by others"): a writable handle learns them at
 * its trim, so mmapfile_sync follows and must keep them. */
static void after_others(off_t hs, off_t disk, bool shrunk, const char *why)
{
	off_t disk1 = path_size(S.mpath);
	if (twin_size() > hs && writable(S.flags) && !appending(S.flags) && (shrunk || disk1 == disk))
		sync_learns(why);
	else if (disk1 != disk)
		S.stale_grow = true;
}

/* Another process appends a few records to the file: through an mmapfile
 * handle of its own (O_WRONLY|O_APPEND or O_RDWR|O_APPEND, closed at the
 * end), or with write(2) on an O_APPEND descriptor.  The twin gets them with
 * write(2) on an O_APPEND descriptor.  This handle learns the growth when a
 * read reaches its end or at seek(SEEK_END) (SPEC point 6); the files must
 * be identical at once: no zeros between the records, none lost, and no
 * reserve left by the other handle. */
static void do_other_append(struct in *in)
{
	static const int oflags[] = { O_WRONLY | O_APPEND, O_RDWR | O_APPEND };
	unsigned m = u8(in);
	unsigned how = m % 3, nrec = 1 + (m >> 2) % MAX_SUB;
	struct sub sub[MAX_SUB];
	size_t total = 0;
	for (unsigned i = 0; i < nrec; i++) {
		size_t n = dec_rec(in);
		sub[i] = (struct sub){ SUB_APPEND, 0, n, u8(in) };
		total += n;
	}
	settle();
	off_t disk = path_size(S.mpath), ts = twin_size(), hs = handle_size();
	bool shrunk = S.stale_shrink;
	if (disk > 2 * CAP) {
		note("another process appends: skipped (the file is %jd bytes already)", (intmax_t)disk);
		return;
	}
	char subs[200], by[80];
	subs_str(subs, sizeof subs, sub, nrec);
	if (how < 2)
		snprintf(by, sizeof by, "through its own mmapfile_open(%s)", flags_str(oflags[how]));
	else
		snprintf(by, sizeof by, "with write(2) on an O_APPEND descriptor");
	note("another process appends %zu bytes (%s) %s [handle size %jd, twin %jd, on disk %jd]", total, subs, by,
	     (intmax_t)hs, (intmax_t)ts, (intmax_t)disk);
	pad_twin(disk, ts);
	int rd;
	pid_t pid = start_child(&rd);
	if (pid == 0) {
		mmapfile_t *h = NULL;
		int fd = -1;
		if (how < 2) {
			h = mmapfile_open(S.mpath, oflags[how], 0644);
			EXPECT(h, "mmapfile_open(%s): %s", flags_str(oflags[how]), strerror(errno));
		} else {
			fd = open(S.mpath, O_WRONLY | O_APPEND | O_CLOEXEC);
			EXPECT(fd >= 0, "open(O_WRONLY|O_APPEND): %s", strerror(errno));
		}
		int tf = open(S.tpath, O_WRONLY | O_APPEND | O_CLOEXEC);
		EXPECT(tf >= 0, "open(twin): %s", strerror(errno));
		for (unsigned i = 0; i < nrec; i++) {
			size_t n = sub[i].n;
			fill(wbuf, n, sub[i].seed);
			errno = 0;
			ssize_t r = h ? mmapfile_write(h, wbuf, n) : write(fd, wbuf, n);
			int e = errno;
			errno = 0;
			ssize_t tr = write(tf, wbuf, n);
			same("another process's append", r, e, tr, errno);
			if (h) {
				off_t c = mmapfile_seek(h, 0, SEEK_CUR), s = mmapfile_size(h);
				off_t tc = lseek(tf, 0, SEEK_CUR);
				EXPECT(c == tc && s == tc, "another process's handle: after append %u the cursor is %jd "
				       "and the size %jd, the twin's end %jd", i, (intmax_t)c, (intmax_t)s, (intmax_t)tc);
			}
		}
		if (h) {
			errno = 0;
			int r = mmapfile_close(h);
			EXPECT(r == 0, "another process's mmapfile_close: %d (%s)", r, errname(errno));
		} else {
			close(fd);
		}
		close(tf);
		_exit(0);
	}
	finish_child(pid, rd, "", false);
	compare_files("after another process appended", true);
	after_others(hs, disk, shrunk, "after another process appended past this handle's size, mmapfile_sync");
}

/* fork(2) with this handle open: the child's copy reads and writes (writeat
 * inside the size, write at the child's cursor, readat), then closes it or
 * leaves by _exit without closing.  The twin gets the child's writes at the
 * same offsets (a descriptor of the child's: its cursor is its own).  The
 * child's copy never cuts the file; what it wrote past this handle's size
 * this handle learns as another process's (after_others). */
static void do_fork_inherit(struct in *in)
{
	static const unsigned kinds[] = { SUB_WRITEAT, SUB_WRITE, SUB_READAT };
	unsigned m = u8(in);
	unsigned nsub = m % (MAX_SUB + 1);
	bool close_it = (m >> 3) & 1;
	off_t hs = handle_size(), ts = twin_size(), cur = twin_cursor();
	bool shrunk = S.stale_shrink;
	struct sub sub[MAX_SUB];
	for (unsigned i = 0; i < nsub; i++) {
		unsigned k = kinds[u8(in) % 3];
		size_t n = dec_rec(in);
		off_t off = 0;
		if (k == SUB_WRITEAT)
			off = hs > 0 ? (off_t)(u24(in) % (uint32_t)(hs < CAP ? hs : CAP)) : 0;
		else if (k == SUB_READAT)
			off = (off_t)(u24(in) % (uint32_t)((ts < CAP ? ts : CAP) + 1));
		sub[i] = (struct sub){ k, off, n, u8(in) };
	}
	bool dontfork = S.dontfork && nsub;
	if (dontfork)
		nsub = 0; /* the child has not got the mapping: it only closes or leaves */
	bool lax = false;
	if (S.lax_fork_sync && writable(S.flags) && (S.flags & (O_SYNC | O_DSYNC))) {
		unsigned kept = 0;
		for (unsigned i = 0; i < nsub; i++)
			if (sub[i].kind == SUB_READAT)
				sub[kept++] = sub[i];
		lax = kept < nsub;
		nsub = kept;
	}
	off_t disk = path_size(S.mpath);
	if (disk > 2 * CAP || (cur > 2 * CAP && !appending(S.flags))) {
		note("fork: skipped (the file is %jd bytes, the cursor at %jd)", (intmax_t)disk, (intmax_t)cur);
		return;
	}
	char subs[200];
	subs_str(subs, sizeof subs, sub, nsub);
	note("fork; the child's inherited handle: %s%s%s; %s [handle size %jd, cursor %jd, twin %jd, on disk %jd]",
	     nsub ? subs : "nothing", dontfork ? " (MADV_DONTFORK given)" : "",
	     lax ? " (writes left out: FUZZ_ORACLE_LAX=fork-sync)" : "",
	     close_it ? "mmapfile_close" : "_exit without close", (intmax_t)hs, (intmax_t)cur, (intmax_t)ts,
	     (intmax_t)disk);
	int rd;
	pid_t pid = start_child(&rd);
	if (pid == 0) {
		int tf = open(S.tpath, (twin_flags(S.flags) & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
		EXPECT(tf >= 0, "open(twin): %s", strerror(errno));
		off_t tc = cur;
		for (unsigned i = 0; i < nsub; i++) {
			size_t n = sub[i].n;
			off_t off = sub[i].off;
			ssize_t r, tr;
			int e;
			fill(wbuf, n, sub[i].seed);
			nonzero_end(wbuf, n);
			errno = 0;
			switch (sub[i].kind) {
			case SUB_WRITEAT:
				r = mmapfile_writeat(S.h, wbuf, n, off);
				e = errno;
				if (!twin_agrees(true, true, false, n, off)) {
					modelled("the child's writeat", r, e, io_error(true, true, false, n, off));
					break;
				}
				errno = 0;
				tr = pwrite(tf, wbuf, n, off);
				same("the child's writeat", r, e, tr, errno);
				break;
			case SUB_WRITE:
				r = mmapfile_write(S.h, wbuf, n);
				e = errno;
				errno = 0;
				tr = appending(S.flags) ? write(tf, wbuf, n) : pwrite(tf, wbuf, n, tc);
				same("the child's write", r, e, tr, errno);
				if (tr > 0)
					tc = appending(S.flags) ? lseek(tf, 0, SEEK_CUR) : tc + tr;
				off = mmapfile_seek(S.h, 0, SEEK_CUR);
				EXPECT(off == tc, "the child's cursor is %jd after its write, the twin's %jd", (intmax_t)off,
				       (intmax_t)tc);
				break;
			default: {
				off_t chs = mmapfile_size(S.h);
				memset(hbuf, CANARY, n + 1);
				r = mmapfile_readat(S.h, hbuf, n, off);
				e = errno;
				errno = 0;
				tr = pread(tf, tbuf, n, off);
				int te = errno;
				ssize_t got = r;
				if (cut_page_read(off, n, chs, r, tr)) {
					for (size_t j = (size_t)tr; j < (size_t)r; j++)
						EXPECT(hbuf[j] == 0, "the child's readat across an unlearned cut: byte %zu "
						       "is 0x%02x, not zero", j, hbuf[j]);
					r = tr;
				}
				same("the child's readat", r, e, tr, te);
				EXPECT(r <= 0 || memcmp(hbuf, tbuf, (size_t)r) == 0, "the child's readat: the bytes differ");
				for (size_t j = got > 0 ? (size_t)got : 0; j < n + 1 && !S.lax_clobber; j++)
					EXPECT(hbuf[j] == CANARY, "the child's readat changed byte %zu of the buffer", j);
				break;
			}
			}
		}
		if (close_it) {
			errno = 0;
			int r = mmapfile_close(S.h);
			EXPECT(r == 0, "the child's mmapfile_close of its inherited handle: %d (%s)", r, errname(errno));
		}
		_exit(0);
	}
	finish_child(pid, rd, "", false);
	off_t disk1 = path_size(S.mpath);
	EXPECT(disk1 >= disk, "the child's copy of the handle cut the file from %jd to %jd bytes", (intmax_t)disk,
	       (intmax_t)disk1);
	after_others(hs, disk, shrunk, "after the child wrote past this handle's size, mmapfile_sync");
	compare_files("after the child", false);
}

/* Another process opens its own handle (O_RDWR; O_APPEND and O_DSYNC ones
 * too), appends and writes, says so through a pipe, and is killed with
 * SIGKILL.  Every byte it wrote is in the file (the page cache outlives it);
 * past them its reserve may remain: zeros, at most one 2 MiB step, none for
 * O_APPEND and O_DSYNC.  The harness checks that and then truncates the
 * file to the twin's length through a plain path (truncate(2)), so the
 * leftover does not accumulate; this handle learns that length as growth by
 * another process. */
static void do_kill(struct in *in)
{
	static const int kflags[] = { O_RDWR, O_RDWR, O_RDWR | O_APPEND, O_RDWR | O_DSYNC };
	unsigned m = u8(in);
	int fl = kflags[m % 4];
	unsigned nsub = 1 + (m >> 2) % MAX_SUB;
	settle();
	off_t disk = path_size(S.mpath), ts = twin_size(), hs = handle_size();
	bool shrunk = S.stale_shrink;
	struct sub sub[MAX_SUB];
	off_t size = disk; /* the killed handle's size as it goes */
	for (unsigned i = 0; i < nsub; i++) {
		bool at = i > 0 && u8(in) % 2;
		size_t n = dec_rec(in);
		off_t off = at ? (off_t)(u24(in) % (uint32_t)(size < CAP ? size : CAP)) : 0;
		sub[i] = (struct sub){ at ? SUB_WRITEAT : SUB_APPEND, off, n, u8(in) };
		if (!at)
			size += (off_t)n;
		else if (!(fl & O_APPEND) && off + (off_t)n > size)
			size = off + (off_t)n;
	}
	if (disk > 2 * CAP) {
		note("another process, killed: skipped (the file is %jd bytes already)", (intmax_t)disk);
		return;
	}
	char subs[200];
	subs_str(subs, sizeof subs, sub, nsub);
	note("another process: mmapfile_open(%s), %s, SIGKILL [handle size %jd, twin %jd, on disk %jd]",
	     flags_str(fl), subs, (intmax_t)hs, (intmax_t)ts, (intmax_t)disk);
	pad_twin(disk, ts);
	int rd;
	pid_t pid = start_child(&rd);
	if (pid == 0) {
		mmapfile_t *h = mmapfile_open(S.mpath, fl, 0644);
		EXPECT(h, "mmapfile_open(%s): %s", flags_str(fl), strerror(errno));
		int tf = open(S.tpath, (fl & ~O_DSYNC) | O_CLOEXEC);
		EXPECT(tf >= 0, "open(twin): %s", strerror(errno));
		struct stat st;
		EXPECT(fstat(tf, &st) == 0 && mmapfile_size(h) == st.st_size,
		       "the other process's handle: mmapfile_size %jd at open, the file is %jd bytes",
		       (intmax_t)mmapfile_size(h), (intmax_t)st.st_size);
		for (unsigned i = 0; i < nsub; i++) {
			size_t n = sub[i].n;
			ssize_t r, tr;
			int e;
			fill(wbuf, n, sub[i].seed);
			if (sub[i].kind == SUB_APPEND) {
				if (!(fl & O_APPEND)) {
					errno = 0;
					off_t c = mmapfile_seek(h, 0, SEEK_END);
					e = errno;
					errno = 0;
					same("the other process's seek(0, SEEK_END)", c, e, lseek(tf, 0, SEEK_END), errno);
				}
				errno = 0;
				r = mmapfile_write(h, wbuf, n);
				e = errno;
				errno = 0;
				tr = write(tf, wbuf, n);
				same("the other process's append", r, e, tr, errno);
			} else {
				errno = 0;
				r = mmapfile_writeat(h, wbuf, n, sub[i].off);
				e = errno;
				if (fl & O_APPEND) {
					modelled("the other process's writeat (O_APPEND)", r, e, EINVAL);
				} else {
					errno = 0;
					tr = pwrite(tf, wbuf, n, sub[i].off);
					same("the other process's writeat", r, e, tr, errno);
				}
			}
			off_t c = mmapfile_seek(h, 0, SEEK_CUR), s = mmapfile_size(h);
			EXPECT(fstat(tf, &st) == 0 && s == st.st_size && c == lseek(tf, 0, SEEK_CUR),
			       "the other process's handle after %s %u: size %jd, cursor %jd; the twin's %jd, %jd",
			       sub_name(sub[i].kind), i, (intmax_t)s, (intmax_t)c, (intmax_t)st.st_size,
			       (intmax_t)lseek(tf, 0, SEEK_CUR));
		}
		EXPECT(write(S.child_out, "D", 1) == 1, "write(pipe): %s", strerror(errno));
		for (;;)
			pause();
	}
	char c = 0;
	ssize_t k;
	while ((k = read(rd, &c, 1)) < 0 && errno == EINTR)
		;
	if (k == 1 && c == 'D') {
		EXPECT(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
		finish_child(pid, rd, "", true);
	} else {
		char a[2] = { k == 1 ? c : '\0', '\0' };
		finish_child(pid, rd, a, false);
		mismatch(__LINE__, "the other process ended before it was killed");
	}
	off_t len = path_size(S.mpath), tlen = twin_size();
	EXPECT(len >= tlen, "after the kill the file is %jd bytes, shorter than the twin's %jd", (intmax_t)len,
	       (intmax_t)tlen);
	EXPECT(len - tlen <= STEP, "the killed handle left %jd bytes past its size (more than one 2 MiB step)",
	       (intmax_t)(len - tlen));
	if (fl & (O_APPEND | O_DSYNC))
		EXPECT(len == tlen, "the killed %s handle left a reserve of %jd bytes", flags_str(fl),
		       (intmax_t)(len - tlen));
	compare_files("after the kill", false); /* the twin's bytes, then only zeros */
	if (len > tlen)
		EXPECT(truncate(S.mpath, tlen) == 0, "truncate: %s", strerror(errno));
	after_others(hs, disk, shrunk, "after the killed process wrote past this handle's size, mmapfile_sync");
}

static void do_check(void)
{
	note("compare the files");
	compare_files("comparing the files", false);
}

/* ---- setup ------------------------------------------------------------------ */

static void cleanup(void)
{
	unlink(S.mpath);
	unlink(S.tpath);
	unlink(S.fifo);
	rmdir(S.dir);
}

/* The largest length the file system allows (ftruncate answers EFBIG past
 * it).  Writes there are generated only when it is far below the largest
 * off_t (ext4: 16 TiB), so that a file never becomes huge. */
static void probe_fs_max(void)
{
	char p[620];
	snprintf(p, sizeof p, "%s/probe", S.dir);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("fuzz_oracle: probe");
		exit(1);
	}
	off_t lo = 0, hi = OFF_MAX; /* lo allowed; hi: unknown or refused */
	if (ftruncate(fd, hi) == 0) {
		lo = hi;
	} else {
		while (hi - lo > 1) {
			off_t mid = lo + (hi - lo) / 2;
			if (ftruncate(fd, mid) == 0)
				lo = mid;
			else
				hi = mid;
		}
	}
	close(fd);
	unlink(p);
	S.fs_max = lo;
	S.huge_efbig = lo < ((off_t)1 << 50);
}

static bool lax_has(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p; ) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(S.dir, sizeof S.dir, "%s/fuzz_oracle.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(S.dir)) {
		perror("fuzz_oracle: mkdtemp");
		exit(1);
	}
	snprintf(S.mpath, sizeof S.mpath, "%s/handle", S.dir);
	snprintf(S.tpath, sizeof S.tpath, "%s/twin", S.dir);
	snprintf(S.fifo, sizeof S.fifo, "%s/fifo", S.dir);
	if (mkfifo(S.fifo, 0644) != 0) {
		perror("fuzz_oracle: mkfifo");
		exit(1);
	}
	atexit(cleanup);
	long p = sysconf(_SC_PAGESIZE);
	S.page = p > 0 ? (size_t)p : 4096;
	const char *tr = getenv("FUZZ_ORACLE_TRACE");
	S.trace = tr && *tr && strcmp(tr, "0") != 0;
	const char *lax = getenv("FUZZ_ORACLE_LAX");
	S.lax_stale_truncate = lax_has(lax, "stale-truncate");
	S.lax_sync_learn = lax_has(lax, "sync-learn");
	S.lax_clobber = lax_has(lax, "read-clobber");
	S.lax_stale_pwrite = lax_has(lax, "stale-pwrite");
	S.lax_fork_sync = lax_has(lax, "fork-sync");
	probe_fs_max();
	S.tfd = -1;
	S.child_out = -1;
	if (S.trace)
		fprintf(stderr, "fuzz_oracle: %s; the file system's largest size %jd (%s)\n", S.dir,
			(intmax_t)S.fs_max, S.huge_efbig ? "writes past it are tried" : "too far to try");
}

static void write_file(const char *p, const unsigned char *b, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n)) {
		perror("fuzz_oracle: writing the starting file");
		abort();
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!S.dir[0])
		setup();
	struct in in = { data, size };
	S.idx = 0;
	S.inputs++;

	/* The starting contents, the same in both files. */
	unsigned s = u8(&in);
	static const size_t starts[] = { 0, 1, 4095, 4096, 4097, 8192, 12288, 65536 };
	size_t n0 = s % 2 ? starts[(s >> 1) % 8] : (size_t)u16(&in) * (s & 2 ? 4 : 1);
	if (n0 > MAXLEN)
		n0 = MAXLEN;
	fill(wbuf, n0, s);
	write_file(S.mpath, wbuf, n0);
	write_file(S.tpath, wbuf, n0);
	int flags = dec_flags(&in);
	note("start: %zu bytes, open(%s)", n0, flags_str(flags));
	open_both(flags, "open");
	ensure_open();
	after_op();

	for (S.idx = 1; in.n > 0 && S.idx <= MAX_OPS; S.idx++) {
		unsigned op = u8(&in) % OP_KINDS;
		switch (op) {
		case OP_READ: do_read(&in, false); break;
		case OP_WRITE: do_write(&in, false); break;
		case OP_READAT: do_read(&in, true); break;
		case OP_WRITEAT: do_write(&in, true); break;
		case OP_SEEK: do_seek(&in); break;
		case OP_TRUNCATE: do_truncate(&in); break;
		case OP_SYNC: do_sync(); break;
		case OP_SIZE: do_size(); break;
		case OP_MADVISE: do_madvise(&in); break;
		case OP_REOPEN: do_reopen(&in); break;
		case OP_CREATE: do_create(&in); break;
		case OP_EXT_SHRINK: do_ext_shrink(&in); break;
		case OP_EXT_GROW: do_ext_grow(&in); break;
		case OP_EXT_WRITE: do_ext_write(&in); break;
		case OP_NULL_HANDLE: do_null_handle(&in); break;
		case OP_OTHER_APPEND: do_other_append(&in); break;
		case OP_FORK: do_fork_inherit(&in); break;
		case OP_KILL: do_kill(&in); break;
		default: do_check(); break;
		}
		after_op();
		if (S.idx % CHECK_EVERY == 0)
			compare_files("periodic comparison", false);
		S.ops++;
	}

	note("end: compare, close, compare");
	compare_files("at the end, before close", false);
	close_both("final close");
	unlink(S.mpath);
	unlink(S.tpath);
	return 0;
}
