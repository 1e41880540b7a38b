/* check_threads.c - one handle shared by many threads (spec "Threads").
 *
 * Threads never call Check's assertions: each records its first failure in
 * its own struct terr, and the main thread asserts after joining. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Failures inside threads */

struct terr {
	int failed;
	char msg[512];
};

static atomic_int g_stop; /* set by the first failure: every thread winds down */

static void terr_set(struct terr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void terr_set(struct terr *e, const char *fmt, ...)
{
	if (!e->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		e->failed = 1;
	}
	atomic_store(&g_stop, 1);
}

/* On failure: record and leave through the thread's `out:` label. */
#define TCHECK(e, cond, ...)                         \
	do {                                         \
		if (!(cond)) {                       \
			terr_set((e), __VA_ARGS__);  \
			goto out;                    \
		}                                    \
	} while (0)

static void run_threads(pthread_t *tids, int n, void *(*fn)(void *), void *args, size_t argsize)
{
	atomic_store(&g_stop, 0);
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&tids[i], NULL, fn, (char *)args + (size_t)i * argsize);
		ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
	}
}

static void join_threads(pthread_t *tids, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
}

static void assert_no_failure(const struct terr *e, int who)
{
	ck_assert_msg(!e->failed, "thread %d: %s", who, e->msg);
}

/* ------------------------------------------------------------------ */
/* A file that encodes its own offsets: the 8-byte word at offset 8k holds
 * 8k, little-endian, so any run of 16 bytes tells where it came from. */

static inline unsigned char word_byte(uint64_t o)
{
	return (unsigned char)((o & ~(uint64_t)7) >> (8 * (o & 7)));
}

static void fill_words(unsigned char *buf, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = word_byte(off + i);
}

static int matches_words(const unsigned char *buf, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != word_byte(off + i))
			return 0;
	return 1;
}

/* The offset that n >= 16 bytes were read from, or -1. */
static int64_t decode_words(const unsigned char *buf, size_t n)
{
	for (size_t s = 0; s < 8 && s + 8 <= n; s++) {
		uint64_t v = 0;
		for (int k = 7; k >= 0; k--)
			v = (v << 8) | buf[s + (size_t)k];
		if (v % 8 != 0 || v < s || v - s > (uint64_t)INT64_MAX)
			continue;
		if (matches_words(buf, n, v - s))
			return (int64_t)(v - s);
	}
	return -1;
}

static void write_words_file(const char *path, size_t size)
{
	unsigned char *buf = malloc(size);
	ck_assert_ptr_nonnull(buf);
	fill_words(buf, size, 0);
	tu_write_file(path, buf, size);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Concurrent mmapfile_read: each call consumes a distinct range. */

#define RD_THREADS 8
#define RD_SIZE ((size_t)(1u << 20) + 5)
#define RD_MAX 8192

struct range {
	int64_t off;
	size_t len;
};

struct rd_arg {
	mmapfile_t *f;
	uint64_t seed;
	struct range *recs;
	size_t nrec, cap;
	struct terr err;
};

static void *reader_thread(void *p)
{
	struct rd_arg *a = p;
	unsigned char *buf = malloc(RD_MAX);
	uint64_t st = a->seed;
	int64_t last = -1;
	if (!buf) {
		terr_set(&a->err, "malloc");
		return NULL;
	}
	while (!atomic_load(&g_stop)) {
		size_t n = 16 + (size_t)(tu_rand(&st) % (RD_MAX - 16 + 1));
		errno = 0;
		ssize_t r = mmapfile_read(a->f, buf, n);
		TCHECK(&a->err, r >= 0, "read(%zu) failed: errno %d", n, errno);
		TCHECK(&a->err, (size_t)r <= n, "read(%zu) returned %zd", n, r);
		if (r == 0) {
			/* At the end it stays at the end. */
			r = mmapfile_read(a->f, buf, n);
			TCHECK(&a->err, r == 0, "a read after the end returned %zd", r);
			break;
		}
		int64_t off;
		if ((size_t)r < n) {
			/* A short read can only be the tail. */
			off = (int64_t)(RD_SIZE - (size_t)r);
			TCHECK(&a->err, matches_words(buf, (size_t)r, (uint64_t)off),
			       "short read of %zd bytes (asked %zu) is not the file's tail", r, n);
		} else {
			off = decode_words(buf, (size_t)r);
			TCHECK(&a->err, off >= 0, "read of %zd bytes matches no offset of the file", r);
		}
		TCHECK(&a->err, off > last, "this thread's reads went backwards: %lld after %lld",
		       (long long)off, (long long)last);
		last = off;
		TCHECK(&a->err, a->nrec < a->cap, "too many reads");
		a->recs[a->nrec].off = off;
		a->recs[a->nrec].len = (size_t)r;
		a->nrec++;
	}
out:
	free(buf);
	return NULL;
}

static int cmp_range(const void *x, const void *y)
{
	const struct range *a = x, *b = y;
	return a->off < b->off ? -1 : a->off > b->off;
}

START_TEST(test_read_distinct_ranges)
{
	int flags = _i == 0 ? O_RDONLY : O_RDWR;
	const char *path = tu_path("words");
	write_words_file(path, RD_SIZE);
	mmapfile_t *f = mmapfile_open(path, flags, 0);
	ck_assert_ptr_nonnull(f);

	struct rd_arg args[RD_THREADS];
	pthread_t tids[RD_THREADS];
	size_t cap = RD_SIZE / 16 + 4;
	for (int i = 0; i < RD_THREADS; i++) {
		memset(&args[i], 0, sizeof args[i]);
		args[i].f = f;
		args[i].seed = 1000 + (uint64_t)i;
		args[i].cap = cap;
		args[i].recs = malloc(cap * sizeof(struct range));
		ck_assert_ptr_nonnull(args[i].recs);
	}
	run_threads(tids, RD_THREADS, reader_thread, args, sizeof args[0]);
	join_threads(tids, RD_THREADS);
	for (int i = 0; i < RD_THREADS; i++)
		assert_no_failure(&args[i].err, i);

	/* The union of the ranges is the file: no overlap, no gap. */
	size_t total = 0;
	for (int i = 0; i < RD_THREADS; i++)
		total += args[i].nrec;
	struct range *all = malloc(total * sizeof *all);
	ck_assert_ptr_nonnull(all);
	size_t k = 0;
	for (int i = 0; i < RD_THREADS; i++) {
		memcpy(all + k, args[i].recs, args[i].nrec * sizeof *all);
		k += args[i].nrec;
		free(args[i].recs);
	}
	qsort(all, total, sizeof *all, cmp_range);
	int64_t expect = 0;
	for (size_t i = 0; i < total; i++) {
		ck_assert_msg(all[i].off == expect, "%s at offset %lld (read %zu of %zu: [%lld, +%zu))",
			      all[i].off < expect ? "overlap" : "gap", (long long)expect, i, total,
			      (long long)all[i].off, all[i].len);
		expect += (int64_t)all[i].len;
	}
	ck_assert_int_eq(expect, (int64_t)RD_SIZE);
	free(all);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)RD_SIZE);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrent mmapfile_write of fixed-size records. */

#define WR_THREADS 6
#define WR_RECS 600
#define REC 48
#define HDR 100

static void make_rec(unsigned char *r, uint32_t tid, uint32_t seq)
{
	memcpy(r, "REC:", 4);
	memcpy(r + 4, &tid, 4);
	memcpy(r + 8, &seq, 4);
	tu_fill(r + 12, REC - 12, ((uint64_t)tid << 32 | seq) ^ 0x9e3779b97f4a7c15ULL);
}

struct wr_arg {
	mmapfile_t *f;
	uint32_t tid;
	int append;     /* the handle is O_APPEND: also move the cursor around */
	int cursor_ops; /* seek and read between writes */
	int others_move; /* some thread moves the cursor */
	struct terr err;
};

static void *writer_thread(void *p)
{
	struct wr_arg *a = p;
	unsigned char rec[REC], buf[64];
	uint64_t st = a->tid * 77 + 5;
	off_t last_size = 0;
	for (uint32_t seq = 0; seq < WR_RECS && !atomic_load(&g_stop); seq++) {
		make_rec(rec, a->tid, seq);
		errno = 0;
		ssize_t w = mmapfile_write(a->f, rec, REC);
		TCHECK(&a->err, w == REC, "write of record %u returned %zd, errno %d", seq, w, errno);
		if (a->append && !a->others_move) {
			/* An append leaves the cursor at the end of what it
			 * wrote (or later, after other threads' appends). */
			off_t cur = mmapfile_seek(a->f, 0, SEEK_CUR);
			TCHECK(&a->err, cur >= HDR + REC * (off_t)(seq + 1),
			       "cursor %lld after this thread's append #%u", (long long)cur, seq);
		}
		off_t sz = mmapfile_size(a->f);
		TCHECK(&a->err, sz >= last_size, "size went down: %lld after %lld", (long long)sz,
		       (long long)last_size);
		last_size = sz;
		if (a->cursor_ops) {
			switch (tu_rand(&st) % 3) {
			case 0: {
				off_t r = mmapfile_seek(a->f, 0, SEEK_SET);
				TCHECK(&a->err, r == 0, "seek(0, SEEK_SET) = %lld, errno %d", (long long)r, errno);
				break;
			}
			case 1: {
				size_t n = 1 + (size_t)(tu_rand(&st) % sizeof buf);
				ssize_t r = mmapfile_read(a->f, buf, n);
				TCHECK(&a->err, r >= 0 && (size_t)r <= n, "read(%zu) = %zd, errno %d", n, r, errno);
				break;
			}
			default: {
				off_t r = mmapfile_seek(a->f, -(off_t)(tu_rand(&st) % HDR), SEEK_END);
				TCHECK(&a->err, r >= 0, "seek(SEEK_END) = %lld, errno %d", (long long)r, errno);
				break;
			}
			}
		}
	}
out:
	return NULL;
}

static void check_records(const char *path, size_t hdr, const unsigned char *header)
{
	size_t n;
	unsigned char *data = tu_read_file(path, &n);
	ck_assert_uint_eq(n, hdr + (size_t)WR_THREADS * WR_RECS * REC);
	if (hdr)
		ck_assert_mem_eq(data, header, hdr);
	unsigned char *seen = calloc((size_t)WR_THREADS * WR_RECS, 1);
	int64_t next[WR_THREADS];
	for (int t = 0; t < WR_THREADS; t++)
		next[t] = 0;
	unsigned char want[REC];
	for (size_t off = hdr; off < n; off += REC) {
		const unsigned char *r = data + off;
		uint32_t tid, seq;
		ck_assert_msg(memcmp(r, "REC:", 4) == 0, "no record at offset %zu", off);
		memcpy(&tid, r + 4, 4);
		memcpy(&seq, r + 8, 4);
		ck_assert_msg(tid < WR_THREADS && seq < WR_RECS, "bad record id at %zu", off);
		make_rec(want, tid, seq);
		ck_assert_msg(memcmp(r, want, REC) == 0, "torn record (thread %u, #%u) at offset %zu",
			      tid, seq, off);
		ck_assert_msg(!seen[tid * WR_RECS + seq], "record (%u, %u) twice", tid, seq);
		seen[tid * WR_RECS + seq] = 1;
		ck_assert_msg((int64_t)seq == next[tid], "thread %u: record %u where %lld was due", tid,
			      seq, (long long)next[tid]);
		next[tid]++;
	}
	for (int t = 0; t < WR_THREADS; t++)
		ck_assert_int_eq(next[t], WR_RECS);
	free(seen);
	free(data);
}

static void run_writers(const char *path, int flags, size_t hdr, int cursor_ops)
{
	unsigned char header[HDR];
	tu_fill(header, sizeof header, 42);
	tu_write_file(path, header, hdr);
	mmapfile_t *f = mmapfile_open(path, flags, 0);
	ck_assert_ptr_nonnull(f);
	struct wr_arg args[WR_THREADS];
	pthread_t tids[WR_THREADS];
	for (int i = 0; i < WR_THREADS; i++) {
		memset(&args[i], 0, sizeof args[i]);
		args[i].f = f;
		args[i].tid = (uint32_t)i;
		args[i].append = (flags & O_APPEND) != 0;
		args[i].cursor_ops = cursor_ops && (i % 2 == 1);
		args[i].others_move = cursor_ops;
	}
	run_threads(tids, WR_THREADS, writer_thread, args, sizeof args[0]);
	join_threads(tids, WR_THREADS);
	for (int i = 0; i < WR_THREADS; i++)
		assert_no_failure(&args[i].err, i);
	off_t total = (off_t)(hdr + (size_t)WR_THREADS * WR_RECS * REC);
	ck_assert_int_eq(mmapfile_size(f), total);
	if (!cursor_ops)
		ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), total);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_file_size(path), total);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_records(path, hdr, header);
}

START_TEST(test_write_records)
{
	run_writers(tu_path("recs"), O_RDWR, 0, 0);
}
END_TEST

START_TEST(test_write_records_wronly)
{
	run_writers(tu_path("recs"), O_WRONLY, 0, 0);
}
END_TEST

START_TEST(test_append_records)
{
	/* A header whose length is no multiple of the record size. */
	run_writers(tu_path("recs"), O_RDWR | O_APPEND, HDR, 0);
}
END_TEST

START_TEST(test_append_records_with_cursor_moves)
{
	/* Half the threads seek and read between appends: appends still land
	 * at the end, each once, untorn. */
	run_writers(tu_path("recs"), O_RDWR | O_APPEND, HDR, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SEEK_CUR and read advances by many threads are never lost. */

#define SK_THREADS 6
#define SK_ITERS 1000
#define SK_STEP 16

struct sk_arg {
	mmapfile_t *f;
	struct terr err;
};

static void *seeker_thread(void *p)
{
	struct sk_arg *a = p;
	unsigned char buf[SK_STEP];
	for (int i = 0; i < SK_ITERS && !atomic_load(&g_stop); i++) {
		off_t r = mmapfile_seek(a->f, SK_STEP, SEEK_CUR);
		TCHECK(&a->err, r >= SK_STEP, "seek(SEEK_CUR) = %lld, errno %d", (long long)r, errno);
		ssize_t n = mmapfile_read(a->f, buf, SK_STEP);
		TCHECK(&a->err, n == SK_STEP, "read(%d) = %zd, errno %d", SK_STEP, n, errno);
		/* It read 16 bytes at an offset that is a multiple of 16. */
		int64_t off = decode_words(buf, SK_STEP);
		TCHECK(&a->err, off >= 0 && off % SK_STEP == 0, "read 16 bytes from offset %lld",
		       (long long)off);
	}
out:
	return NULL;
}

START_TEST(test_cursor_advances_not_lost)
{
	size_t size = (size_t)SK_THREADS * SK_ITERS * SK_STEP * 2 + 4096;
	const char *path = tu_path("words");
	write_words_file(path, size);
	mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	struct sk_arg args[SK_THREADS];
	pthread_t tids[SK_THREADS];
	memset(args, 0, sizeof args);
	for (int i = 0; i < SK_THREADS; i++)
		args[i].f = f;
	run_threads(tids, SK_THREADS, seeker_thread, args, sizeof args[0]);
	join_threads(tids, SK_THREADS);
	for (int i = 0; i < SK_THREADS; i++)
		assert_no_failure(&args[i].err, i);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)SK_THREADS * SK_ITERS * SK_STEP * 2);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* readat / writeat on disjoint regions, in parallel, from an empty file. */

#define RW_THREADS 6
#define RW_REGION ((size_t)192 * 1024 + 123)
#define RW_OPS 400

struct rw_arg {
	mmapfile_t *f;
	int idx;
	unsigned char *shadow; /* what this thread's region must hold */
	size_t maxend;         /* bytes of the region written so far (high mark) */
	struct terr err;
};

static void *region_thread(void *p)
{
	struct rw_arg *a = p;
	uint64_t st = 0xabc + (uint64_t)a->idx;
	off_t base = (off_t)a->idx * (off_t)RW_REGION;
	unsigned char *buf = malloc(16384);
	if (!buf) {
		terr_set(&a->err, "malloc");
		return NULL;
	}
	for (int i = 0; i < RW_OPS && !atomic_load(&g_stop); i++) {
		uint64_t r = tu_rand(&st);
		if (r % 10 < 6 || a->maxend == 0) {
			size_t off = (size_t)(tu_rand(&st) % RW_REGION);
			size_t n = 1 + (size_t)(tu_rand(&st) % 16384);
			if (off + n > RW_REGION)
				n = RW_REGION - off;
			tu_fill(buf, n, tu_rand(&st));
			errno = 0;
			ssize_t w = mmapfile_writeat(a->f, buf, n, base + (off_t)off);
			TCHECK(&a->err, w == (ssize_t)n, "writeat(%zu, %lld) = %zd, errno %d", n,
			       (long long)(base + (off_t)off), w, errno);
			memcpy(a->shadow + off, buf, n);
			if (off + n > a->maxend)
				a->maxend = off + n;
		} else {
			size_t off = (size_t)(tu_rand(&st) % a->maxend);
			size_t n = 1 + (size_t)(tu_rand(&st) % 16384);
			if (off + n > a->maxend)
				n = a->maxend - off;
			errno = 0;
			ssize_t got = mmapfile_readat(a->f, buf, n, base + (off_t)off);
			TCHECK(&a->err, got == (ssize_t)n, "readat(%zu, %lld) = %zd, errno %d", n,
			       (long long)(base + (off_t)off), got, errno);
			TCHECK(&a->err, memcmp(buf, a->shadow + off, n) == 0,
			       "readat(%zu, %lld) read other bytes than were written", n,
			       (long long)(base + (off_t)off));
		}
	}
out:
	free(buf);
	return NULL;
}

START_TEST(test_readat_writeat_disjoint)
{
	const char *path = tu_path("regions");
	mmapfile_t *f = mmapfile_create(path, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(f);
	struct rw_arg args[RW_THREADS];
	pthread_t tids[RW_THREADS];
	for (int i = 0; i < RW_THREADS; i++) {
		memset(&args[i], 0, sizeof args[i]);
		args[i].f = f;
		args[i].idx = i;
		args[i].shadow = calloc(RW_REGION, 1);
		ck_assert_ptr_nonnull(args[i].shadow);
	}
	run_threads(tids, RW_THREADS, region_thread, args, sizeof args[0]);
	join_threads(tids, RW_THREADS);
	for (int i = 0; i < RW_THREADS; i++)
		assert_no_failure(&args[i].err, i);

	/* The expected file: the regions side by side, up to the last byte written. */
	size_t size = 0;
	unsigned char *want = calloc((size_t)RW_THREADS * RW_REGION, 1);
	for (int i = 0; i < RW_THREADS; i++) {
		memcpy(want + (size_t)i * RW_REGION, args[i].shadow, RW_REGION);
		if (args[i].maxend > 0 && (size_t)i * RW_REGION + args[i].maxend > size)
			size = (size_t)i * RW_REGION + args[i].maxend;
		free(args[i].shadow);
	}
	ck_assert_int_eq(mmapfile_size(f), (off_t)size);
	unsigned char *got = malloc(size);
	ck_assert_int_eq(mmapfile_readat(f, got, size, 0), (ssize_t)size);
	ck_assert_mem_eq(got, want, size);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_file_size(path), (off_t)size);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *disk = tu_read_file(path, &n);
	ck_assert_uint_eq(n, size);
	ck_assert_mem_eq(disk, want, size);
	free(disk);
	free(got);
	free(want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* readat, size, sync and madvise while another thread grows the file by
 * appending (remaps and moves). */

#define GR_SIZE ((size_t)4 << 20)
#define GR_READERS 3

struct gr_shared {
	mmapfile_t *f;
	_Atomic int64_t committed; /* bytes the writer's returned writes cover */
	atomic_int done;
};

struct gr_arg {
	struct gr_shared *sh;
	int idx;
	struct terr err;
};

static void *grow_writer(void *p)
{
	struct gr_arg *a = p;
	struct gr_shared *sh = a->sh;
	uint64_t st = 99;
	size_t maxchunk = 96 * 1024;
	unsigned char *buf = malloc(maxchunk);
	size_t pos = 0;
	if (!buf) {
		terr_set(&a->err, "malloc");
		goto out;
	}
	while (pos < GR_SIZE && !atomic_load(&g_stop)) {
		size_t n = 1 + (size_t)(tu_rand(&st) % maxchunk);
		if (pos + n > GR_SIZE)
			n = GR_SIZE - pos;
		fill_words(buf, n, pos);
		errno = 0;
		ssize_t w = mmapfile_write(sh->f, buf, n);
		TCHECK(&a->err, w == (ssize_t)n, "write(%zu) at %zu = %zd, errno %d", n, pos, w, errno);
		pos += n;
		atomic_store(&sh->committed, (int64_t)pos);
	}
out:
	free(buf);
	atomic_store(&sh->done, 1);
	return NULL;
}

static void *grow_reader(void *p)
{
	struct gr_arg *a = p;
	struct gr_shared *sh = a->sh;
	uint64_t st = 1234 + (uint64_t)a->idx;
	size_t maxn = 64 * 1024;
	unsigned char *buf = malloc(maxn);
	if (!buf) {
		terr_set(&a->err, "malloc");
		return NULL;
	}
	while (!atomic_load(&sh->done) && !atomic_load(&g_stop)) {
		int64_t c = atomic_load(&sh->committed);
		if (c == 0) {
			sched_yield();
			continue;
		}
		size_t off = (size_t)(tu_rand(&st) % (uint64_t)c);
		size_t n = 1 + (size_t)(tu_rand(&st) % maxn);
		size_t must = (size_t)c - off < n ? (size_t)c - off : n;
		errno = 0;
		ssize_t r = mmapfile_readat(sh->f, buf, n, (off_t)off);
		TCHECK(&a->err, r >= (ssize_t)must && (size_t)r <= n,
		       "readat(%zu, %zu) = %zd with %lld bytes written, errno %d", n, off, r,
		       (long long)c, errno);
		TCHECK(&a->err, matches_words(buf, must, off), "readat(%zu, %zu): wrong bytes below %lld",
		       n, off, (long long)c);
		for (size_t i = must; i < (size_t)r; i++)
			TCHECK(&a->err, buf[i] == 0 || buf[i] == word_byte(off + i),
			       "readat(%zu, %zu): byte %zu is %#x, neither 0 nor the pattern", n, off,
			       off + i, buf[i]);
	}
out:
	free(buf);
	return NULL;
}

static void *grow_poller(void *p)
{
	struct gr_arg *a = p;
	struct gr_shared *sh = a->sh;
	off_t last = 0;
	unsigned iter = 0;
	while (!atomic_load(&sh->done) && !atomic_load(&g_stop)) {
		int64_t c = atomic_load(&sh->committed);
		off_t s = mmapfile_size(sh->f);
		TCHECK(&a->err, s >= last && s >= c && s <= (off_t)GR_SIZE,
		       "size %lld (before: %lld, written: %lld)", (long long)s, (long long)last,
		       (long long)c);
		last = s;
		iter++;
		if (iter % 8 == 0) {
			errno = 0;
			int r = mmapfile_madvise(sh->f, 0, 0, iter % 16 ? MMAPFILE_MADV_WILLNEED : MMAPFILE_MADV_RANDOM);
			TCHECK(&a->err, r == 0, "madvise(whole file) failed: errno %d", errno);
		}
		if (iter % 64 == 0) {
			errno = 0;
			int r = mmapfile_sync(sh->f);
			TCHECK(&a->err, r == 0, "sync failed: errno %d", errno);
		}
	}
out:
	return NULL;
}

START_TEST(test_readers_during_growth)
{
	const char *path = tu_path("grow");
	struct gr_shared sh;
	sh.f = mmapfile_create(path, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(sh.f);
	atomic_store(&sh.committed, 0);
	atomic_store(&sh.done, 0);
	enum { N = GR_READERS + 2 };
	struct gr_arg args[N];
	pthread_t tids[N];
	memset(args, 0, sizeof args);
	atomic_store(&g_stop, 0);
	for (int i = 0; i < N; i++) {
		args[i].sh = &sh;
		args[i].idx = i;
		void *(*fn)(void *) = i == 0 ? grow_writer : i == 1 ? grow_poller : grow_reader;
		ck_assert_int_eq(pthread_create(&tids[i], NULL, fn, &args[i]), 0);
	}
	join_threads(tids, N);
	for (int i = 0; i < N; i++)
		assert_no_failure(&args[i].err, i);
	ck_assert_int_eq(mmapfile_size(sh.f), (off_t)GR_SIZE);
	ck_assert_int_eq(mmapfile_sync(sh.f), 0);
	ck_assert_int_eq(tu_file_size(path), (off_t)GR_SIZE);
	ck_assert_int_eq(mmapfile_close(sh.f), 0);
	size_t n;
	unsigned char *disk = tu_read_file(path, &n);
	ck_assert_uint_eq(n, GR_SIZE);
	ck_assert_msg(matches_words(disk, n, 0), "the file does not hold what was appended");
	free(disk);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The stress test: every call, mixed, for a bounded time.
 *
 * Every byte any thread writes at offset o is pat(o), so a byte read at o is
 * either 0 (a hole, a truncated-and-regrown tail, the reserve) or pat(o).
 * pat() is a per-128-byte-block rotation: from one nonzero byte and a block
 * number the offset follows, so even a cursor read (whose offset the thread
 * cannot know) can be placed by trying every block. */

#define ST_THREADS 5
#define ST_MAXSZ ((size_t)2 << 20)
#define ST_MAXIO ((size_t)32 * 1024)
#define ST_BLOCKS (ST_MAXSZ / 128 + 2)
#define ST_MIN_ITERS 200

static unsigned char st_hash[ST_BLOCKS];

static void st_init_hash(void)
{
	uint64_t s = 0x5eed;
	for (size_t b = 0; b < ST_BLOCKS; b++)
		st_hash[b] = (unsigned char)(tu_rand(&s) & 127);
}

static inline unsigned char pat(uint64_t o)
{
	uint64_t b = o >> 7;
	unsigned char h = b < ST_BLOCKS ? st_hash[b] : (unsigned char)(b * 37 & 127);
	return (unsigned char)(1 + ((o & 127) ^ h));
}

static void fill_pat(unsigned char *buf, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(off + i);
}

/* Index of the first byte that is neither 0 nor pat(off + i), or n. */
static size_t check_pat(const unsigned char *buf, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != 0 && buf[i] != pat(off + i))
			return i;
	return n;
}

/* Is there an offset o with o + n <= ST_MAXSZ where buf fits the pattern? */
static int placeable(const unsigned char *buf, size_t n)
{
	size_t i = 0;
	while (i < n && buf[i] == 0)
		i++;
	if (i == n)
		return 1; /* all zeros fit anywhere */
	if (buf[i] > 128)
		return 0;
	size_t j = i + 1;
	while (j < n && buf[j] == 0)
		j++;
	for (uint64_t b = 0; b < ST_BLOCKS; b++) {
		uint64_t pos = b * 128 + (uint64_t)(((buf[i] - 1) ^ st_hash[b]) & 127);
		if (pos < i)
			continue;
		uint64_t o = pos - i;
		if (o + n > ST_MAXSZ)
			continue;
		if (j < n && buf[j] != pat(o + j))
			continue;
		if (check_pat(buf, n, o) == n)
			return 1;
	}
	return 0;
}

enum { OP_READ, OP_WRITE, OP_READAT, OP_WRITEAT, OP_SEEK, OP_TRUNCATE, OP_SIZE, OP_SYNC, OP_MADVISE, OP_COUNT };
static const char *op_names[OP_COUNT] = { "read", "write", "readat", "writeat", "seek",
					  "truncate", "size", "sync", "madvise" };

struct st_shared {
	mmapfile_t *f;
	struct timespec deadline;
	/* The cursor's owner: cursor writes hold it exclusively (so that
	 * seek + write puts known bytes at a known offset), cursor reads and
	 * seeks shared (they run together and place their data by content). */
	pthread_rwlock_t cursor;
};

struct st_arg {
	struct st_shared *sh;
	int idx;
	unsigned long ops[OP_COUNT];
	struct terr err;
};

static int past(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static const int st_advice[] = {
	MMAPFILE_MADV_NORMAL, MMAPFILE_MADV_RANDOM, MMAPFILE_MADV_SEQUENTIAL,
	MMAPFILE_MADV_WILLNEED, MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_COLD,
	MMAPFILE_MADV_DONTDUMP, MMAPFILE_MADV_DODUMP, MMAPFILE_MADV_PAGEOUT,
};

static void *stress_thread(void *p)
{
	struct st_arg *a = p;
	struct st_shared *sh = a->sh;
	mmapfile_t *f = sh->f;
	uint64_t st = 0x57e55 + (uint64_t)a->idx * 7919;
	unsigned char *buf = malloc(ST_MAXIO + 1);
	if (!buf) {
		terr_set(&a->err, "malloc");
		goto out;
	}
	for (unsigned long it = 0; !atomic_load(&g_stop) && (it < ST_MIN_ITERS || !past(&sh->deadline)); it++) {
		unsigned r = (unsigned)(tu_rand(&st) % 100);
		size_t n = (size_t)(tu_rand(&st) % (ST_MAXIO + 1));
		if (tu_rand(&st) % 16 == 0)
			n = 0;
		if (r < 18) { /* readat anywhere, past the end too */
			uint64_t off = tu_rand(&st) % (ST_MAXSZ + 8192);
			memset(buf, 0xff, n + 1);
			errno = 0;
			ssize_t got = mmapfile_readat(f, buf, n, (off_t)off);
			int e = errno;
			a->ops[OP_READAT]++;
			TCHECK(&a->err, got >= 0, "readat(%zu, %llu) failed: errno %d", n,
			       (unsigned long long)off, e);
			TCHECK(&a->err, (size_t)got <= n, "readat(%zu) returned %zd", n, got);
			TCHECK(&a->err, buf[got] == 0xff || (size_t)got == n,
			       "readat(%zu) returned %zd but wrote past it", n, got);
			size_t bad = check_pat(buf, (size_t)got, off);
			TCHECK(&a->err, bad == (size_t)got,
			       "readat(%zu, %llu): byte at %llu is %#x, neither 0 nor %#x", n,
			       (unsigned long long)off, (unsigned long long)(off + bad), buf[bad],
			       pat(off + bad));
		} else if (r < 32) { /* writeat */
			uint64_t off = tu_rand(&st) % (ST_MAXSZ - n + 1);
			fill_pat(buf, n, off);
			errno = 0;
			ssize_t w = mmapfile_writeat(f, buf, n, (off_t)off);
			int e = errno;
			a->ops[OP_WRITEAT]++;
			TCHECK(&a->err, w == (ssize_t)n, "writeat(%zu, %llu) = %zd, errno %d", n,
			       (unsigned long long)off, w, e);
		} else if (r < 46) { /* cursor reads and seeks, placed by content */
			pthread_rwlock_rdlock(&sh->cursor);
			unsigned how = (unsigned)(tu_rand(&st) % 4);
			off_t want = (off_t)(tu_rand(&st) % (ST_MAXSZ + 4096));
			off_t delta = (off_t)(tu_rand(&st) % 4096);
			errno = 0;
			off_t s = how == 0 ? mmapfile_seek(f, want, SEEK_SET)
				: how == 1 ? mmapfile_seek(f, delta, SEEK_CUR)
				: how == 2 ? mmapfile_seek(f, delta, SEEK_END)
					   : mmapfile_seek(f, 0, SEEK_CUR);
			int e = errno;
			a->ops[OP_SEEK]++;
			if (!(how == 0 ? s == want : s >= 0)) {
				pthread_rwlock_unlock(&sh->cursor);
				TCHECK(&a->err, 0, "seek(%lld, %u) = %lld, errno %d",
				       (long long)(how == 0 ? want : delta), how, (long long)s, e);
			}
			memset(buf, 0xff, n + 1);
			errno = 0;
			ssize_t got = mmapfile_read(f, buf, n);
			e = errno;
			pthread_rwlock_unlock(&sh->cursor);
			a->ops[OP_READ]++;
			TCHECK(&a->err, got >= 0, "read(%zu) failed: errno %d", n, e);
			TCHECK(&a->err, (size_t)got <= n, "read(%zu) returned %zd", n, got);
			TCHECK(&a->err, buf[got] == 0xff || (size_t)got == n,
			       "read(%zu) returned %zd but wrote past it", n, got);
			TCHECK(&a->err, placeable(buf, (size_t)got),
			       "read(%zu) returned %zd bytes that fit no offset of the pattern", n, got);
		} else if (r < 56) { /* cursor write at a known offset */
			uint64_t off = tu_rand(&st) % (ST_MAXSZ - n + 1);
			fill_pat(buf, n, off);
			pthread_rwlock_wrlock(&sh->cursor);
			errno = 0;
			off_t s = mmapfile_seek(f, (off_t)off, SEEK_SET);
			int e = errno;
			ssize_t w = -2;
			off_t after = -2;
			if (s == (off_t)off) {
				errno = 0;
				w = mmapfile_write(f, buf, n);
				e = errno;
				after = mmapfile_seek(f, 0, SEEK_CUR);
			}
			pthread_rwlock_unlock(&sh->cursor);
			a->ops[OP_SEEK]++;
			a->ops[OP_WRITE]++;
			TCHECK(&a->err, s == (off_t)off, "seek(%llu, SEEK_SET) = %lld, errno %d",
			       (unsigned long long)off, (long long)s, e);
			TCHECK(&a->err, w == (ssize_t)n, "write(%zu) at %llu = %zd, errno %d", n,
			       (unsigned long long)off, w, e);
			TCHECK(&a->err, after == (off_t)(off + n), "cursor %lld after writing %zu at %llu",
			       (long long)after, n, (unsigned long long)off);
		} else if (r < 64) { /* truncate, down and up, to 0 too */
			uint64_t to = tu_rand(&st) % 4 == 0 ? 0 : tu_rand(&st) % (ST_MAXSZ + 1);
			errno = 0;
			int t = mmapfile_truncate(f, (off_t)to);
			int e = errno;
			a->ops[OP_TRUNCATE]++;
			TCHECK(&a->err, t == 0, "truncate(%llu) failed: errno %d", (unsigned long long)to, e);
		} else if (r < 80) {
			off_t s = mmapfile_size(f);
			a->ops[OP_SIZE]++;
			TCHECK(&a->err, s >= 0 && s <= (off_t)ST_MAXSZ, "size() = %lld", (long long)s);
		} else if (r < 86) {
			errno = 0;
			int s = mmapfile_sync(f);
			int e = errno;
			a->ops[OP_SYNC]++;
			TCHECK(&a->err, s == 0, "sync failed: errno %d", e);
		} else {
			int adv = st_advice[tu_rand(&st) % (sizeof st_advice / sizeof st_advice[0])];
			int whole = tu_rand(&st) % 2 == 0;
			off_t off = whole ? 0 : (off_t)(tu_rand(&st) % ST_MAXSZ);
			size_t len = whole ? 0 : (size_t)(tu_rand(&st) % (ST_MAXSZ / 4));
			errno = 0;
			int m = mmapfile_madvise(f, off, len, adv);
			int e = errno;
			a->ops[OP_MADVISE]++;
			/* A range may start past a mapping another thread just
			 * shrank: the kernel's ENOMEM.  Nothing else may fail. */
			TCHECK(&a->err, m == 0 || (!whole && off > 0 && e == ENOMEM),
			       "madvise(%lld, %zu, %s) failed: errno %d", (long long)off, len,
			       mmapfile_madvise_name(adv), e);
		}
	}
out:
	free(buf);
	return NULL;
}

START_TEST(test_stress_every_call)
{
	long ms = 2000;
	const char *env = getenv("MMAPFILE_STRESS_MS");
	if (env && *env)
		ms = strtol(env, NULL, 10);
	if (ms < 0)
		ms = 0;
	st_init_hash();
	const char *path = tu_path("stress");
	struct st_shared *sh = calloc(1, sizeof *sh);
	ck_assert_ptr_nonnull(sh);
	sh->f = mmapfile_create(path, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(sh->f);
	/* Start with some data. */
	unsigned char *init = malloc(ST_MAXSZ / 2);
	fill_pat(init, ST_MAXSZ / 2, 0);
	ck_assert_int_eq(mmapfile_write(sh->f, init, ST_MAXSZ / 2), (ssize_t)(ST_MAXSZ / 2));
	free(init);
	pthread_rwlock_init(&sh->cursor, NULL);
	clock_gettime(CLOCK_MONOTONIC, &sh->deadline);
	sh->deadline.tv_sec += ms / 1000;
	sh->deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (sh->deadline.tv_nsec >= 1000000000L) {
		sh->deadline.tv_sec++;
		sh->deadline.tv_nsec -= 1000000000L;
	}

	struct st_arg args[ST_THREADS];
	pthread_t tids[ST_THREADS];
	memset(args, 0, sizeof args);
	for (int i = 0; i < ST_THREADS; i++) {
		args[i].sh = sh;
		args[i].idx = i;
	}
	run_threads(tids, ST_THREADS, stress_thread, args, sizeof args[0]);
	join_threads(tids, ST_THREADS);
	for (int i = 0; i < ST_THREADS; i++)
		assert_no_failure(&args[i].err, i);

	unsigned long tot[OP_COUNT] = { 0 };
	for (int i = 0; i < ST_THREADS; i++)
		for (int k = 0; k < OP_COUNT; k++)
			tot[k] += args[i].ops[k];
	fprintf(stderr, "check_threads: stress, %d threads, %ld ms:", ST_THREADS, ms);
	for (int k = 0; k < OP_COUNT; k++) {
		fprintf(stderr, " %s %lu", op_names[k], tot[k]);
		ck_assert_msg(tot[k] > 0, "no %s ran", op_names[k]);
	}
	fprintf(stderr, "\n");

	/* After join + sync the file on disk has exactly mmapfile_size bytes,
	 * each 0 or the pattern, and the handle reads the same bytes. */
	ck_assert_int_eq(mmapfile_sync(sh->f), 0);
	off_t size = mmapfile_size(sh->f);
	ck_assert_int_le(size, (off_t)ST_MAXSZ);
	ck_assert_int_eq(tu_file_size(path), size);
	size_t n;
	unsigned char *disk = tu_read_file(path, &n);
	ck_assert_uint_eq(n, (size_t)size);
	size_t bad = check_pat(disk, n, 0);
	ck_assert_msg(bad == n, "byte %zu of the file is %#x, neither 0 nor %#x", bad, disk[bad],
		      pat(bad));
	unsigned char *got = malloc(n + 1);
	ck_assert_int_eq(mmapfile_readat(sh->f, got, n + 1, 0), (ssize_t)n);
	ck_assert_mem_eq(got, disk, n);
	free(got);
	free(disk);
	ck_assert_int_eq(mmapfile_close(sh->f), 0);
	ck_assert_int_eq(tu_file_size(path), size);
	pthread_rwlock_destroy(&sh->cursor);
	free(sh);
}
END_TEST

/* Truncates get through while readers loop on the handle without pause
 * (the map lock prefers writers; a reader-preferring lock made this take
 * seconds to minutes on a loaded machine, though not reliably). */
struct looping_reader {
	mmapfile_t *f;
	atomic_bool *stop;
	unsigned long reads;
};

static void *loop_readat(void *arg)
{
	struct looping_reader *r = arg;
	const size_t n = 1 << 20;
	unsigned char *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	while (!atomic_load(r->stop)) {
		ck_assert_int_ge(mmapfile_readat(r->f, buf, n, 0), 0);
		r->reads++;
	}
	free(buf);
	return NULL;
}

START_TEST(test_truncate_not_starved)
{
	mmapfile_t *f = mmapfile_create(tu_path("f"), 4 << 20, 0, 0644);
	ck_assert_ptr_nonnull(f);
	atomic_bool stop = false;
	enum { READERS = 4 };
	struct looping_reader r[READERS];
	pthread_t t[READERS];
	for (int i = 0; i < READERS; i++) {
		r[i] = (struct looping_reader){ .f = f, .stop = &stop };
		ck_assert_int_eq(pthread_create(&t[i], NULL, loop_readat, &r[i]), 0);
	}
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(mmapfile_truncate(f, (i % 2 ? 4 : 3) << 20), 0);
	atomic_store(&stop, true);
	unsigned long reads = 0;
	for (int i = 0; i < READERS; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		reads += r[i].reads;
	}
	ck_assert_int_eq(mmapfile_size(f), 4 << 20);
	ck_assert_int_eq(mmapfile_close(f), 0);
	printf("truncate_not_starved: 40 truncates through %lu concurrent 1 MiB reads\n", reads);
}
END_TEST

/* A signal handled while mmapfile_sync waits (SA_RESTART, as most handlers
 * are) never makes it fail or return early: every call returns 0. */
static void on_usr1(int sig)
{
	(void)sig;
}

struct pester {
	pthread_t target;
	atomic_bool *stop;
};

static void *pester_thread(void *arg)
{
	struct pester *p = arg;
	while (!atomic_load(p->stop)) {
		pthread_kill(p->target, SIGUSR1);
		usleep(50);
	}
	return NULL;
}

START_TEST(test_sync_through_signals)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	mmapfile_t *f = mmapfile_open(tu_path("f"), O_RDWR | O_CREAT, 0644);
	ck_assert_ptr_nonnull(f);
	atomic_bool stop = false;
	struct pester p = { .target = pthread_self(), .stop = &stop };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pester_thread, &p), 0);
	unsigned char rec[64];
	for (int i = 0; i < 300; i++) {
		memset(rec, i, sizeof rec);
		ck_assert_int_eq(mmapfile_write(f, rec, sizeof rec), (ssize_t)sizeof rec);
		int rc = mmapfile_sync(f);
		ck_assert_msg(rc == 0, "sync %d: %s", i, strerror(errno));
	}
	atomic_store(&stop, true);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threads");
	TCase *tc;

	tc = tu_tcase("cursor", 60);
	tcase_add_loop_test(tc, test_read_distinct_ranges, 0, 2);
	tcase_add_test(tc, test_write_records);
	tcase_add_test(tc, test_write_records_wronly);
	tcase_add_test(tc, test_append_records);
	tcase_add_test(tc, test_append_records_with_cursor_moves);
	tcase_add_test(tc, test_cursor_advances_not_lost);
	suite_add_tcase(s, tc);

	tc = tu_tcase("positional", 60);
	tcase_add_test(tc, test_readat_writeat_disjoint);
	tcase_add_test(tc, test_readers_during_growth);
	tcase_add_test(tc, test_truncate_not_starved);
	tcase_add_test(tc, test_sync_through_signals);
	suite_add_tcase(s, tc);

	tc = tu_tcase("stress", 120);
	tcase_add_test(tc, test_stress_every_call);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
