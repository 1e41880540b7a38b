/* check_crash.c - a writer killed with SIGKILL loses nothing it reported.
 *
 * A child process opens a file with mmapfile and makes a deterministic random
 * sequence of writes, writeats, seeks, truncates and syncs.  After each
 * report point (each successful mmapfile_sync, or, in some variants, every
 * call) it tells the parent, through a pipe, how far it got.  The parent
 * kills it with SIGKILL at a random moment (after the k-th report, plus a
 * random delay), replays the same sequence on a plain memory model, and
 * requires of the file:
 *
 *   - every byte of the state at the last report that no later call of the
 *     window (the calls up to the next report point) touched is on disk and
 *     equal;
 *   - every byte is a value the file held at the last report or after one of
 *     the window's calls: calls after the last report may or may not have
 *     happened (the one in progress in part), but nothing else appears;
 *   - past the logical size the file holds only zeros: no close ran, so the
 *     zero-filled reserve of a writing handle may still be there (DESIGN.md:
 *     "Bytes in the reserve are zeros"), and it is no longer than the
 *     reserve's geometric growth allows (double, at least 64 KiB a step);
 *   - the file reopens, and the handle reads exactly what is on disk.
 *
 * What this tests, and what not: the page cache survives the death of a
 * process (not a power loss), so every write the child made through its
 * mapping or pwrite(2) is in the file whether it synced or not.  The test
 * therefore checks the library's own bookkeeping: nothing it defers and
 * would lose on a kill (a pending trim or cut, data held outside the file,
 * a size it records only in memory), and nothing it leaves behind that is
 * not the file's data (stale bytes past the size, a reserve of garbage).
 * The durability of a sync against power loss is not tested here.
 *
 * With a report after every call, the window is a single call: then every
 * call that returned must be in the file (the man pages: "the data is in the
 * file as soon as the call returns"). */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

enum op_kind { OP_WRITE, OP_WRITEAT, OP_SEEK, OP_TRUNCATE, OP_SYNC };
static const char *const op_names[] = { "write", "writeat", "seek", "truncate", "sync" };

struct op {
	enum op_kind kind;
	off_t off;   /* writeat, seek; truncate: the new size */
	size_t n;    /* write, writeat */
};

static const struct variant {
	const char *name;
	int flags;          /* O_APPEND or 0 */
	bool report_each;   /* report after every call, not only after syncs */
	int sync_pct;       /* chance of a sync, in percent */
	int append_pct;     /* chance that a write goes at the end (seek first) */
	int nops;
	size_t max_size;    /* the logical size stays below this */
	size_t small_max;   /* most writes: 1 .. small_max bytes */
	size_t big_max;     /* big_pct of them: 16 KiB .. big_max (the pwrite path) */
	int big_pct;
	int iterations;
} variants[] = {
	{ "sync", 0, false, 8, 20, 300, 512 * KiB, 6000, 96 * KiB, 5, 30 },
	{ "nosync", 0, true, 0, 20, 300, 512 * KiB, 6000, 96 * KiB, 5, 30 },
	{ "append", O_APPEND, false, 8, 100, 300, 512 * KiB, 6000, 96 * KiB, 5, 20 },
	{ "append-each", O_APPEND, true, 5, 100, 300, 512 * KiB, 6000, 96 * KiB, 5, 15 },
	{ "grow", 0, false, 6, 90, 150, 4 * MiB, 40000, 256 * KiB, 20, 10 },
	{ "grow-each", 0, true, 4, 90, 150, 4 * MiB, 40000, 256 * KiB, 20, 6 },
};

/* The bytes a write or writeat of call i writes. */
static uint64_t data_seed(uint64_t seed, int i)
{
	return seed * 1000003u + (uint64_t)i;
}

/* The sequence, made from the seed with a model of the size and cursor
 * (the contents are not needed to choose the calls). */
static struct op *make_ops(const struct variant *v, uint64_t seed, size_t *init_size)
{
	struct op *ops = calloc((size_t)v->nops, sizeof *ops);
	ck_assert_ptr_nonnull(ops);
	uint64_t rng = seed;
	off_t size = (off_t)(tu_rand(&rng) % (64 * KiB)), cursor = 0;
	*init_size = (size_t)size;
	for (int i = 0; i < v->nops; i++) {
		struct op *o = &ops[i];
		unsigned r = (unsigned)(tu_rand(&rng) % 100);
		size_t n = 1 + tu_rand(&rng) % v->small_max;
		if ((int)(tu_rand(&rng) % 100) < v->big_pct)
			n = 16 * KiB + tu_rand(&rng) % (v->big_max - 16 * KiB);
		off_t roam = (off_t)(tu_rand(&rng) % (uint64_t)(size + 16 * (off_t)KiB));
		if ((int)r < v->sync_pct) {
			o->kind = OP_SYNC;
		} else if (r < 94 && (size_t)size + n > v->max_size) {
			/* Keep the file bounded: cut it back. */
			o->kind = OP_TRUNCATE;
			o->off = (off_t)(tu_rand(&rng) % (v->max_size / 2));
		} else if (r < 70) {
			/* At the cursor; some at the end, as appends are.  (With
			 * O_APPEND every write is at the end anyway.) */
			if (!(v->flags & O_APPEND) && (int)(tu_rand(&rng) % 100) < v->append_pct &&
			    cursor != size) {
				o->kind = OP_SEEK;
				o->off = size;
			} else {
				o->kind = OP_WRITE;
				o->n = n;
			}
		} else if (r < 82) {
			if (v->flags & O_APPEND) { /* writeat is EINVAL there */
				o->kind = OP_SEEK;
				o->off = roam;
			} else {
				o->kind = OP_WRITEAT;
				o->off = roam;
				o->n = n;
			}
		} else if (r < 88) {
			o->kind = OP_SEEK;
			o->off = roam;
		} else {
			o->kind = OP_TRUNCATE;
			uint64_t t = tu_rand(&rng);
			off_t shrink = size - (off_t)(t % (uint64_t)(size / 4 + 1));
			off_t grow = size + (off_t)(t % (64 * KiB));
			o->off = (t >> 40) & 1 ? shrink : grow;
			if ((size_t)o->off > v->max_size)
				o->off = size;
		}
		/* The model. */
		switch (o->kind) {
		case OP_WRITE: {
			off_t at = (v->flags & O_APPEND) ? size : cursor;
			if (at + (off_t)o->n > size)
				size = at + (off_t)o->n;
			cursor = at + (off_t)o->n;
			break;
		}
		case OP_WRITEAT:
			if (o->off + (off_t)o->n > size)
				size = o->off + (off_t)o->n;
			break;
		case OP_SEEK:
			cursor = o->off;
			break;
		case OP_TRUNCATE:
			size = o->off;
			break;
		case OP_SYNC:
			break;
		}
	}
	return ops;
}

/* ---- the child ---- */

struct rec {
	int32_t idx; /* the call just done; nops: all done */
	int32_t err; /* nonzero: the call failed with this errno */
};

static void send_rec(int fd, int idx, int err)
{
	struct rec r = { idx, err };
	if (write(fd, &r, sizeof r) != sizeof r)
		_exit(4);
}

static void child(const struct variant *v, const char *path, const struct op *ops, uint64_t seed,
                  int wfd)
{
	unsigned char *buf = malloc(v->big_max > v->small_max ? v->big_max : v->small_max);
	mmapfile_t *f = mmapfile_open(path, O_RDWR | v->flags, 0);
	if (!f || !buf) {
		send_rec(wfd, -1, errno ? errno : ENOMEM);
		_exit(3);
	}
	for (int i = 0; i < v->nops; i++) {
		const struct op *o = &ops[i];
		bool ok = true;
		switch (o->kind) {
		case OP_WRITE:
			tu_fill(buf, o->n, data_seed(seed, i));
			ok = mmapfile_write(f, buf, o->n) == (ssize_t)o->n;
			break;
		case OP_WRITEAT:
			tu_fill(buf, o->n, data_seed(seed, i));
			ok = mmapfile_writeat(f, buf, o->n, o->off) == (ssize_t)o->n;
			break;
		case OP_SEEK:
			ok = mmapfile_seek(f, o->off, SEEK_SET) == o->off;
			break;
		case OP_TRUNCATE:
			ok = mmapfile_truncate(f, o->off) == 0;
			break;
		case OP_SYNC:
			ok = mmapfile_sync(f) == 0;
			break;
		}
		if (!ok) {
			send_rec(wfd, i, errno ? errno : -1);
			_exit(3);
		}
		if (v->report_each || o->kind == OP_SYNC)
			send_rec(wfd, i, 0);
	}
	send_rec(wfd, v->nops, 0);
	for (;;) /* wait for the kill; never close */
		pause();
}

/* ---- the model and the check ---- */

struct model {
	unsigned char *b;
	size_t cap;
	size_t size;
	off_t cursor;
};

/* Apply call i; return the range [*lo, *hi) whose bytes (zero past the
 * size) changed. */
static void apply(struct model *m, const struct variant *v, const struct op *o, int i,
                  uint64_t seed, size_t *lo, size_t *hi)
{
	*lo = *hi = 0;
	switch (o->kind) {
	case OP_WRITE:
	case OP_WRITEAT: {
		size_t at = o->kind == OP_WRITEAT ? (size_t)o->off
		            : (v->flags & O_APPEND) ? m->size : (size_t)m->cursor;
		ck_assert_uint_le(at + o->n, m->cap);
		if (at > m->size)
			memset(m->b + m->size, 0, at - m->size);
		tu_fill(m->b + at, o->n, data_seed(seed, i));
		if (at + o->n > m->size)
			m->size = at + o->n;
		if (o->kind == OP_WRITE)
			m->cursor = (off_t)(at + o->n);
		*lo = at;
		*hi = at + o->n;
		break;
	}
	case OP_SEEK:
		m->cursor = o->off;
		break;
	case OP_TRUNCATE: {
		size_t to = (size_t)o->off;
		ck_assert_uint_le(to, m->cap);
		if (to < m->size) {
			*lo = to;
			*hi = m->size;
		} else {
			memset(m->b + m->size, 0, to - m->size);
		}
		m->size = to;
		break;
	}
	case OP_SYNC:
		break;
	}
}

static unsigned char ext(const struct model *m, size_t i)
{
	return i < m->size ? m->b[i] : 0;
}

/* Figures for the report. */
static unsigned long n_kills, n_no_report, n_done, n_bytes, n_reported_bytes, n_reserve,
	n_window_ops;

struct outcome {
	int last;     /* the last call reported done; -1: none */
	bool done;    /* the child reported the whole sequence */
	int reports;
};

/* Fork the child, kill it at a random moment chosen from rng. */
static struct outcome run_and_kill(const struct variant *v, const char *path, const struct op *ops,
                                   uint64_t seed, uint64_t *rng)
{
	int points = 0;
	for (int i = 0; i < v->nops; i++)
		points += v->report_each || ops[i].kind == OP_SYNC;
	int want = (int)(tu_rand(rng) % (uint64_t)(points + 1));
	long delay_us = want == 0 ? (long)(tu_rand(rng) % 3000) : (long)(tu_rand(rng) % 300);

	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(p[0]);
		child(v, path, ops, seed, p[1]);
		_exit(5);
	}
	close(p[1]);

	struct outcome out = { -1, false, 0 };
	int err_idx = 0, err = 0;
	bool eof = false;
	struct rec r;
	while (out.reports < want && !out.done && !err) {
		ssize_t k = read(p[0], &r, sizeof r);
		if (k == 0) {
			eof = true;
			break;
		}
		ck_assert_int_eq(k, (ssize_t)sizeof r);
		if (r.err) {
			err_idx = r.idx;
			err = r.err;
		} else if (r.idx == v->nops) {
			out.done = true;
		} else {
			out.last = r.idx;
			out.reports++;
		}
	}
	if (delay_us > 0) {
		struct timespec ts = { 0, delay_us * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	int st = tu_wait(pid);
	/* What it reported before it died. */
	while (!eof && read(p[0], &r, sizeof r) == (ssize_t)sizeof r) {
		if (r.err) {
			err_idx = r.idx;
			err = r.err;
		} else if (r.idx == v->nops) {
			out.done = true;
		} else {
			out.last = r.idx;
			out.reports++;
		}
	}
	close(p[0]);
	ck_assert_msg(!err, "the child's %s (call %d) failed: %s",
	              err_idx >= 0 ? op_names[ops[err_idx].kind] : "open", err_idx, strerror(err));
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	              "the child ended otherwise than by the kill: status %#x", st);
	return out;
}

/* One kill point: make the file, run, kill, check. */
static void one_run(const struct variant *v, uint64_t seed)
{
	const char *path = tu_path("f");
	size_t init_size;
	struct op *ops = make_ops(v, seed, &init_size);
	struct model m = { NULL, v->max_size + v->big_max + 128 * KiB, 0, 0 };
	m.b = calloc(1, m.cap);
	ck_assert_ptr_nonnull(m.b);
	m.size = init_size;
	tu_fill(m.b, init_size, seed ^ 0x5eed);
	tu_write_file(path, m.b, init_size);

	uint64_t rng = seed * 7 + 1;
	struct outcome out = run_and_kill(v, path, ops, seed, &rng);

	/* The state at the last report, and the window after it: up to the
	 * next report point (the child may have passed it and died before it
	 * could tell), or nothing when it reported everything. */
	int last = out.done ? v->nops - 1 : out.last;
	size_t lo, hi, max_size = m.size;
	for (int i = 0; i <= last; i++) {
		apply(&m, v, &ops[i], i, seed, &lo, &hi);
		if (m.size > max_size)
			max_size = m.size;
	}
	int wend = last;
	if (!out.done) {
		wend = last + 1;
		if (!v->report_each)
			while (wend < v->nops - 1 && ops[wend].kind != OP_SYNC)
				wend++;
		if (wend > v->nops - 1)
			wend = v->nops - 1;
	}
	n_kills++;
	n_no_report += out.reports == 0 && !out.done;
	n_done += out.done;
	n_window_ops += (unsigned long)(wend - last);
	n_reported_bytes += m.size;

	size_t flen;
	unsigned char *file = tu_read_file(path, &flen);
	unsigned char *ok = malloc(flen + 1);
	ck_assert_ptr_nonnull(ok);
	const size_t reported_size = m.size;
	size_t min_size = m.size;
	for (size_t i = 0; i < flen; i++)
		ok[i] = file[i] == ext(&m, i);
	for (int i = last + 1; i <= wend; i++) {
		apply(&m, v, &ops[i], i, seed, &lo, &hi);
		for (size_t k = lo; k < hi && k < flen; k++)
			ok[k] |= file[k] == ext(&m, k);
		if (m.size < min_size)
			min_size = m.size;
		if (m.size > max_size)
			max_size = m.size;
	}

	/* Not shorter than any state it may be in: what was reported and not
	 * cut since is there. */
	ck_assert_msg(flen >= min_size,
	              "%s seed %llu: the file has %zu bytes; at the last report (call %d) it had %zu, "
	              "and no later call before the next report point takes it below %zu",
	              v->name, (unsigned long long)seed, flen, last, reported_size, min_size);
	for (size_t i = 0; i < flen; i++)
		if (!ok[i])
			ck_abort_msg("%s seed %llu: byte %zu of %zu is %#x: neither the state at the "
			             "last report (call %d, size %zu) nor a call after it up to call %d "
			             "put it there%s",
			             v->name, (unsigned long long)seed, i, flen, file[i], last,
			             reported_size, wend,
			             i >= max_size ? " (past any size the file had: not zero)" : "");
	/* The reserve: at most one geometric step past the largest size. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t step = max_size > 64 * KiB ? max_size : 64 * KiB;
	size_t bound = (max_size + step + page - 1) / page * page;
	ck_assert_msg(flen <= bound, "%s seed %llu: the file has %zu bytes, its largest size was %zu",
	              v->name, (unsigned long long)seed, flen, max_size);
	if (flen > m.size)
		n_reserve++;
	n_bytes += flen;

	/* The file reopens, and the handle reads what is on disk. */
	mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_size(f), (off_t)flen);
	unsigned char *back = malloc(flen + 1);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(mmapfile_readat(f, back, flen + 1, 0), (ssize_t)flen);
	ck_assert_msg(memcmp(back, file, flen) == 0, "%s seed %llu: reopened, the handle reads "
	              "other bytes than read(2)", v->name, (unsigned long long)seed);
	ck_assert_int_eq(mmapfile_close(f), 0);

	free(back);
	free(ok);
	free(file);
	free(m.b);
	free(ops);
	ck_assert_int_eq(unlink(path), 0);
}

START_TEST(test_crash)
{
	const struct variant *v = &variants[_i];
	for (int it = 0; it < v->iterations; it++)
		one_run(v, 1 + (uint64_t)_i * 1000 + (uint64_t)it);
	if (getenv("MMAPFILE_TEST_FIGURES"))
		printf("%s: %lu kills (%lu before any report, %lu after the whole sequence), "
		       "%lu calls in windows, %lu files with a reserve left, %lu bytes checked, "
		       "%lu of them in reported states\n",
		       v->name, n_kills, n_no_report, n_done, n_window_ops, n_reserve, n_bytes,
		       n_reported_bytes);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tu_tcase("kill", 60);
	tcase_add_loop_test(tc, test_crash, 0, (int)(sizeof variants / sizeof variants[0]));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
