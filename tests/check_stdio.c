/* check_stdio.c - mmapfile_fopen(3): real stdio code run through the
 * adapter, call by call against the same code on a stream that fdopen(3)
 * made from a plain descriptor of a twin file.  fdopen is the adapter's
 * precedent (the mode must suit the access mode, "w" does not truncate, the
 * stream starts at the descriptor's offset), so the two must agree on every
 * return value, on errno when a call fails, on every byte read, on the
 * error and end-of-file flags, on the handle's cursor against the
 * descriptor's offset after fflush and fclose, and at the end on both files
 * byte for byte.  Where the adapter chose differently from glibc's fdopen
 * (a stricter mode string; "a" leaves the handle's flags alone) the tests
 * check the documented rule directly. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRATCH 8192

/* Buffering both streams get, set before anything else touches them. */
struct vbuf {
	int mode;    /* -1: stdio's default */
	size_t size; /* 0: stdio allocates */
};
static const struct vbuf vbufs[] = {
	{ -1, 0 },           { _IONBF, 0 },      { _IOLBF, 0 },
	{ _IOLBF, 33 },      { _IOFBF, 1 },      { _IOFBF, 7 },
	{ _IOFBF, 100 },     { _IOFBF, 4096 },   { _IOFBF, 65539 },
};
#define NVBUFS ((int)(sizeof vbufs / sizeof vbufs[0]))

/* A stream through the adapter and its oracle. */
struct twin {
	const char *pm, *po; /* the handle's file, the oracle's */
	mmapfile_t *h;
	int fd;              /* a duplicate of the oracle stream's descriptor */
	bool same_writes;    /* the handle's own writes land where the fd's do */
	FILE *m, *o;
	char *vm, *vo;       /* setvbuf buffers */
	long long r;         /* the last SAME()'s result */
	int err;             /* and its errno through the adapter */
	_Alignas(16) char bm[SCRATCH];
	_Alignas(16) char bo[SCRATCH];
};

/* The stream mode the oracle gets: the adapter tells stdio that an
 * O_APPEND handle's writes append, whatever the mode; so is a stream over
 * a descriptor with O_APPEND opened with "a". */
static const char *oracle_mode(const char *mode, int flags)
{
	if (!(flags & O_APPEND) || (mode[0] == 'r' && !strchr(mode, '+')))
		return mode;
	return strchr(mode, '+') ? "a+" : "a";
}

static void set_vbuf(FILE *s, char **mem, const struct vbuf *vb)
{
	*mem = NULL;
	if (vb->mode < 0)
		return;
	if (vb->size > 0) {
		*mem = malloc(vb->size);
		ck_assert_ptr_nonnull(*mem);
	}
	ck_assert_int_eq(setvbuf(s, *mem, vb->mode, vb->size), 0);
}

/* Both files hold init; the handle and the descriptor open with flags (the
 * descriptor with O_APPEND too for mode "a", the rule the adapter emulates),
 * their cursors at pos; then the streams. */
static struct twin *twin_open(const void *init, size_t n, int flags, const char *mode, off_t pos,
                              const struct vbuf *vb)
{
	struct twin *t = calloc(1, sizeof *t);
	ck_assert_ptr_nonnull(t);
	t->pm = tu_path("m");
	t->po = tu_path("o");
	tu_write_file(t->pm, init, n);
	tu_write_file(t->po, init, n);
	t->h = mmapfile_open(t->pm, flags, 0);
	ck_assert_ptr_nonnull(t->h);
	int ofl = flags | (mode[0] == 'a' ? O_APPEND : 0);
	t->same_writes = ofl == flags;
	int fd = open(t->po, ofl | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mmapfile_seek(t->h, pos, SEEK_SET), pos);
	ck_assert_int_eq(lseek(fd, pos, SEEK_SET), pos);
	t->fd = dup(fd);
	ck_assert_int_ge(t->fd, 0);
	t->m = mmapfile_fopen(t->h, mode);
	ck_assert_msg(t->m != NULL, "mmapfile_fopen(%s): %s", mode, strerror(errno));
	t->o = fdopen(fd, oracle_mode(mode, ofl));
	ck_assert_ptr_nonnull(t->o);
	set_vbuf(t->m, &t->vm, vb);
	set_vbuf(t->o, &t->vo, vb);
	return t;
}

/* Which case of a test that runs several is running, for the messages of
 * SAME() and READS() (the tests loop over their cases in one process: a
 * process per case costs too much under valgrind). */
static int ctx = -1;

static void same(struct twin *t, const char *what, int line, long long rm, int em, long long ro,
                 int eo, bool newerr)
{
	t->r = rm;
	t->err = em;
	ck_assert_msg(rm == ro, "[case %d] line %d: %s: %lld through the adapter, %lld through fdopen",
	              ctx, line, what, rm, ro);
	if (rm == -1 || newerr)
		ck_assert_msg(em == eo,
		              "[case %d] line %d: %s: errno %s through the adapter, %s through fdopen",
		              ctx, line, what, strerror(em), strerror(eo));
	ck_assert_msg(!feof(t->m) == !feof(t->o), "[case %d] line %d: %s: eof %d vs %d", ctx, line,
	              what, feof(t->m), feof(t->o));
	ck_assert_msg(!ferror(t->m) == !ferror(t->o), "[case %d] line %d: %s: error %d vs %d", ctx,
	              line, what, ferror(t->m), ferror(t->o));
}

/* Evaluate expr with s (the stream) and b (its scratch buffer) bound to
 * each side in turn, then compare. */
#define SAME(t, expr)                                                                     \
	do {                                                                              \
		struct twin *t_ = (t);                                                    \
		FILE *s = t_->m;                                                          \
		char *b = t_->bm;                                                         \
		int fm_ = ferror(s);                                                      \
		errno = 0;                                                                \
		long long rm_ = (long long)(expr);                                        \
		int em_ = errno;                                                          \
		bool nm_ = !fm_ && ferror(s);                                             \
		s = t_->o;                                                                \
		b = t_->bo;                                                               \
		int fo_ = ferror(s);                                                      \
		errno = 0;                                                                \
		long long ro_ = (long long)(expr);                                        \
		int eo_ = errno;                                                          \
		bool no_ = !fo_ && ferror(s);                                             \
		(void)b;                                                                  \
		same(t_, #expr, __LINE__, rm_, em_, ro_, eo_, nm_ || no_);                \
	} while (0)

/* The same, for a call that reads into b: then compare the first len
 * bytes of the two buffers (len may use t->r, the result). */
#define READS(t, expr, len)                                                               \
	do {                                                                              \
		SAME(t, expr);                                                            \
		size_t len_ = (len);                                                      \
		ck_assert_msg(len_ <= SCRATCH && memcmp((t)->bm, (t)->bo, len_) == 0,     \
		              "[case %d] line %d: %s: different bytes read", ctx,         \
		              __LINE__, #expr);                                           \
	} while (0)

/* For the void stdio calls. */
#define VOID(call) ((call), 0)

/* After fflush (which leaves the descriptor at the stream's position, for
 * input too) the handle's cursor is the descriptor's offset. */
static void same_cursor(struct twin *t, int line)
{
	off_t cm = mmapfile_seek(t->h, 0, SEEK_CUR), co = lseek(t->fd, 0, SEEK_CUR);
	ck_assert_msg(cm == co, "[case %d] line %d: cursor %lld, descriptor at %lld", ctx, line,
	              (long long)cm, (long long)co);
}

static bool readable_flags(int flags)
{
	return (flags & O_ACCMODE) != O_WRONLY;
}

/* The handle after its stream: its cursor is the descriptor's, it reads the
 * same bytes, and (where the two write alike) writes the same; then both
 * files are the same. */
static void twin_rest(struct twin *t, int flags)
{
	same_cursor(t, __LINE__);
	if (readable_flags(flags)) {
		ck_assert_int_eq(mmapfile_seek(t->h, 0, SEEK_SET), 0);
		ck_assert_int_eq(lseek(t->fd, 0, SEEK_SET), 0);
		ssize_t rm, ro;
		do {
			rm = mmapfile_read(t->h, t->bm, 1000);
			ro = read(t->fd, t->bo, 1000);
			ck_assert_int_eq(rm, ro);
			ck_assert_int_ge(rm, 0);
			ck_assert_mem_eq(t->bm, t->bo, (size_t)rm);
		} while (rm > 0);
	}
	if (t->same_writes && (flags & O_ACCMODE) != O_RDONLY) {
		ck_assert_int_eq(mmapfile_write(t->h, "<after fclose>", 14), 14);
		ck_assert_int_eq(write(t->fd, "<after fclose>", 14), 14);
	}
	ck_assert_int_eq(mmapfile_close(t->h), 0);
	ck_assert_int_eq(close(t->fd), 0);
	size_t nm, no;
	unsigned char *dm = tu_read_file(t->pm, &nm), *do_ = tu_read_file(t->po, &no);
	ck_assert_uint_eq(nm, no);
	ck_assert_mem_eq(dm, do_, nm);
	free(dm);
	free(do_);
	free(t);
}

static void twin_close_streams(struct twin *t)
{
	ck_assert_int_eq(fclose(t->m), fclose(t->o));
	free(t->vm);
	free(t->vo);
}

/* After fflush, fclose leaves the cursor alone; without it, where it is
 * depends on how far stdio read ahead (test_after_fclose).  No pushback may
 * be pending (glibc's fflush does not discard it). */
static void twin_finish(struct twin *t, int flags)
{
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	twin_close_streams(t);
	twin_rest(t, flags);
}

/* Printable text with some newlines. */
static void make_text(char *buf, size_t n, uint64_t seed)
{
	uint64_t st = seed;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = tu_rand(&st);
		buf[i] = v % 23 == 0 ? '\n' : (char)(' ' + v % 95);
	}
}

#define LINES_OUT 600 /* more than any buffer but the largest holds */

static const char *const words[] = { "alpha", "", "gamma delta", "e", "zeta-eta-theta",
	                             "iota", "kappa\tlambda" };

static void fprintf_fgets(int _i)
{
	struct twin *t = twin_open("", 0, O_RDWR, "w+", 0, &vbufs[_i]);
	for (int i = 0; i < LINES_OUT; i++)
		SAME(t, fprintf(s, "%5d|%-12s|%+.6e|%#llx|%c\n", i, words[i % 7],
		                i * 3.14159 / (i + 1), (unsigned long long)i * i * 977, 'A' + i % 26));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	SAME(t, VOID(rewind(s)));
	/* fgets with a buffer shorter than some lines. */
	int lines = 0;
	do {
		READS(t, fgets(b, 37, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
		lines += t->r && strchr(t->bm, '\n') != NULL;
	} while (t->r);
	ck_assert_int_eq(lines, LINES_OUT);
	ck_assert(feof(t->m));
	SAME(t, VOID(clearerr(s)));
	/* Read the numbers back with fscanf. */
	SAME(t, fseeko(s, 0, SEEK_SET));
	for (int i = 0; i < LINES_OUT; i++) {
		READS(t,
		      fscanf(s, "%d|%*[^|]|%le|%llx|%c\n", (int *)b, (double *)(b + 8),
		             (unsigned long long *)(b + 16), b + 24),
		      25);
		ck_assert_int_eq(t->r, 4);
		int got;
		memcpy(&got, t->bm, sizeof got);
		ck_assert_int_eq(got, i);
	}
	READS(t, fscanf(s, "%d", (int *)b), t->r == 1 ? sizeof(int) : 0);
	ck_assert_int_eq(t->r, EOF);
	/* Lines after a seek into the middle, then more writing. */
	SAME(t, fseeko(s, -100, SEEK_END));
	READS(t, fgets(b, 200, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
	SAME(t, fseeko(s, 0, SEEK_CUR));
	SAME(t, fprintf(s, "tail %s %d\n", "line", 42));
	SAME(t, ftello(s));
	twin_finish(t, O_RDWR);
}

START_TEST(test_fprintf_fgets)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		fprintf_fgets(ctx);
	ctx = -1;
}
END_TEST

/* Records of odd sizes: written one by one and in batches, read at random
 * with every kind of seek, overwritten in place, read short at the end. */
static void records(int _i)
{
	static const size_t sizes[] = { 1, 7, 13, 61, 509, 4099 };
	const size_t rs = sizes[_i % 6];
	const int nrec = (int)(60000 / rs < 300 ? 60000 / rs : 300);
	char *rec = malloc(rs * 4);
	ck_assert_ptr_nonnull(rec);
	struct twin *t = twin_open("", 0, O_RDWR, "w+", 0, &vbufs[_i % NVBUFS]);
	uint64_t st = 1000 + (uint64_t)_i;
	for (int i = 0; i < nrec;) {
		int k = (int)(tu_rand(&st) % 4) + 1;
		if (k > nrec - i)
			k = nrec - i;
		tu_fill(rec, rs * (size_t)k, tu_rand(&st));
		SAME(t, fwrite(rec, rs, (size_t)k, s));
		ck_assert_int_eq(t->r, k);
		i += k;
	}
	SAME(t, ftello(s));
	ck_assert_int_eq(t->r, (long long)rs * nrec);
	for (int j = 0; j < 150; j++) {
		int r = (int)(tu_rand(&st) % (uint64_t)nrec);
		switch (tu_rand(&st) % 5) {
		case 0:
			SAME(t, fseeko(s, (off_t)rs * r, SEEK_SET));
			READS(t, fread(b, rs, 1, s), (size_t)t->r * rs);
			break;
		case 1: /* back over two records */
			SAME(t, fseeko(s, -2 * (off_t)rs, SEEK_CUR));
			READS(t, fread(b, rs, 2 * rs <= SCRATCH ? 2 : 1, s), (size_t)t->r * rs);
			break;
		case 2: /* from the end: a short count and end of file */
			SAME(t, fseeko(s, -(off_t)rs * (r % 5 + 1), SEEK_END));
			READS(t, fread(b, rs, SCRATCH / rs < 6 ? SCRATCH / rs : 6, s),
			      (size_t)t->r * rs);
			SAME(t, VOID(clearerr(s)));
			break;
		case 3: /* overwrite, then read the next one */
			tu_fill(rec, rs, tu_rand(&st));
			SAME(t, fseeko(s, (off_t)rs * r, SEEK_SET));
			SAME(t, fwrite(rec, rs, 1, s));
			SAME(t, fseeko(s, 0, SEEK_CUR));
			READS(t, fread(b, rs, 1, s), (size_t)t->r * rs);
			break;
		default:
			SAME(t, ftello(s));
			break;
		}
	}
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	free(rec);
	twin_finish(t, O_RDWR);
}

START_TEST(test_records)
{
	for (ctx = 0; ctx < 12; ctx++)
		records(ctx);
	ctx = -1;
}
END_TEST

/* Seeks of every kind and their edges. */
static void seek_tell(int _i)
{
	char text[3000];
	make_text(text, sizeof text, 7);
	struct twin *t = twin_open(text, sizeof text, O_RDWR, "r+", 0, &vbufs[_i]);
	SAME(t, ftello(s));
	SAME(t, fseeko(s, 1234, SEEK_SET));
	SAME(t, fgetc(s));
	SAME(t, ftello(s));
	SAME(t, fseeko(s, -34, SEEK_CUR));
	READS(t, fread(b, 1, 100, s), (size_t)t->r);
	SAME(t, fseeko(s, -1, SEEK_END));
	SAME(t, fgetc(s));
	SAME(t, fgetc(s)); /* end of file */
	SAME(t, fseeko(s, -5000, SEEK_END)); /* before the start: EINVAL */
	SAME(t, ftello(s));
	SAME(t, fseeko(s, -1, SEEK_SET));
	SAME(t, fseeko(s, -100000, SEEK_CUR));
	SAME(t, fseek(s, 17, 42)); /* whence */
	/* Past the end: a write leaves a gap of zeros, read back through the stream. */
	SAME(t, fseeko(s, 5000, SEEK_END));
	SAME(t, ftello(s));
	SAME(t, fputs("after the gap", s));
	SAME(t, fseeko(s, 2990, SEEK_SET));
	READS(t, fread(b, 1, SCRATCH, s), (size_t)t->r);
	ck_assert_int_eq(t->r, 3000 - 2990 + 5000 + 13);
	ck_assert(t->bm[20] == 0 && t->bm[5009] == 0);
	SAME(t, VOID(rewind(s)));
	SAME(t, ftello(s));
	SAME(t, fseeko(s, 10, SEEK_END));
	SAME(t, fgetc(s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	twin_finish(t, O_RDWR);
}

START_TEST(test_seek_tell)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		seek_tell(ctx);
	ctx = -1;
}
END_TEST

static void ungetc_case(int _i)
{
	char text[500];
	make_text(text, sizeof text, 11);
	struct twin *t = twin_open(text, sizeof text, O_RDWR, "r+", 0, &vbufs[_i]);
	SAME(t, fgetc(s));
	SAME(t, fgetc(s));
	SAME(t, ungetc('#', s)); /* a different character: the file keeps its own */
	SAME(t, ftello(s));
	SAME(t, fgetc(s));
	ck_assert_int_eq(t->r, '#');
	SAME(t, fgetc(s));
	SAME(t, ungetc((unsigned char)text[2], s));
	READS(t, fread(b, 1, 10, s), (size_t)t->r);
	SAME(t, ungetc('x', s));
	SAME(t, fseeko(s, 0, SEEK_CUR)); /* positioning forgets the pushback */
	SAME(t, fgetc(s));
	SAME(t, ungetc(EOF, s));
	/* At the end: ungetc clears the end-of-file flag. */
	SAME(t, fseeko(s, 0, SEEK_END));
	SAME(t, fgetc(s));
	SAME(t, ungetc('z', s));
	SAME(t, fgetc(s));
	SAME(t, fgetc(s));
	/* Write after pushback and a seek. */
	SAME(t, fseeko(s, 3, SEEK_SET));
	SAME(t, fgetc(s));
	SAME(t, ungetc('q', s));
	SAME(t, fseeko(s, 0, SEEK_CUR));
	SAME(t, fputs("written", s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	twin_finish(t, O_RDWR);
}

START_TEST(test_ungetc)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		ungetc_case(ctx);
	ctx = -1;
}
END_TEST

/* Reading after writing and writing after reading, with the fflush or
 * seek C requires between them, and the handle used directly in between
 * (after fflush, as with a descriptor and its stream). */
static void switching_and_mixing(int _i)
{
	char text[6000];
	make_text(text, sizeof text, 13);
	struct twin *t = twin_open(text, sizeof text, O_RDWR, "r+", 0, &vbufs[_i]);
	SAME(t, fgetc(s));
	SAME(t, fgetc(s));
	SAME(t, fgetc(s));
	/* fflush leaves the cursor at the stream's position (3), not where
	 * stdio read ahead to. */
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	ck_assert_int_eq(mmapfile_seek(t->h, 0, SEEK_CUR), 3);
	SAME(t, fputs("abc", s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	char got[3];
	ck_assert_int_eq(mmapfile_readat(t->h, got, 3, 3), 3);
	ck_assert_mem_eq(got, "abc", 3);
	/* The handle, then the stream again. */
	ck_assert_int_eq(mmapfile_write(t->h, "ZZ", 2), 2);
	ck_assert_int_eq(write(t->fd, "ZZ", 2), 2);
	SAME(t, fgetc(s));
	SAME(t, ftello(s));
	ck_assert_int_eq(t->r, 9);
	SAME(t, fseeko(s, 100, SEEK_SET));
	READS(t, fgets(b, 50, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
	SAME(t, fseeko(s, 0, SEEK_CUR));
	SAME(t, fprintf(s, "%08d", 12345678));
	SAME(t, fseeko(s, -8, SEEK_CUR));
	READS(t, fread(b, 1, 8, s), (size_t)t->r);
	ck_assert_mem_eq(t->bm, "12345678", 8);
	SAME(t, fseeko(s, 0, SEEK_END));
	SAME(t, fwrite(text, 1, 3000, s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	ck_assert_int_eq(mmapfile_seek(t->h, 5000, SEEK_SET), 5000);
	ck_assert_int_eq(lseek(t->fd, 5000, SEEK_SET), 5000);
	READS(t, fread(b, 1, 100, s), (size_t)t->r);
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	twin_finish(t, O_RDWR);
}

START_TEST(test_switching_and_mixing)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		switching_and_mixing(ctx);
	ctx = -1;
}
END_TEST

/* fdopen's rule: "w" and "w+" do not truncate, and the stream starts at
 * the cursor. */
START_TEST(test_no_truncation_starts_at_cursor)
{
	static const char *const modes[] = { "w", "w+", "r+", "r" };
	const char *mode = modes[_i];
	int flags = mode[0] == 'r' && !mode[1] ? O_RDONLY : mode[1] ? O_RDWR : O_WRONLY;
	char text[1000];
	make_text(text, sizeof text, 17);
	struct twin *t = twin_open(text, sizeof text, flags, mode, 100, &vbufs[0]);
	SAME(t, ftello(s));
	ck_assert_int_eq(t->r, 100);
	SAME(t, fputs("XY", s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	SAME(t, fgetc(s));
	twin_finish(t, flags);
	/* Not truncated; only a readable handle reads to the end before
	 * twin_rest() writes its 14 bytes. */
	ck_assert_int_eq(tu_file_size(tu_path("m")), 1000 + (flags == O_RDWR) * 14);
}
END_TEST

/* "a" and "a+": every write lands at the end whatever the position; "a+"
 * reads anywhere.  On a handle without O_APPEND (the adapter appends) and
 * on one with it, write-only and read-write. */
static void append_modes(int _i)
{
	static const struct { int flags; const char *mode; } cases[] = {
		{ O_RDWR, "a" },   { O_RDWR, "a+" },   { O_WRONLY, "a" },
		{ O_RDWR | O_APPEND, "a" }, { O_RDWR | O_APPEND, "a+" }, { O_WRONLY | O_APPEND, "a" },
		{ O_RDWR | O_APPEND, "w" }, { O_RDWR | O_APPEND, "r+" }, { O_WRONLY | O_APPEND, "w" },
	};
	const int c = _i % 9;
	const int flags = cases[c].flags;
	const char *mode = cases[c].mode;
	bool rd = strchr(mode, '+') != NULL;
	char text[700];
	make_text(text, sizeof text, 19);
	struct twin *t = twin_open(text, sizeof text, flags, mode, 0, &vbufs[_i / 9]);
	SAME(t, fputs("first\n", s));
	SAME(t, ftello(s));
	SAME(t, fseeko(s, 10, SEEK_SET));
	SAME(t, fputs("second\n", s));
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	SAME(t, ftello(s));
	ck_assert_int_eq(t->r, 700 + 13);
	if (rd) {
		SAME(t, fseeko(s, 5, SEEK_SET));
		READS(t, fread(b, 1, 20, s), (size_t)t->r);
		ck_assert_mem_eq(t->bm, text + 5, 20);
		SAME(t, fseeko(s, 0, SEEK_CUR));
	}
	SAME(t, fprintf(s, "third %d\n", 3));
	SAME(t, ftello(s));
	if (rd) {
		SAME(t, fseeko(s, -8, SEEK_END));
		READS(t, fread(b, 1, 100, s), (size_t)t->r);
		ck_assert_int_eq(t->r, 8);
		ck_assert_mem_eq(t->bm, "third 3\n", 8);
	}
	SAME(t, fflush(s));
	same_cursor(t, __LINE__);
	twin_finish(t, flags);
	size_t n;
	unsigned char *d = tu_read_file(tu_path("m"), &n);
	ck_assert_uint_ge(n, 700 + 21);
	ck_assert_mem_eq(d, text, 700);
	ck_assert_mem_eq(d + 700, "first\nsecond\nthird 3\n", 21);
	free(d);
}

START_TEST(test_append_modes)
{
	for (ctx = 0; ctx < 18; ctx++)
		append_modes(ctx);
	ctx = -1;
}
END_TEST

/* "a" on a handle without O_APPEND changes nothing about the handle (glibc's
 * fdopen would set O_APPEND on the descriptor): after the stream, its own
 * writes land at the cursor again and writeat still works. */
START_TEST(test_append_leaves_handle)
{
	const char *p = tu_path("f");
	tu_write_file(p, "0123456789", 10);
	mmapfile_t *h = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(h);
	FILE *s = mmapfile_fopen(h, "a");
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(ftello(s), 0); /* it starts at the cursor */
	ck_assert_int_ge(fputs("AB", s), 0);
	ck_assert_int_eq(ftello(s), 12);
	ck_assert_int_eq(fclose(s), 0);
	/* As after a write(2) with O_APPEND: the cursor after what it wrote. */
	ck_assert_int_eq(mmapfile_seek(h, 0, SEEK_CUR), 12);
	ck_assert_int_eq(mmapfile_seek(h, 0, SEEK_SET), 0);
	ck_assert_int_eq(mmapfile_write(h, "x", 1), 1);
	ck_assert_int_eq(mmapfile_writeat(h, "y", 1, 5), 1);
	ck_assert_int_eq(mmapfile_close(h), 0);
	size_t n;
	unsigned char *d = tu_read_file(p, &n);
	ck_assert_uint_eq(n, 12);
	ck_assert_mem_eq(d, "x1234y6789AB", 12);
	free(d);
}
END_TEST

/* Appends land after what another writer appended, as O_APPEND writes do:
 * the adapter appends at the file's end, not at a position it remembered. */
START_TEST(test_append_after_other_writer)
{
	static const struct { int flags; const char *mode; } cases[] = {
		{ O_RDWR, "a" }, { O_RDWR | O_APPEND, "w" }, { O_WRONLY, "a" },
	};
	const char *p = tu_path("f");
	tu_write_file(p, "start\n", 6);
	mmapfile_t *h = mmapfile_open(p, cases[_i].flags, 0);
	ck_assert_ptr_nonnull(h);
	FILE *s = mmapfile_fopen(h, cases[_i].mode);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_ge(fputs("one\n", s), 0);
	ck_assert_int_eq(fflush(s), 0);
	/* Trim the reserve, so that the other writer's O_APPEND lands at the
	 * handle's end (a reserve would take it past the zeros: DESIGN.md). */
	ck_assert_int_eq(mmapfile_sync(h), 0);
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "two\n", 4), 4);
	close(fd);
	ck_assert_int_ge(fputs("three\n", s), 0);
	ck_assert_int_eq(fclose(s), 0);
	ck_assert_int_eq(mmapfile_close(h), 0);
	size_t n;
	unsigned char *d = tu_read_file(p, &n);
	ck_assert_uint_eq(n, 20);
	ck_assert_mem_eq(d, "start\none\ntwo\nthree\n", 20);
	free(d);
}
END_TEST

/* fclose does not close the handle, and it leaves the cursor where stdio
 * last moved it (for input: where it read ahead to, as with a descriptor);
 * fflush first puts it at the stream's position. */
static void after_fclose(int _i)
{
	char text[9000];
	make_text(text, sizeof text, 23);
	const struct vbuf *vb = &vbufs[_i];
	for (int flush = 0; flush < 2; flush++) {
		struct twin *t = twin_open(text, sizeof text, O_RDONLY, "r", 0, vb);
		for (int k = 0; k < 5; k++)
			SAME(t, fgetc(s));
		if (flush) {
			SAME(t, fflush(s));
			ck_assert_int_eq(mmapfile_seek(t->h, 0, SEEK_CUR), 5);
		}
		twin_close_streams(t);
		off_t cur = mmapfile_seek(t->h, 0, SEEK_CUR);
		if (flush)
			ck_assert_int_eq(cur, 5);
		/* Unflushed, the cursor is where stdio read ahead to: the
		 * descriptor's offset when both streams have buffers of one
		 * size (stdio's default differs: BUFSIZ here, st_blksize there). */
		else if (vb->mode == _IONBF || vb->size > 0)
			same_cursor(t, __LINE__);
		else {
			ck_assert(cur > 5 && cur <= (off_t)sizeof text);
			ck_assert_int_eq(lseek(t->fd, cur, SEEK_SET), cur);
		}
		twin_rest(t, O_RDONLY);
	}
	/* A stream written, closed, and the handle goes on. */
	const char *p = tu_path("f");
	mmapfile_t *h = mmapfile_create(p, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(h);
	FILE *s = mmapfile_fopen(h, "w+");
	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 100; i++)
		ck_assert_int_gt(fprintf(s, "line %d\n", i), 0);
	ck_assert_int_eq(fclose(s), 0);
	off_t end = mmapfile_size(h);
	ck_assert_int_eq(mmapfile_seek(h, 0, SEEK_CUR), end);
	ck_assert_int_eq(mmapfile_write(h, "more\n", 5), 5);
	char buf[16];
	ck_assert_int_eq(mmapfile_readat(h, buf, 7, 0), 7);
	ck_assert_mem_eq(buf, "line 0\n", 7);
	ck_assert_int_eq(mmapfile_seek(h, -5, SEEK_END), end);
	ck_assert_int_eq(mmapfile_read(h, buf, sizeof buf), 5);
	ck_assert_mem_eq(buf, "more\n", 5);
	/* And a second stream over it. */
	ck_assert_int_eq(mmapfile_seek(h, 0, SEEK_SET), 0);
	s = mmapfile_fopen(h, "r");
	ck_assert_ptr_nonnull(s);
	int lines = 0;
	while (fgets(buf, sizeof buf, s))
		lines++;
	ck_assert_int_eq(lines, 101);
	ck_assert_int_eq(fclose(s), 0);
	ck_assert_int_eq(mmapfile_close(h), 0);
}

START_TEST(test_after_fclose)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		after_fclose(ctx);
	ctx = -1;
}
END_TEST

/* The largest offset this file system lets a descriptor seek to. */
static off_t max_offset(int fd)
{
	off_t save = lseek(fd, 0, SEEK_CUR), lo = 0, hi = INT64_MAX;
	while (lo < hi) {
		off_t mid = lo + (hi - lo) / 2 + 1;
		if (lseek(fd, mid, SEEK_SET) == mid)
			lo = mid;
		else
			hi = mid - 1;
	}
	ck_assert_int_eq(lseek(fd, save, SEEK_SET), save);
	return lo;
}

/* Errors: the stream's, and the handle's through the stream. */
static void stream_errors(int _i)
{
	const struct vbuf *vb = &vbufs[_i];
	char text[100];
	make_text(text, sizeof text, 29);
	/* Writing a read-only handle's "r" stream. */
	struct twin *t = twin_open(text, sizeof text, O_RDONLY, "r", 0, vb);
	SAME(t, fputs("x", s));
	ck_assert_int_eq(t->r, EOF);
	ck_assert_int_eq(t->err, EBADF);
	ck_assert(ferror(t->m));
	SAME(t, fprintf(s, "%d", 5));
	ck_assert_int_lt(t->r, 0);
	SAME(t, VOID(clearerr(s)));
	SAME(t, fgetc(s));
	SAME(t, fputc('y', s));
	twin_finish(t, O_RDONLY);
	/* Reading a write-only one's "w" stream. */
	t = twin_open(text, sizeof text, O_WRONLY, "w", 0, vb);
	SAME(t, fgetc(s));
	ck_assert_int_eq(t->r, EOF);
	ck_assert_int_eq(t->err, EBADF);
	ck_assert(ferror(t->m));
	READS(t, fread(b, 1, 10, s), (size_t)t->r);
	SAME(t, fputs("ok", s));
	twin_finish(t, O_WRONLY);
	/* A write the handle refuses: past the largest file (EFBIG); the
	 * stream reports it and goes on after clearerr. */
	t = twin_open(text, sizeof text, O_RDWR, "r+", 0, vb);
	off_t max = max_offset(t->fd);
	SAME(t, fseeko(s, max, SEEK_SET));
	ck_assert_int_eq(t->r, 0);
	SAME(t, fputs("hello", s));
	long long put = t->r;
	int put_err = t->err;
	SAME(t, fflush(s)); /* the write fails in fputs or here, by the buffering */
	ck_assert(put == EOF || t->r == EOF);
	ck_assert_int_eq(put == EOF ? put_err : t->err, EFBIG);
	ck_assert(ferror(t->m));
	SAME(t, VOID(clearerr(s)));
	SAME(t, fseeko(s, 0, SEEK_SET));
	READS(t, fread(b, 1, 50, s), (size_t)t->r);
	ck_assert_int_eq(t->r, 50);
	twin_finish(t, O_RDWR);
	ck_assert_int_eq(tu_file_size(tu_path("m")), 100 + 14);
}

START_TEST(test_stream_errors)
{
	for (ctx = 0; ctx < NVBUFS; ctx++)
		stream_errors(ctx);
	ctx = -1;
}
END_TEST

/* Which modes each access mode allows: fdopen's answers. */
START_TEST(test_modes_like_fdopen)
{
	static const int accs[] = { O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_APPEND };
	static const char *const modes[] = { "r", "r+", "w", "w+", "a", "a+", "rb", "r+b", "rb+",
		                             "wb", "w+b", "ab", "a+b", "re", "we", "ae", "wx", "r+e",
		                             "a+x", "rbe" };
	const char *p = tu_path("f");
	tu_write_file(p, "data", 4);
	for (size_t a = 0; a < sizeof accs / sizeof accs[0]; a++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			mmapfile_t *h = mmapfile_open(p, accs[a], 0);
			ck_assert_ptr_nonnull(h);
			int fd = open(p, accs[a] | O_CLOEXEC);
			ck_assert_int_ge(fd, 0);
			errno = 0;
			FILE *sm = mmapfile_fopen(h, modes[m]);
			int em = errno;
			errno = 0;
			FILE *so = fdopen(fd, modes[m]);
			int eo = errno;
			ck_assert_msg(!sm == !so, "flags %#o mode %s: adapter %p, fdopen %p", accs[a],
			              modes[m], (void *)sm, (void *)so);
			if (!sm) {
				ck_assert_int_eq(em, EINVAL);
				ck_assert_int_eq(eo, EINVAL);
				close(fd);
			} else {
				ck_assert_int_eq(fclose(sm), 0);
				ck_assert_int_eq(fclose(so), 0);
			}
			ck_assert_int_eq(mmapfile_close(h), 0);
		}
	}
}
END_TEST

/* Arguments fdopen would take or ignore that the adapter refuses. */
START_TEST(test_bad_arguments)
{
	static const char *const bad[] = { "", "rw", "rt", "q", "+r", "r+q", "w,ccs=UTF-8", " r",
		                           "R", "wr" };
	const char *p = tu_path("f");
	tu_write_file(p, "data", 4);
	mmapfile_t *h = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(h);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		ck_assert_msg(mmapfile_fopen(h, bad[i]) == NULL, "mode \"%s\" accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	errno = 0;
	ck_assert_ptr_null(mmapfile_fopen(h, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(mmapfile_fopen(NULL, "r"));
	ck_assert_int_eq(errno, EINVAL);
	/* The handle is untouched by the refusals. */
	char buf[4];
	ck_assert_int_eq(mmapfile_read(h, buf, 4), 4);
	ck_assert_mem_eq(buf, "data", 4);
	ck_assert_int_eq(mmapfile_close(h), 0);
}
END_TEST

/* The end-of-file indicator stays set after the file grows, until
 * clearerr; then the stream reads what another process added. */
START_TEST(test_eof_then_growth)
{
	struct twin *t = twin_open("first\n", 6, O_RDONLY, "r", 0, &vbufs[_i]);
	READS(t, fgets(b, 100, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
	SAME(t, fgetc(s));
	ck_assert_int_eq(t->r, EOF);
	ck_assert(feof(t->m));
	const char *paths[] = { t->pm, t->po };
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_WRONLY | O_APPEND | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "second\n", 7), 7);
		close(fd);
	}
	SAME(t, fgetc(s));
	ck_assert_int_eq(t->r, EOF);
	SAME(t, VOID(clearerr(s)));
	READS(t, fgets(b, 100, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
	ck_assert_str_eq(t->bm, "second\n");
	twin_finish(t, O_RDONLY);
}
END_TEST

/* The random walk: a seeded sequence of stdio calls (MMAPFILE_STDIO_OPS of
 * them, 400 by default), with the seek C requires when the direction
 * changes, and the handle's own calls after an fflush. */
static const struct { int flags; const char *mode; } walk_cases[] = {
	{ O_RDWR, "r+" },          { O_RDWR, "w+" },   { O_RDWR, "a+" },
	{ O_RDWR | O_APPEND, "r+" }, { O_RDONLY, "r" }, { O_WRONLY, "w" },
	{ O_WRONLY, "a" },
};
#define NWALK ((int)(sizeof walk_cases / sizeof walk_cases[0]))

enum dir { NEUTRAL, READING, WRITING };

static void random_walk(int _i)
{
	const int flags = walk_cases[_i % NWALK].flags;
	const char *mode = walk_cases[_i % NWALK].mode;
	const struct vbuf *vb = &vbufs[_i % NVBUFS];
	uint64_t st = 0x5eed0000u + (uint64_t)_i;
	size_t len = (size_t)(tu_rand(&st) % 5000);
	char *text = malloc(len + 1), pool[4096], data[600];
	ck_assert_ptr_nonnull(text);
	make_text(text, len, tu_rand(&st));
	make_text(pool, sizeof pool, tu_rand(&st));
	off_t start = len ? (off_t)(tu_rand(&st) % len) : 0;
	struct twin *t = twin_open(text, len, flags, mode, start, vb);
	free(text);
	enum dir dir = NEUTRAL;
	bool last_got_char = false;
	bool pushed = false; /* ungetc since the last seek */
	const char *env = getenv("MMAPFILE_STDIO_OPS");
	const int nops = env && atoi(env) > 0 ? atoi(env) : 400;
	for (int op = 0; op < nops; op++) {
		uint64_t v = tu_rand(&st);
		int kind = (int)(v % 20);
		size_t n = (size_t)(v >> 8) % 300;
		bool writes = kind <= 4, reads = kind >= 5 && kind <= 9;
		/* C's rule for changing direction: a seek between.  And before
		 * fflush with pushback pending: glibc's fflush keeps the pushback
		 * and leaves the descriptor where its read-ahead says (POSIX would
		 * discard it), which depends on the buffer's size. */
		if (((writes && dir == READING) || (reads && dir == WRITING)) ||
		    ((kind == 14 || kind == 15) && pushed)) {
			SAME(t, fseeko(s, 0, SEEK_CUR));
			dir = NEUTRAL;
			pushed = false;
		}
		if (writes)
			dir = WRITING;
		if (reads)
			dir = READING;
		memcpy(data, pool + v % (sizeof pool - sizeof data), sizeof data - 1);
		data[sizeof data - 1] = '\0';
		bool got_char = false;
		switch (kind) {
		case 0:
			SAME(t, fprintf(s, "%d:%.*s|%x %g\n", op, (int)(n % 40), data, (unsigned)v,
			                (double)n / 7));
			break;
		case 1:
			data[n] = '\0';
			SAME(t, fputs(data, s));
			break;
		case 2:
			SAME(t, fputc(data[0], s));
			break;
		case 3:
		case 4:
			SAME(t, fwrite(data, n % 7 + 1, n / 7 % 60, s));
			break;
		case 5:
			READS(t, fread(b, n % 7 + 1, n / 7 % 90, s), (size_t)t->r * (n % 7 + 1));
			break;
		case 6:
			READS(t, fgets(b, (int)(n % 200) + 1, s) != NULL, t->r ? strlen(t->bm) + 1 : 0);
			break;
		case 7:
			SAME(t, fgetc(s));
			got_char = t->r != EOF;
			break;
		case 8:
			if (last_got_char) {
				SAME(t, ungetc(n % 3 ? data[1] : (int)(unsigned char)t->r, s));
				pushed = true;
			} else
				SAME(t, getc(s));
			break;
		case 9:
			READS(t, fscanf(s, "%d", (int *)b), t->r == 1 ? sizeof(int) : 0);
			break;
		case 10:
			SAME(t, fseeko(s, (off_t)(n * 20) - 100, SEEK_SET));
			dir = NEUTRAL;
			pushed = false;
			break;
		case 11:
			SAME(t, fseeko(s, (off_t)n - 150, SEEK_CUR));
			dir = NEUTRAL;
			pushed = false;
			break;
		case 12:
			SAME(t, fseeko(s, (off_t)n - 250, SEEK_END));
			dir = NEUTRAL;
			pushed = false;
			break;
		case 13:
			SAME(t, ftello(s));
			break;
		case 14:
		case 15:
			SAME(t, fflush(s));
			same_cursor(t, __LINE__);
			dir = NEUTRAL;
			/* The handle itself, as a descriptor between uses of its stream.
			 * With the end-of-file indicator set, glibc's file streams read
			 * past it in a large fread (they skip the buffer) while its
			 * cookie streams keep it, as C11 says; moving the cursor under a
			 * stream at its end would show that difference, so clear it. */
			if (kind == 15 && feof(t->m))
				SAME(t, VOID(clearerr(s)));
			if (kind == 15) {
				ssize_t rm, ro;
				switch (n % 4) {
				case 0:
					rm = mmapfile_read(t->h, t->bm, n);
					ro = read(t->fd, t->bo, n);
					break;
				case 1:
					if (!t->same_writes)
						continue;
					rm = mmapfile_write(t->h, data, n);
					ro = write(t->fd, data, n);
					break;
				case 2:
					rm = mmapfile_seek(t->h, (off_t)n * 10, SEEK_SET);
					ro = lseek(t->fd, (off_t)n * 10, SEEK_SET);
					break;
				default:
					rm = mmapfile_readat(t->h, t->bm, n, (off_t)n * 7);
					ro = pread(t->fd, t->bo, n, (off_t)n * 7);
					break;
				}
				ck_assert_int_eq(rm, ro);
				if ((n % 4 == 0 || n % 4 == 3) && rm > 0)
					ck_assert_mem_eq(t->bm, t->bo, (size_t)rm);
			}
			break;
		case 16:
			SAME(t, VOID(rewind(s)));
			dir = NEUTRAL;
			pushed = false;
			break;
		case 17:
			SAME(t, VOID(clearerr(s)));
			break;
		case 18: /* where am I, and go back there */
			SAME(t, fseeko(s, ftello(s), SEEK_SET));
			dir = NEUTRAL;
			pushed = false;
			break;
		default:
			SAME(t, fputs("line\n", s));
			dir = WRITING;
			break;
		}
		last_got_char = got_char;
	}
	if (pushed)
		SAME(t, fseeko(s, 0, SEEK_CUR));
	twin_finish(t, flags);
}

/* 28 walks: each access and mode with a different buffering. */
START_TEST(test_random_walk)
{
	for (ctx = _i * NWALK; ctx < (_i + 1) * NWALK; ctx++)
		random_walk(ctx);
	ctx = -1;
}
END_TEST

/* Threads sharing one stream: stdio's lock keeps each fprintf whole, and
 * the handle sees the stream's writes one after another. */
#define THREADS 4
#define LINES 250

struct writer {
	FILE *s;
	int id;
};

static void *write_lines(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < LINES; i++)
		if (fprintf(w->s, "thread %d line %04d %.*s.\n", w->id, i, (i * 7 + w->id) % 50,
		            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") < 0)
			return (void *)1;
	return NULL;
}

START_TEST(test_threads_share_stream)
{
	const char *p = tu_path("f");
	mmapfile_t *h = mmapfile_create(p, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(h);
	FILE *s = mmapfile_fopen(h, _i ? "a" : "w");
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(setvbuf(s, NULL, _IOFBF, 512), 0);
	pthread_t th[THREADS];
	struct writer w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){ s, i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, write_lines, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(fclose(s), 0);
	ck_assert_int_eq(mmapfile_close(h), 0);
	size_t n;
	char *d = (char *)tu_read_file(p, &n);
	d[n] = '\0';
	int next[THREADS] = { 0 };
	size_t expect = 0;
	char line[128];
	for (char *q = d, *e; *q; q = e + 1) {
		e = strchr(q, '\n');
		ck_assert_ptr_nonnull(e);
		int id, i;
		ck_assert_int_eq(sscanf(q, "thread %d line %d", &id, &i), 2);
		ck_assert(id >= 0 && id < THREADS);
		ck_assert_int_eq(i, next[id]);
		next[id]++;
		int len = snprintf(line, sizeof line, "thread %d line %04d %.*s.\n", id, i,
		                   (i * 7 + id) % 50,
		                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
		ck_assert_int_eq(e + 1 - q, len);
		ck_assert_mem_eq(q, line, (size_t)len);
		expect += (size_t)len;
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(next[i], LINES);
	ck_assert_uint_eq(n, expect);
	free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stdio");
	TCase *tc = tu_tcase("stdio", 60);
	tcase_add_test(tc, test_fprintf_fgets);
	tcase_add_test(tc, test_records);
	tcase_add_test(tc, test_seek_tell);
	tcase_add_test(tc, test_ungetc);
	tcase_add_test(tc, test_switching_and_mixing);
	tcase_add_loop_test(tc, test_no_truncation_starts_at_cursor, 0, 4);
	tcase_add_test(tc, test_append_modes);
	tcase_add_test(tc, test_append_leaves_handle);
	tcase_add_loop_test(tc, test_append_after_other_writer, 0, 3);
	tcase_add_test(tc, test_after_fclose);
	tcase_add_test(tc, test_stream_errors);
	tcase_add_loop_test(tc, test_eof_then_growth, 0, 2);
	tcase_add_test(tc, test_modes_like_fdopen);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_loop_test(tc, test_random_walk, 0, 4);
	tcase_add_loop_test(tc, test_threads_share_stream, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
