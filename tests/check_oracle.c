/* check_oracle.c - long random operation sequences, checked against a plain
 * file descriptor.
 *
 * For every seed, two twin files start with the same contents.  One is
 * driven through an mmapfile_t, the other through a plain descriptor opened
 * with the same flags (the oracle: read/write/pread/pwrite/lseek/ftruncate/
 * fsync).  Every operation is done on both; the return values, errno on
 * failure, the bytes read, the cursor and the size must agree after every
 * step, and the two files must be byte-identical (same length on disk) after
 * every mmapfile_sync and every close.
 *
 * Where DESIGN.md deliberately differs from a Linux descriptor the oracle is
 * not asked, and the handle is held to DESIGN.md instead:
 *   - writeat on a writable O_APPEND handle is EINVAL (pwrite would append);
 *   - a NULL buffer with n > 0 is EINVAL (the kernel: EFAULT, or 0 at EOF);
 *   - n > SSIZE_MAX is EINVAL (the kernel: EFAULT);
 *   - whence SEEK_DATA/SEEK_HOLE is EINVAL (the kernel accepts them).
 * (An n larger than the test's buffers is also held to the model rather
 * than handed to the kernel; a descriptor gives the same errno there.)
 * Writes and truncates stay below CAP (4 MiB), far below any file system's
 * maximum (EFBIG), and seek targets below 2^33 (the kernel refuses a seek
 * past the file system's maximum file size, which the library need not).
 *
 * Environment:
 *   MMAPFILE_ORACLE_SEEDS  number of seeds (default 300; fewer under
 *                          valgrind/ASan/TSan, said on stdout)
 *   MMAPFILE_ORACLE_OPS    operations per seed (default 400)
 *   MMAPFILE_ORACLE_SEED   run only this seed (to reproduce a failure)
 *   MMAPFILE_ORACLE_TRACE  non-empty: print every operation to stderr
 * A failure names the seed, the operation's index and the operation, and
 * prints the operations that led to it; so does a SIGSEGV/SIGBUS.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SEEK_DATA
#define SEEK_DATA 3
#endif
#ifndef SEEK_HOLE
#define SEEK_HOLE 4
#endif

#define OFF_MAX ((off_t)INT64_MAX)
#define OFF_MIN ((off_t)INT64_MIN)

#define CAP ((off_t)4 << 20)        /* no write or truncate goes past this */
#define BUFSZ ((size_t)CAP + (2u << 20)) /* > any read a buggy handle could do */
#define FAR ((off_t)1 << 32)        /* far seek/read targets: [FAR, 2*FAR) */
#define LARGE_MAX ((size_t)1 << 20) /* the largest ordinary transfer */
#define CANARY 0xA5
#define HIST 12

#define DEFAULT_SEEDS 300
#define DEFAULT_OPS 400

enum kind { OP_READ, OP_WRITE, OP_READAT, OP_WRITEAT, OP_SEEK, OP_TRUNCATE,
	    OP_SIZE, OP_SYNC, OP_REOPEN, OP_KINDS };

static const char *const kind_name[OP_KINDS] = {
	"read", "write", "readat", "writeat", "seek", "truncate", "size", "sync", "reopen",
};

struct op {
	enum kind kind;
	size_t n;
	off_t off;       /* readat/writeat offset, seek offset, truncate size */
	int whence;
	bool null_buf;
	int flags;       /* reopen */
	bool excl_probe; /* reopen: first try O_CREAT|O_EXCL (EEXIST on both) */
	uint64_t data;   /* seed of the bytes written */
};

struct stats {
	unsigned long ops[OP_KINDS];
	unsigned long ok, ebadf, einval, eexist, other_err, modelled;
	unsigned long bytes_read, bytes_written, compares, sessions;
	unsigned long sess_rdonly, sess_wronly, sess_rdwr, sess_append, sess_sync, sess_trunc;
};

struct run {
	uint64_t seed;
	long idx;
	uint64_t rng;
	char mpath[4096], opath[4096];
	mmapfile_t *f;
	int ofd;
	int flags;
	off_t size, cursor;       /* the oracle's, before the current op */
	struct op op;
	char desc[256];
	char hist[HIST][448];
	long hist_idx[HIST];
	bool trace;
	unsigned char *wbuf, *mbuf, *obuf;
	struct stats *st;
};

/* ---- failure reporting ------------------------------------------------ */

static const char *errname(int err)
{
	switch (err) {
	case 0: return "0";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EFBIG: return "EFBIG";
	case EFAULT: return "EFAULT";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case EIO: return "EIO";
	case EOVERFLOW: return "EOVERFLOW";
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case ENOSYS: return "ENOSYS";
	default: return strerror(err);
	}
}

static const char *flags_str(int flags)
{
	static char s[160];
	int acc = flags & O_ACCMODE;
	snprintf(s, sizeof s, "%s%s%s%s%s%s%s",
		 acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR",
		 flags & O_APPEND ? "|O_APPEND" : "",
		 flags & O_TRUNC ? "|O_TRUNC" : "",
		 (flags & O_SYNC) == O_SYNC ? "|O_SYNC" : (flags & O_DSYNC) ? "|O_DSYNC" : "",
		 flags & O_CREAT ? "|O_CREAT" : "",
		 flags & O_EXCL ? "|O_EXCL" : "",
		 flags & O_CLOEXEC ? "|O_CLOEXEC" : "");
	return s;
}

static void describe(struct run *r)
{
	const struct op *o = &r->op;
	char pre[96];
	snprintf(pre, sizeof pre, "[size %jd, cursor %jd] ", (intmax_t)r->size, (intmax_t)r->cursor);
	switch (o->kind) {
	case OP_READ:
	case OP_WRITE:
		snprintf(r->desc, sizeof r->desc, "%s%s(%s, n=%zu)", pre, kind_name[o->kind],
			 o->null_buf ? "NULL" : "buf", o->n);
		break;
	case OP_READAT:
	case OP_WRITEAT:
		snprintf(r->desc, sizeof r->desc, "%s%s(%s, n=%zu, off=%jd)", pre, kind_name[o->kind],
			 o->null_buf ? "NULL" : "buf", o->n, (intmax_t)o->off);
		break;
	case OP_SEEK:
		snprintf(r->desc, sizeof r->desc, "%sseek(off=%jd, whence=%d %s)", pre, (intmax_t)o->off,
			 o->whence, o->whence == SEEK_SET ? "SEEK_SET" : o->whence == SEEK_CUR ? "SEEK_CUR"
			 : o->whence == SEEK_END ? "SEEK_END" : o->whence == SEEK_DATA ? "SEEK_DATA"
			 : o->whence == SEEK_HOLE ? "SEEK_HOLE" : "invalid");
		break;
	case OP_TRUNCATE:
		snprintf(r->desc, sizeof r->desc, "%struncate(%jd)", pre, (intmax_t)o->off);
		break;
	case OP_REOPEN:
		snprintf(r->desc, sizeof r->desc, "%sclose + reopen(%s)%s", pre, flags_str(o->flags),
			 o->excl_probe ? " after an O_CREAT|O_EXCL probe" : "");
		break;
	default:
		snprintf(r->desc, sizeof r->desc, "%s%s()", pre, kind_name[o->kind]);
		break;
	}
}

static void oracle_fail(struct run *r, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void oracle_fail(struct run *r, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	fprintf(stderr, "check_oracle: seed %" PRIu64 " failed at op %ld; the last operations (handle %s):\n",
		r->seed, r->idx, flags_str(r->flags));
	for (long i = r->idx - HIST + 1; i <= r->idx; i++) {
		if (i < 0)
			continue;
		fprintf(stderr, "  op %ld: %s\n", i, r->hist[i % HIST]);
	}
	fflush(stderr);
	ck_abort_msg("seed %" PRIu64 " op %ld %s on %s: %s (check_oracle.c:%d); "
		     "reproduce with MMAPFILE_ORACLE_SEED=%" PRIu64 " MMAPFILE_ORACLE_OPS=%ld",
		     r->seed, r->idx, r->desc, flags_str(r->flags), msg, line, r->seed, r->idx + 1);
	abort(); /* not reached */
}

#define EXPECT(r, cond, ...) do { if (!(cond)) oracle_fail((r), __LINE__, __VA_ARGS__); } while (0)

/* A crash (SIGSEGV/SIGBUS from a bad copy) names the seed and the op too;
 * then the previous handler (the default, or a sanitizer's) takes over when
 * the faulting access runs again. */
static struct run *volatile crash_run;
static struct sigaction old_segv, old_bus;

static void put(const char *s)
{
	ssize_t w = write(STDERR_FILENO, s, strlen(s));
	(void)w;
}

static void put_num(uint64_t v)
{
	char d[24];
	int i = sizeof d - 1;
	d[i] = '\0';
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	put(d + i);
}

static void on_crash(int sig)
{
	struct run *r = crash_run;
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	if (!r)
		return;
	put("check_oracle: ");
	put(sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	put(" at seed ");
	put_num(r->seed);
	put(" op ");
	put_num(r->idx >= 0 ? (uint64_t)r->idx : 0);
	if (r->idx >= 0) {
		put(": ");
		put(r->hist[r->idx % HIST]);
	}
	put("\ncheck_oracle: reproduce with MMAPFILE_ORACLE_SEED=");
	put_num(r->seed);
	put(" MMAPFILE_ORACLE_OPS=");
	put_num(r->idx >= 0 ? (uint64_t)r->idx + 1 : 1);
	put("\n");
}

static void catch_crashes(struct run *r)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_crash;
	sigemptyset(&sa.sa_mask);
	crash_run = r;
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

static void release_crashes(void)
{
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	crash_run = NULL;
}

/* ---- random choices ---------------------------------------------------- */

static uint64_t rnd(struct run *r, uint64_t n)
{
	return n ? tu_rand(&r->rng) % n : 0;
}

static bool chance(struct run *r, unsigned permille)
{
	return rnd(r, 1000) < permille;
}

static size_t page_size(void)
{
	static size_t page;
	if (!page) {
		long p = sysconf(_SC_PAGESIZE);
		page = p > 0 ? (size_t)p : 4096;
	}
	return page;
}

/* A transfer length: mostly small, sometimes around pages, rarely large. */
static size_t gen_len(struct run *r)
{
	size_t page = page_size();
	unsigned p = (unsigned)rnd(r, 1000);
	if (p < 50)
		return 0;
	if (p < 780)
		return 1 + rnd(r, 300);
	if (p < 820)
		return (1 + rnd(r, 3)) * page + rnd(r, 3) - 1;
	if (p < 920)
		return 301 + rnd(r, 2 * page);
	if (p < 985)
		return 2 * page + rnd(r, 65536);
	return 65536 + rnd(r, LARGE_MAX - 65536 + 1);
}

/* A position relative to the size: inside, at page boundaries, at the end,
 * past it (small and large gaps), and with far_ok far past it. */
static off_t gen_pos(struct run *r, bool far_ok)
{
	off_t s = r->size;
	off_t page = (off_t)page_size();
	unsigned p = (unsigned)rnd(r, 1000);
	if (p < 330)
		return (off_t)rnd(r, (uint64_t)s + 1);
	if (p < 480) {
		off_t v = (off_t)rnd(r, (uint64_t)(s / page + 3)) * page + (off_t)rnd(r, 17) - 8;
		return v < 0 ? 0 : v;
	}
	if (p < 580)
		return s + (off_t)rnd(r, 301);
	if (p < 660)
		return s > 0 && chance(r, 500) ? s - 1 : s;
	if (p < 840)
		return s + (off_t)rnd(r, 65536);
	if (p < 960)
		return s + (off_t)rnd(r, 2u << 20);
	if (far_ok)
		return FAR + (off_t)rnd(r, (uint64_t)FAR);
	return s + (off_t)rnd(r, 4096);
}

static bool readable(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
static bool writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }
static bool appending(int flags) { return (flags & O_APPEND) != 0; }

static int gen_flags(struct run *r)
{
	unsigned p = (unsigned)rnd(r, 100);
	int flags = p < 45 ? O_RDWR : p < 75 ? O_WRONLY : O_RDONLY;
	if (chance(r, 300))
		flags |= O_APPEND;
	if (chance(r, 100))
		flags |= O_TRUNC;
	p = (unsigned)rnd(r, 100);
	if (p < 5)
		flags |= O_SYNC;
	else if (p < 10)
		flags |= O_DSYNC;
	if (chance(r, 500))
		flags |= O_CREAT;
	if (chance(r, 300))
		flags |= O_CLOEXEC;
	return flags;
}

/* Occasional bad inputs for the transfer calls. */
static void gen_bad_transfer(struct run *r, bool positional)
{
	struct op *o = &r->op;
	unsigned p = (unsigned)rnd(r, positional ? 4 : 2);
	switch (p) {
	case 0: /* NULL buffer, n sometimes 0 */
		o->null_buf = true;
		o->n = chance(r, 250) ? 0 : 1 + rnd(r, 4096);
		break;
	case 1: /* n > SSIZE_MAX */
		o->n = chance(r, 300) ? SIZE_MAX : (size_t)SSIZE_MAX + 1 + rnd(r, 1000);
		break;
	case 2: /* negative offset */
		o->off = chance(r, 200) ? OFF_MIN : chance(r, 400) ? -1 : -1 - (off_t)rnd(r, 1u << 30);
		break;
	default: /* offset + n near or past the largest off_t */
		o->off = OFF_MAX - (off_t)rnd(r, 200);
		o->n = rnd(r, 400);
		if (o->kind == OP_WRITEAT && o->n > 0 && o->off <= OFF_MAX - (off_t)o->n)
			o->n = (size_t)(OFF_MAX - o->off) + 1 + rnd(r, 100); /* overflow, never EFBIG */
		break;
	}
}

static void gen_op(struct run *r)
{
	struct op *o = &r->op;
	memset(o, 0, sizeof *o);
	unsigned p = (unsigned)rnd(r, 1000);
	o->kind = p < 170 ? OP_READ : p < 380 ? OP_WRITE : p < 530 ? OP_READAT : p < 710 ? OP_WRITEAT
		: p < 840 ? OP_SEEK : p < 900 ? OP_TRUNCATE : p < 955 ? OP_SIZE : p < 975 ? OP_SYNC : OP_REOPEN;
	/* Keep the file from creeping up to CAP: big files get cut down. */
	if (r->size > CAP / 2 && (o->kind == OP_WRITE || o->kind == OP_WRITEAT) && chance(r, 250))
		o->kind = OP_TRUNCATE;
	o->data = tu_rand(&r->rng);

	switch (o->kind) {
	case OP_READ:
	case OP_WRITE:
		o->n = gen_len(r);
		if (chance(r, 40))
			gen_bad_transfer(r, false);
		break;
	case OP_READAT:
	case OP_WRITEAT:
		o->n = gen_len(r);
		o->off = gen_pos(r, o->kind == OP_READAT);
		if (chance(r, 60))
			gen_bad_transfer(r, true);
		break;
	case OP_SEEK: {
		p = (unsigned)rnd(r, 1000);
		o->whence = (int)rnd(r, 3);
		off_t base = o->whence == SEEK_SET ? 0 : o->whence == SEEK_CUR ? r->cursor : r->size;
		if (p < 60) {
			static const int bad[] = { SEEK_DATA, SEEK_HOLE, 5, -1, 42, INT_MAX, INT_MIN };
			o->whence = bad[rnd(r, sizeof bad / sizeof bad[0])];
			o->off = (off_t)rnd(r, 100);
		} else if (p < 140) { /* a negative result */
			o->off = chance(r, 100) ? OFF_MIN : -base - 1 - (off_t)rnd(r, 5000);
		} else if (p < 170 && base > 0) { /* base + off past the largest off_t */
			o->off = OFF_MAX - (off_t)rnd(r, (uint64_t)base);
		} else if (p < 220) { /* query */
			o->off = 0;
		} else {
			o->off = gen_pos(r, true) - base;
		}
		break;
	}
	case OP_TRUNCATE: {
		off_t s = r->size, page = (off_t)page_size();
		p = (unsigned)rnd(r, 1000);
		if (r->size > CAP / 2 && p < 700)
			o->off = (off_t)rnd(r, (uint64_t)s / 2);
		else if (p < 300)
			o->off = (off_t)rnd(r, (uint64_t)s + 1);
		else if (p < 420)
			o->off = 0;
		else if (p < 600)
			o->off = s + (off_t)rnd(r, 301);
		else if (p < 720)
			o->off = (off_t)rnd(r, (uint64_t)(s / page + 3)) * page + (off_t)rnd(r, 3) - 1;
		else if (p < 840)
			o->off = s + (off_t)rnd(r, 65536);
		else if (p < 880)
			o->off = (off_t)rnd(r, (uint64_t)CAP);
		else if (p < 940)
			o->off = s;
		else
			o->off = chance(r, 200) ? OFF_MIN : -1 - (off_t)rnd(r, 10000);
		if (p < 940 && o->off < 0) /* page boundary - 1 at 0 */
			o->off = 0;
		if (o->off > CAP)
			o->off = CAP;
		break;
	}
	case OP_REOPEN:
		o->flags = gen_flags(r);
		o->excl_probe = chance(r, 100);
		break;
	default:
		break;
	}

	/* Keep every write below CAP (far from EFBIG): an ordinary write that
	 * would reach past it is shortened. */
	if ((o->kind == OP_WRITE || o->kind == OP_WRITEAT) && writable(r->flags) && !o->null_buf &&
	    o->n > 0 && o->n <= SSIZE_MAX) {
		off_t at;
		bool ok = true;
		if (o->kind == OP_WRITE)
			at = appending(r->flags) ? r->size : r->cursor;
		else {
			at = o->off;
			ok = !appending(r->flags) && o->off >= 0 && o->off <= OFF_MAX - (off_t)o->n;
		}
		if (ok && at + (off_t)o->n > CAP)
			o->n = at >= CAP ? 0 : (size_t)(CAP - at);
	}
}

/* ---- oracle helpers ---------------------------------------------------- */

static void oracle_state(struct run *r)
{
	struct stat st;
	EXPECT(r, fstat(r->ofd, &st) == 0, "fstat(oracle): %s", strerror(errno));
	r->size = st.st_size;
	r->cursor = lseek(r->ofd, 0, SEEK_CUR);
	EXPECT(r, r->cursor >= 0, "lseek(oracle): %s", strerror(errno));
}

static size_t read_whole(struct run *r, const char *path, unsigned char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	EXPECT(r, fd >= 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	EXPECT(r, fstat(fd, &st) == 0, "fstat %s: %s", path, strerror(errno));
	EXPECT(r, st.st_size >= 0 && (size_t)st.st_size <= BUFSZ,
	       "%s is %jd bytes on disk, more than the test ever writes (%zu)",
	       path, (intmax_t)st.st_size, (size_t)CAP);
	size_t got = 0;
	for (;;) {
		ssize_t n = pread(fd, buf + got, BUFSZ - got, (off_t)got);
		EXPECT(r, n >= 0, "read %s: %s", path, strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	EXPECT(r, got == (size_t)st.st_size, "%s: read %zu bytes of %jd", path, got, (intmax_t)st.st_size);
	return got;
}

/* The two files are identical, length on disk included. */
static void compare_files(struct run *r, const char *when)
{
	size_t mn = read_whole(r, r->mpath, r->mbuf);
	size_t on = read_whole(r, r->opath, r->obuf);
	EXPECT(r, mn == on, "%s: the file is %zu bytes on disk, the oracle's %zu", when, mn, on);
	if (memcmp(r->mbuf, r->obuf, mn) != 0) {
		size_t i = 0;
		while (r->mbuf[i] == r->obuf[i])
			i++;
		oracle_fail(r, __LINE__, "%s: the files differ first at byte %zu (0x%02x, oracle 0x%02x) of %zu",
		     when, i, r->mbuf[i], r->obuf[i], mn);
	}
	r->st->compares++;
}

static void count_result(struct run *r, long ret, int err)
{
	if (ret >= 0)
		r->st->ok++;
	else if (err == EBADF)
		r->st->ebadf++;
	else if (err == EINVAL)
		r->st->einval++;
	else
		r->st->other_err++;
}

/* The handle must fail with exactly err (an op the oracle is not asked). */
static void expect_modelled(struct run *r, long ret, int got, int err)
{
	EXPECT(r, ret == -1 && got == err, "expected -1 with %s (DESIGN.md), got %ld (errno %s)",
	       errname(err), ret, ret < 0 ? errname(got) : "-");
	r->st->modelled++;
	count_result(r, ret, got);
}

static void expect_same(struct run *r, long ret, int err, long oret, int oerr)
{
	EXPECT(r, ret == oret, "returned %ld (errno %s), the oracle %ld (errno %s)",
	       ret, ret < 0 ? errname(err) : "-", oret, oret < 0 ? errname(oerr) : "-");
	if (oret < 0)
		EXPECT(r, err == oerr, "failed with errno %s, the oracle with %s",
		       errname(err), errname(oerr));
	count_result(r, oret, oerr);
}

/* Bytes of the handle's buffer a read left alone must still be the canary. */
static void check_canary(struct run *r, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		EXPECT(r, r->mbuf[i] == CANARY,
		       "byte %zu of the buffer was changed, but the call returned %zu bytes", i, from);
}

/* ---- operations --------------------------------------------------------- */

static void op_read(struct run *r, bool positional)
{
	const struct op *o = &r->op;
	bool rd = readable(r->flags);
	bool overflow = positional && o->off >= 0 && o->n <= (size_t)OFF_MAX && o->off > OFF_MAX - (off_t)o->n;
	/* The error DESIGN.md's order gives, before any transfer. */
	int derr = positional && o->off < 0 ? EINVAL : !rd ? EBADF : o->n > SSIZE_MAX ? EINVAL
		: overflow ? EINVAL : o->n == 0 ? 0 : o->null_buf ? EINVAL : 0;
	/* Where a Linux descriptor answers otherwise (see the top). */
	bool deviates = positional && o->off < 0 ? false
		: rd && (o->n > SSIZE_MAX || (o->null_buf && o->n > 0 && !overflow));
	/* n larger than the buffers (an error either way, the same one for a
	 * descriptor) is not handed to the kernel: valgrind would object. */
	deviates = deviates || o->n > BUFSZ;
	size_t span = o->n < BUFSZ ? o->n : 4096;

	memset(r->mbuf, CANARY, span);
	void *mb = o->null_buf ? NULL : r->mbuf;
	errno = 0;
	ssize_t ret = positional ? mmapfile_readat(r->f, mb, o->n, o->off) : mmapfile_read(r->f, mb, o->n);
	int err = errno;
	if (deviates) {
		expect_modelled(r, ret, err, derr);
		check_canary(r, 0, span);
		return;
	}
	/* Here a NULL buffer makes no difference to a descriptor (n == 0, or an
	 * error before any copy), so the oracle gets a real one. */
	errno = 0;
	ssize_t oret = positional ? pread(r->ofd, r->obuf, o->n, o->off) : read(r->ofd, r->obuf, o->n);
	int oerr = errno;
	expect_same(r, ret, err, oret, oerr);
	if (ret > 0) {
		if (memcmp(r->mbuf, r->obuf, (size_t)ret) != 0) {
			size_t i = 0;
			while (r->mbuf[i] == r->obuf[i])
				i++;
			oracle_fail(r, __LINE__, "the bytes read differ from the oracle's first at byte %zu of %zd "
			     "(0x%02x, oracle 0x%02x)", i, ret, r->mbuf[i], r->obuf[i]);
		}
		r->st->bytes_read += (unsigned long)ret;
	}
	check_canary(r, ret > 0 ? (size_t)ret : 0, span);
}

static void op_write(struct run *r, bool positional)
{
	const struct op *o = &r->op;
	bool wr = writable(r->flags), app = appending(r->flags);
	bool overflow = positional && o->off >= 0 && o->n <= (size_t)OFF_MAX && o->off > OFF_MAX - (off_t)o->n;
	int derr = positional && o->off < 0 ? EINVAL : !wr ? EBADF : positional && app ? EINVAL
		: o->n > SSIZE_MAX ? EINVAL : overflow ? EINVAL
		: o->n == 0 ? 0 : o->null_buf ? EINVAL : 0;
	bool deviates = positional && o->off < 0 ? false
		: wr && ((positional && app) || o->n > SSIZE_MAX || (o->null_buf && o->n > 0 && !overflow));
	deviates = deviates || o->n > BUFSZ;

	if (!o->null_buf && o->n > 0 && o->n <= SSIZE_MAX && o->n <= BUFSZ)
		tu_fill(r->wbuf, o->n, o->data);
	const void *b = o->null_buf ? NULL : r->wbuf;
	errno = 0;
	ssize_t ret = positional ? mmapfile_writeat(r->f, b, o->n, o->off) : mmapfile_write(r->f, b, o->n);
	int err = errno;
	if (deviates) {
		expect_modelled(r, ret, err, derr);
		return;
	}
	errno = 0;
	ssize_t oret = positional ? pwrite(r->ofd, r->wbuf, o->n, o->off) : write(r->ofd, r->wbuf, o->n);
	int oerr = errno;
	expect_same(r, ret, err, oret, oerr);
	if (ret > 0)
		r->st->bytes_written += (unsigned long)ret;
}

static void op_seek(struct run *r)
{
	const struct op *o = &r->op;
	errno = 0;
	off_t ret = mmapfile_seek(r->f, o->off, o->whence);
	int err = errno;
	if (o->whence == SEEK_DATA || o->whence == SEEK_HOLE) {
		expect_modelled(r, (long)ret, err, EINVAL);
		return;
	}
	errno = 0;
	off_t oret = lseek(r->ofd, o->off, o->whence);
	int oerr = errno;
	expect_same(r, (long)ret, err, (long)oret, oerr);
}

static void op_truncate(struct run *r)
{
	errno = 0;
	int ret = mmapfile_truncate(r->f, r->op.off);
	int err = errno;
	errno = 0;
	int oret = ftruncate(r->ofd, r->op.off);
	int oerr = errno;
	expect_same(r, ret, err, oret, oerr);
}

static void op_size(struct run *r)
{
	errno = 0;
	off_t s = mmapfile_size(r->f);
	int err = errno;
	struct stat st;
	EXPECT(r, fstat(r->ofd, &st) == 0, "fstat(oracle): %s", strerror(errno));
	EXPECT(r, s == st.st_size, "mmapfile_size returned %jd (errno %s), the oracle's fstat %jd",
	       (intmax_t)s, s < 0 ? errname(err) : "-", (intmax_t)st.st_size);
	r->st->ok++;
}

static void op_sync(struct run *r)
{
	errno = 0;
	int ret = mmapfile_sync(r->f);
	int err = errno;
	errno = 0;
	int oret = fsync(r->ofd);
	int oerr = errno;
	expect_same(r, ret, err, oret, oerr);
	compare_files(r, "after mmapfile_sync");
}

static void count_session(struct run *r)
{
	struct stats *st = r->st;
	int acc = r->flags & O_ACCMODE;
	st->sessions++;
	if (acc == O_RDONLY)
		st->sess_rdonly++;
	else if (acc == O_WRONLY)
		st->sess_wronly++;
	else
		st->sess_rdwr++;
	if (r->flags & O_APPEND)
		st->sess_append++;
	if (r->flags & (O_SYNC | O_DSYNC))
		st->sess_sync++;
	if (r->flags & O_TRUNC)
		st->sess_trunc++;
}

static void open_both(struct run *r, int flags)
{
	r->flags = flags;
	errno = 0;
	r->f = mmapfile_open(r->mpath, flags, 0644);
	int err = errno;
	errno = 0;
	r->ofd = open(r->opath, flags, 0644);
	int oerr = errno;
	EXPECT(r, r->ofd >= 0, "the oracle's open failed: %s", strerror(oerr));
	EXPECT(r, r->f != NULL, "mmapfile_open failed with errno %s, the oracle's open succeeded",
	       errname(err));
	count_session(r);
}

static void close_both(struct run *r, const char *when)
{
	errno = 0;
	int ret = mmapfile_close(r->f);
	int err = errno;
	r->f = NULL;
	errno = 0;
	int oret = close(r->ofd);
	int oerr = errno;
	r->ofd = -1;
	expect_same(r, ret, err, oret, oerr);
	compare_files(r, when);
}

static void op_reopen(struct run *r)
{
	close_both(r, "after mmapfile_close");
	if (r->op.excl_probe) {
		int fl = (r->op.flags & ~O_TRUNC) | O_CREAT | O_EXCL;
		errno = 0;
		mmapfile_t *f = mmapfile_open(r->mpath, fl, 0644);
		int err = errno;
		errno = 0;
		int ofd = open(r->opath, fl, 0644);
		int oerr = errno;
		if (f)
			mmapfile_close(f);
		if (ofd >= 0)
			close(ofd);
		EXPECT(r, ofd < 0 && oerr == EEXIST, "the oracle's O_EXCL probe: %d (%s)", ofd, strerror(oerr));
		EXPECT(r, f == NULL && err == oerr, "mmapfile_open(%s) on an existing file: %s (errno %s), "
		       "the oracle EEXIST", flags_str(fl), f ? "succeeded" : "failed", errname(err));
		r->st->eexist++;
	}
	open_both(r, r->op.flags);
}

/* After every op: the cursor and the size agree; an O_SYNC/O_DSYNC handle
 * keeps no reserve, so its file on disk has exactly the size. */
static void after_op(struct run *r)
{
	if (r->op.kind != OP_REOPEN && chance(r, 700)) {
		errno = 0;
		off_t c = mmapfile_seek(r->f, 0, SEEK_CUR);
		int err = errno;
		off_t oc = lseek(r->ofd, 0, SEEK_CUR);
		EXPECT(r, c == oc, "afterwards the cursor is %jd (errno %s), the oracle's %jd",
		       (intmax_t)c, c < 0 ? errname(err) : "-", (intmax_t)oc);
	}
	errno = 0;
	off_t s = mmapfile_size(r->f);
	int err = errno;
	struct stat st;
	EXPECT(r, fstat(r->ofd, &st) == 0, "fstat(oracle): %s", strerror(errno));
	EXPECT(r, s == st.st_size, "afterwards mmapfile_size is %jd (errno %s), the oracle's %jd",
	       (intmax_t)s, s < 0 ? errname(err) : "-", (intmax_t)st.st_size);
	if ((r->flags & (O_SYNC | O_DSYNC)) && writable(r->flags) &&
	    (r->op.kind == OP_WRITE || r->op.kind == OP_WRITEAT || r->op.kind == OP_TRUNCATE)) {
		struct stat ms;
		EXPECT(r, stat(r->mpath, &ms) == 0, "stat %s: %s", r->mpath, strerror(errno));
		EXPECT(r, ms.st_size == st.st_size, "the %s handle's file is %jd bytes on disk, its size %jd "
		       "(O_SYNC/O_DSYNC handles keep no reserve)", flags_str(r->flags),
		       (intmax_t)ms.st_size, (intmax_t)st.st_size);
	}
}

/* ---- the driver --------------------------------------------------------- */

static void run_seed(struct run *r, uint64_t seed, long nops)
{
	r->seed = seed;
	r->idx = -1;
	r->rng = seed ^ 0x6f7261636c65ULL; /* "oracle" */
	r->op.kind = OP_SIZE;
	snprintf(r->desc, sizeof r->desc, "setup");
	unlink(r->mpath);
	unlink(r->opath);

	/* The same starting contents in both files. */
	static const size_t starts[] = { 0, 1, 4095, 4096, 4097, 8192 };
	size_t n = chance(r, 400) ? starts[rnd(r, 6)] : (size_t)rnd(r, 200000);
	tu_fill(r->wbuf, n, tu_rand(&r->rng));
	tu_write_file(r->mpath, r->wbuf, n);
	tu_write_file(r->opath, r->wbuf, n);
	open_both(r, gen_flags(r));

	for (r->idx = 0; r->idx < nops; r->idx++) {
		oracle_state(r);
		gen_op(r);
		describe(r);
		snprintf(r->hist[r->idx % HIST], sizeof r->hist[0], "%s on %s", r->desc, flags_str(r->flags));
		if (r->trace)
			fprintf(stderr, "seed %" PRIu64 " op %ld: %s\n", seed, r->idx, r->hist[r->idx % HIST]);
		switch (r->op.kind) {
		case OP_READ: op_read(r, false); break;
		case OP_WRITE: op_write(r, false); break;
		case OP_READAT: op_read(r, true); break;
		case OP_WRITEAT: op_write(r, true); break;
		case OP_SEEK: op_seek(r); break;
		case OP_TRUNCATE: op_truncate(r); break;
		case OP_SIZE: op_size(r); break;
		case OP_SYNC: op_sync(r); break;
		case OP_REOPEN: op_reopen(r); break;
		default: break;
		}
		after_op(r);
		r->st->ops[r->op.kind]++;
	}
	r->idx = nops;
	snprintf(r->desc, sizeof r->desc, "final close");
	close_both(r, "after the final mmapfile_close");
	unlink(r->mpath);
	unlink(r->opath);
}

static bool env_count(const char *name, unsigned long long *out)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	ck_assert_msg(errno == 0 && *end == '\0' && s[0] != '-', "%s=%s is not a number", name, s);
	*out = v;
	return true;
}

static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "vgpreload") != NULL;
}

/* The default number of seeds for a slow build: ASan ~2x, TSan ~10x. */
static const char *sanitizer(unsigned long long *seeds)
{
#if defined(__SANITIZE_THREAD__)
	*seeds = 20;
	return "ThreadSanitizer";
#elif defined(__SANITIZE_ADDRESS__)
	*seeds = 60;
	return "AddressSanitizer";
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	*seeds = 20;
	return "ThreadSanitizer";
#elif __has_feature(address_sanitizer)
	*seeds = 60;
	return "AddressSanitizer";
#else
	(void)seeds;
	return NULL;
#endif
#else
	(void)seeds;
	return NULL;
#endif
}

START_TEST(test_oracle)
{
	unsigned long long seeds = DEFAULT_SEEDS, ops = DEFAULT_OPS, only = 0;
	bool have_seeds = env_count("MMAPFILE_ORACLE_SEEDS", &seeds);
	env_count("MMAPFILE_ORACLE_OPS", &ops);
	bool one = env_count("MMAPFILE_ORACLE_SEED", &only);
	if (!have_seeds && !one) {
		if (under_valgrind()) {
			seeds = 10;
			printf("check_oracle: under valgrind: %llu seeds instead of %d "
			       "(set MMAPFILE_ORACLE_SEEDS to choose)\n", seeds, DEFAULT_SEEDS);
		} else {
			const char *san = sanitizer(&seeds);
			if (san)
				printf("check_oracle: %s build: %llu seeds instead of %d "
				       "(set MMAPFILE_ORACLE_SEEDS to choose)\n", san, seeds, DEFAULT_SEEDS);
		}
	}

	struct stats st;
	memset(&st, 0, sizeof st);
	struct run *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	r->st = &st;
	r->ofd = -1;
	const char *t = getenv("MMAPFILE_ORACLE_TRACE");
	r->trace = t && *t;
	snprintf(r->mpath, sizeof r->mpath, "%s", tu_path("handle.dat"));
	snprintf(r->opath, sizeof r->opath, "%s", tu_path("oracle.dat"));
	r->wbuf = malloc(BUFSZ);
	r->mbuf = malloc(BUFSZ);
	r->obuf = malloc(BUFSZ);
	ck_assert(r->wbuf && r->mbuf && r->obuf);

	unsigned long long first = one ? only : 1, last = one ? only : seeds;
	catch_crashes(r);
	for (unsigned long long s = first; s <= last && (one || seeds > 0); s++)
		run_seed(r, s, (long)ops);
	release_crashes();

	unsigned long total = 0;
	for (int k = 0; k < OP_KINDS; k++)
		total += st.ops[k];
	printf("check_oracle: %lu operations checked against the oracle (%llu seed%s x %llu ops)\n",
	       total, one ? 1ULL : seeds, (one || seeds == 1) ? "" : "s", ops);
	printf("  by kind:");
	for (int k = 0; k < OP_KINDS; k++)
		printf(" %s %lu", kind_name[k], st.ops[k]);
	printf("\n  results: %lu ok, %lu EBADF, %lu EINVAL, %lu EEXIST probes, %lu other errors; "
	       "%lu held to DESIGN.md where a descriptor differs\n",
	       st.ok, st.ebadf, st.einval, st.eexist, st.other_err, st.modelled);
	printf("  %lu bytes read, %lu written; %lu whole-file comparisons; %lu sessions "
	       "(%lu O_RDONLY, %lu O_WRONLY, %lu O_RDWR; %lu O_APPEND, %lu O_SYNC/O_DSYNC, %lu O_TRUNC)\n",
	       st.bytes_read, st.bytes_written, st.compares, st.sessions, st.sess_rdonly,
	       st.sess_wronly, st.sess_rdwr, st.sess_append, st.sess_sync, st.sess_trunc);
	fflush(stdout);
	ck_assert_msg(total > 0 || ops == 0 || (!one && seeds == 0), "no operation was run");

	free(r->wbuf);
	free(r->mbuf);
	free(r->obuf);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("oracle");
	TCase *tc = tu_tcase("oracle", 600);
	tcase_add_test(tc, test_oracle);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
