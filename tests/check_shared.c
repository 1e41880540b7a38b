/* check_shared.c - a file shared with other processes stays what write(2)
 * would make of it (spec, semantics points 8, 12, 13 and 14).
 *
 *   - another process cuts the file to a length inside a page the handle
 *     keeps mapped, then the handle writes: the file is what the same calls
 *     on a plain descriptor make of it (a twin file is the oracle);
 *   - a handle inherited through fork(2): the child closing (or using) its
 *     copy never cuts what the parent writes;
 *   - O_APPEND handles in several processes, with write(2) on an O_APPEND
 *     descriptor beside them: whole records, no zero bytes between them,
 *     none lost, each writer's in its own order;
 *   - a writer killed with SIGKILL leaves at most one bounded step (2 MiB)
 *     of zeros past what it wrote, and an O_APPEND handle opened afterwards
 *     appends at the file's length;
 *   - files whose size the kernel does not report (procfs, sysfs) read as
 *     read(2) reads them, or the open fails with ENODEV. */
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
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)

/* ---- helpers ---- */

/* The file p must be byte for byte the file q (the twin). */
static void same_file(const char *p, const char *q, const char *what)
{
	size_t n1, n2;
	unsigned char *a = tu_read_file(p, &n1), *b = tu_read_file(q, &n2);
	ck_assert_msg(n1 == n2, "%s: the file is %zu bytes, the descriptor's twin %zu", what, n1, n2);
	size_t d = tu_first_diff(a, b, n1);
	ck_assert_msg(d == n1, "%s: byte %zu is %#x, the twin's %#x", what, d, a[d], b[d]);
	free(a);
	free(b);
}

/* Read one byte from a child's pipe; anything other than want is the
 * child's failure message (tu_child_reports_to), or its end. */
static void expect_from(int fd, char want, pid_t pid, const char *who)
{
	char c = 0;
	ssize_t r = read(fd, &c, 1);
	if (r == 1 && c == want)
		return;
	char msg[800] = "";
	size_t n = 0;
	if (r == 1)
		msg[n++] = c;
	while (n < sizeof msg - 1 && (r = read(fd, msg + n, sizeof msg - 1 - n)) > 0)
		n += (size_t)r;
	msg[n] = 0;
	int st = tu_wait(pid);
	char w[8] = "nothing";
	if (want)
		snprintf(w, sizeof w, "'%c'", want);
	ck_abort_msg("%s: expected %s, got \"%s\" (child status %#x)", who, w, msg, st);
}

/* Send c to a child; when it is gone, its message. */
static void send_to(int to, int from, char c, pid_t pid, const char *who)
{
	if (write(to, &c, 1) != 1)
		expect_from(from, 0, pid, who);
}

/* ---- 1. a cut inside the last page, then a write ---- */

static const struct cut_case {
	const char *name;
	size_t initial;   /* bytes written through the handle first */
	off_t cut;        /* another process cuts the file to this */
	off_t at;         /* -1: mmapfile_write at the cursor; else writeat here */
	size_t n;         /* bytes written after the cut */
} cut_cases[] = {
	{ "10 bytes, cut to 10, write at the cursor", 10, 10, -1, 3 },
	{ "10 bytes, cut to 5, write at the cursor", 10, 5, -1, 3 },
	{ "10000 bytes, cut to 5000, write at the cursor", 10000, 5000, -1, 3 },
	{ "10000 bytes, cut to 5000, writeat 5000", 10000, 5000, 5000, 3 },
	{ "10000 bytes, cut to 5000, writeat 6000 (a gap)", 10000, 5000, 6000, 3 },
	{ "10000 bytes, cut to 5000, writeat 4990 (across the cut)", 10000, 5000, 4990, 20 },
	{ "70000 bytes, cut to 69000, write at the cursor", 70000, 69000, -1, 100 },
	{ "70000 bytes, cut to 66000, writeat 67000", 70000, 66000, 67000, 100 },
};
#define NCUT ((int)(sizeof cut_cases / sizeof cut_cases[0]))

/* _i: case * 4 + (sync before close) * 2 + (the file existed before the
 * open: the handle has no reserve of its own making). */
START_TEST(test_cut_in_last_page)
{
	const struct cut_case *c = &cut_cases[_i / 4];
	bool do_sync = (_i / 2) % 2, existed = _i % 2;
	const char *p = tu_path("f"), *q = tu_path("twin");
	unsigned char *data = tu_random_bytes(c->initial, (uint64_t)_i + 1);
	unsigned char w[100];
	tu_fill(w, sizeof w, 77);
	ck_assert_uint_le(c->n, sizeof w);
	if (existed) {
		/* Written by someone else; the handle only moves its cursor. */
		tu_write_file(p, data, c->initial);
	}
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | (existed ? 0 : O_TRUNC), 0644);
	ck_assert_msg(f != NULL, "open: %s", strerror(errno));
	int fd = open(q, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	if (existed) {
		ck_assert_int_eq(mmapfile_seek(f, (off_t)c->initial, SEEK_SET), (off_t)c->initial);
		/* Touch the mapping (a small file is mapped by its first write). */
		ck_assert_int_eq(mmapfile_writeat(f, data, 1, 0), 1);
	} else {
		ck_assert_int_eq(mmapfile_write(f, data, c->initial), (ssize_t)c->initial);
	}
	ck_assert_int_eq(write(fd, data, c->initial), (ssize_t)c->initial);

	tu_truncate_by_other(p, c->cut);
	ck_assert_int_eq(ftruncate(fd, c->cut), 0);

	ssize_t want, got;
	if (c->at < 0) {
		want = write(fd, w, c->n);
		got = mmapfile_write(f, w, c->n);
		ck_assert_msg(got == want, "%s: mmapfile_write: %zd (%s), write(2): %zd", c->name, got,
		              strerror(errno), want);
		ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), lseek(fd, 0, SEEK_CUR));
	} else {
		want = pwrite(fd, w, c->n, c->at);
		got = mmapfile_writeat(f, w, c->n, c->at);
		ck_assert_msg(got == want, "%s: mmapfile_writeat: %zd (%s), pwrite(2): %zd", c->name, got,
		              strerror(errno), want);
	}
	/* Reading back through the handle gives the descriptor's bytes. */
	off_t len = tu_fd_size(fd);
	unsigned char *a = tu_xmalloc((size_t)len), *b = tu_xmalloc((size_t)len);
	ck_assert_int_eq(pread(fd, b, (size_t)len, 0), len);
	ssize_t r = mmapfile_readat(f, a, (size_t)len, 0);
	ck_assert_msg(r == len, "%s: readat of the whole file: %zd, the twin has %lld", c->name, r,
	              (long long)len);
	size_t d = tu_first_diff(a, b, (size_t)len);
	ck_assert_msg(d == (size_t)len, "%s: byte %zu read back is %#x, the twin's %#x", c->name, d, a[d],
	              b[d]);
	free(a);
	free(b);
	if (do_sync)
		ck_assert_msg(mmapfile_sync(f) == 0, "%s: sync: %s", c->name, strerror(errno));
	ck_assert_msg(mmapfile_close(f) == 0, "%s: close: %s", c->name, strerror(errno));
	close(fd);
	char what[200];
	snprintf(what, sizeof what, "%s (%s, %s)", c->name, do_sync ? "sync, close" : "close",
	         existed ? "file existed" : "written by the handle");
	same_file(p, q, what);
	free(data);
}
END_TEST

/* The exact case of the finding, spelled out. */
START_TEST(test_cut_to_length_then_append)
{
	const char *p = tu_path("f");
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, "0123456789", 10), 10);
	tu_truncate_by_other(p, 10);
	ck_assert_int_eq(mmapfile_write(f, "abc", 3), 3);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *a = tu_read_file(p, &n);
	ck_assert_msg(n == 13, "the file is %zu bytes, want 13 (\"0123456789abc\")", n);
	ck_assert_mem_eq(a, "0123456789abc", 13);
	free(a);
}
END_TEST

/* ---- 2. a handle inherited through fork ---- */

enum fork_child { FC_CLOSE, FC_WRITE_CLOSE, FC_EXIT, FC_WRITE_EXIT, FC_COUNT };
static const char *const fork_child_name[] = {
	"the child closes", "the child writes, then closes", "the child exits without closing",
	"the child writes, then exits without closing",
};

START_TEST(test_fork_child_close)
{
	enum fork_child how = (enum fork_child)_i;
	const char *p = tu_path("f"), *q = tu_path("twin");
	const char first[] = "first-14-bytes", child_at[] = "CHILD", child_app[] = "child-appended!";
	const char second[] = "and-thirty-more-bytes-parent!!";
	ck_assert_uint_eq(strlen(first), 14);
	ck_assert_uint_eq(strlen(second), 30);

	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, first, 14), 14);
	pid_t pid = tu_fork();
	if (pid == 0) {
		int rc = 0;
		if (how == FC_WRITE_CLOSE || how == FC_WRITE_EXIT) {
			if (mmapfile_writeat(f, child_at, 5, 2) != 5)
				rc |= 2;
			if (mmapfile_write(f, child_app, 15) != 15)
				rc |= 4;
		}
		if ((how == FC_CLOSE || how == FC_WRITE_CLOSE) && mmapfile_close(f) != 0)
			rc |= 8;
		_exit(rc);
	}
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %#x", fork_child_name[how],
	              st);

	off_t c0 = mmapfile_seek(f, 0, SEEK_CUR);
	ck_assert_int_eq(c0, 14);
	ssize_t r = mmapfile_write(f, second, 30);
	ck_assert_msg(r == 30, "%s: the parent's write: %zd (%s)", fork_child_name[how], r, strerror(errno));
	ck_assert_msg(mmapfile_close(f) == 0, "%s: the parent's close: %s", fork_child_name[how],
	              strerror(errno));

	/* The twin: the same bytes, each where the handle that wrote it put it
	 * (a child's copy of the handle has a cursor of its own). */
	int fd = open(q, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, first, 14, 0), 14);
	if (how == FC_WRITE_CLOSE || how == FC_WRITE_EXIT) {
		ck_assert_int_eq(pwrite(fd, child_at, 5, 2), 5);
		ck_assert_int_eq(pwrite(fd, child_app, 15, 14), 15);
	}
	ck_assert_int_eq(pwrite(fd, second, 30, c0), 30);
	close(fd);
	same_file(p, q, fork_child_name[how]);
}
END_TEST

/* ---- 3. O_APPEND from several processes ---- */

#define REC 8
#define LOCKSTEP 100 /* records each writer appends in turn, one at a time */

static const struct appender {
	char tag;
	int flags;   /* for mmapfile_open; 0: write(2) on an O_APPEND descriptor */
	int records;
} appenders[] = {
	{ 'A', O_WRONLY | O_APPEND | O_CREAT, 2000 },
	{ 'B', O_RDWR | O_APPEND | O_CREAT, 2000 },
	{ 'W', 0, 200 },
};
#define NAPP 3

static void record(char *out, char tag, int seq)
{
	char buf[16];
	snprintf(buf, sizeof buf, "%c%07d", tag, seq);
	memcpy(out, buf, REC);
}

/* A writer: R when open; one record per token (lockstep); F starts the
 * rest; D when done; C closes; X when closed. */
static void appender_child(const char *p, const struct appender *a, int in, int out)
{
	tu_child_reports_to(out);
	mmapfile_t *f = NULL;
	int fd = -1;
	if (a->flags) {
		f = mmapfile_open(p, a->flags, 0644);
		TU_CCHECK(f != NULL, "%c: open: %s", a->tag, strerror(errno));
	} else {
		fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
		TU_CCHECK(fd >= 0, "%c: open: %s", a->tag, strerror(errno));
	}
	TU_CCHECK(write(out, "R", 1) == 1, "pipe");
	char c, rec[REC];
	for (int i = 0; i < a->records; i++) {
		if (i < LOCKSTEP)
			TU_CCHECK(read(in, &c, 1) == 1 && c == 'T', "%c: no token for record %d", a->tag, i);
		else if (i == LOCKSTEP)
			TU_CCHECK(read(in, &c, 1) == 1 && c == 'F', "%c: no go", a->tag);
		record(rec, a->tag, i);
		ssize_t r = f ? mmapfile_write(f, rec, REC) : write(fd, rec, REC);
		TU_CCHECK(r == REC, "%c: record %d: %zd (%s)", a->tag, i, r, strerror(errno));
		if (i < LOCKSTEP)
			TU_CCHECK(write(out, "k", 1) == 1, "pipe");
	}
	TU_CCHECK(write(out, "D", 1) == 1, "pipe");
	TU_CCHECK(read(in, &c, 1) == 1 && c == 'C', "%c: no close", a->tag);
	if (f)
		TU_CCHECK(mmapfile_close(f) == 0, "%c: close: %s", a->tag, strerror(errno));
	else
		close(fd);
	TU_CCHECK(write(out, "X", 1) == 1, "pipe");
	_exit(0);
}

/* Records [0, n) of buf: each whole and each writer's in order.  counts[k]
 * gets how many of appenders[k]'s were seen. */
static void check_records(const unsigned char *buf, size_t n, int counts[NAPP], const char *when)
{
	ck_assert_msg(n % REC == 0, "%s: %zu bytes of records, not a whole number of records", when, n);
	for (int k = 0; k < NAPP; k++)
		counts[k] = 0;
	for (size_t o = 0; o < n; o += REC) {
		int k;
		for (k = 0; k < NAPP && appenders[k].tag != (char)buf[o]; k++)
			;
		char want[REC];
		ck_assert_msg(k < NAPP, "%s: the record at %zu is \"%.8s\": no writer's", when, o,
		              (const char *)buf + o);
		record(want, appenders[k].tag, counts[k]);
		ck_assert_msg(memcmp(buf + o, want, REC) == 0,
		              "%s: the record at %zu is \"%.8s\", writer %c's next is \"%.8s\"", when, o,
		              (const char *)buf + o, appenders[k].tag, want);
		counts[k]++;
	}
}

START_TEST(test_append_processes)
{
	const char *p = tu_path("f");
	tu_write_file(p, "", 0);
	signal(SIGPIPE, SIG_IGN); /* a writer that failed: its message, not a signal */
	int to[NAPP][2], from[NAPP][2];
	pid_t pids[NAPP];
	for (int k = 0; k < NAPP; k++) {
		ck_assert_int_eq(pipe(to[k]), 0);
		ck_assert_int_eq(pipe(from[k]), 0);
		pids[k] = tu_fork();
		if (pids[k] == 0) {
			/* The parent's ends (it closed the children's ends of
			 * earlier pipes already). */
			for (int j = 0; j <= k; j++) {
				close(to[j][1]);
				close(from[j][0]);
			}
			appender_child(p, &appenders[k], to[k][0], from[k][1]);
		}
		close(to[k][0]);
		close(from[k][1]);
	}
	for (int k = 0; k < NAPP; k++)
		expect_from(from[k][0], 'R', pids[k], "open");
	/* In turn: A, B, W, A, B, W, ... each record after the other's. */
	for (int i = 0; i < LOCKSTEP; i++)
		for (int k = 0; k < NAPP; k++) {
			send_to(to[k][1], from[k][0], 'T', pids[k], "a token");
			expect_from(from[k][0], 'k', pids[k], "a record in turn");
		}
	/* Then all at once. */
	for (int k = 0; k < NAPP; k++)
		send_to(to[k][1], from[k][0], 'F', pids[k], "go");
	for (int k = 0; k < NAPP; k++)
		expect_from(from[k][0], 'D', pids[k], "done");

	/* Every handle still open: the file holds the records, then at most
	 * one step of zeros (spec point 8), never zeros between records. */
	size_t total = 0;
	for (int k = 0; k < NAPP; k++)
		total += (size_t)appenders[k].records * REC;
	size_t n;
	unsigned char *buf = tu_read_file(p, &n);
	size_t end = n;
	while (end > 0 && buf[end - 1] == 0)
		end--;
	unsigned char *nul = memchr(buf, 0, end);
	ck_assert_msg(nul == NULL,
	              "with the handles open: a zero byte at %td, before the last record's end %zu "
	              "(file %zu bytes, %zu bytes of records)",
	              nul - buf, end, n, total);
	ck_assert_msg(n - end <= (size_t)(2 * MiB), "with the handles open: %zu zero bytes at the end",
	              n - end);
	int counts[NAPP];
	check_records(buf, end, counts, "with the handles open");
	ck_assert_msg(end == total, "with the handles open: %zu bytes of records, %zu written", end, total);
	free(buf);

	for (int k = 0; k < NAPP; k++)
		send_to(to[k][1], from[k][0], 'C', pids[k], "close");
	for (int k = 0; k < NAPP; k++) {
		expect_from(from[k][0], 'X', pids[k], "close");
		int st = tu_wait(pids[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %c: status %#x", appenders[k].tag,
		              st);
		close(to[k][1]);
		close(from[k][0]);
	}

	buf = tu_read_file(p, &n);
	ck_assert_msg(n == total, "after close: the file is %zu bytes, %zu were appended", n, total);
	nul = memchr(buf, 0, n);
	ck_assert_msg(nul == NULL, "after close: a zero byte at %td", nul - buf);
	check_records(buf, n, counts, "after close");
	for (int k = 0; k < NAPP; k++)
		ck_assert_msg(counts[k] == appenders[k].records, "writer %c: %d records in the file, %d written",
		              appenders[k].tag, counts[k], appenders[k].records);
	free(buf);
}
END_TEST

/* ---- 4. a writer killed with SIGKILL ---- */

static const struct kill_case {
	const char *name;
	size_t total, chunk;
} kill_cases[] = {
	{ "20 MB in 64 KiB writes", 20 * 1000 * 1000, 64 * 1024 },
	{ "5 MB in 64-byte records", 5 * 1000 * 1000, 64 },
};

START_TEST(test_killed_writer)
{
	const struct kill_case *c = &kill_cases[_i];
	const char *p = tu_path("f");
	unsigned char *data = tu_random_bytes(c->total, 4242 + (uint64_t)_i);
	int rep[2], hold[2];
	ck_assert_int_eq(pipe(rep), 0);
	ck_assert_int_eq(pipe(hold), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(rep[0]);
		close(hold[1]);
		tu_child_reports_to(rep[1]);
		mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
		TU_CCHECK(f != NULL, "open: %s", strerror(errno));
		size_t done = 0;
		while (done < c->total) {
			size_t n = c->total - done < c->chunk ? c->total - done : c->chunk;
			ssize_t r = mmapfile_write(f, data + done, n);
			TU_CCHECK(r == (ssize_t)n, "write at %zu: %zd (%s)", done, r, strerror(errno));
			done += n;
		}
		dprintf(rep[1], "OK %zu\n", done);
		char ch;
		(void)!read(hold[0], &ch, 1); /* until killed */
		_exit(3);
	}
	close(rep[1]);
	close(hold[0]);
	char msg[800];
	size_t m = 0;
	ssize_t r;
	while (m < sizeof msg - 1 && (r = read(rep[0], msg + m, sizeof msg - 1 - m)) > 0) {
		m += (size_t)r;
		if (memchr(msg, '\n', m))
			break;
	}
	msg[m] = 0;
	size_t written = 0;
	if (sscanf(msg, "OK %zu", &written) != 1) {
		kill(pid, SIGKILL);
		int st = tu_wait(pid);
		ck_abort_msg("%s: the writer: \"%s\" (status %#x)", c->name, msg, st);
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int st = tu_wait(pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
	close(rep[0]);
	close(hold[1]);
	ck_assert_uint_eq(written, c->total);

	size_t n;
	unsigned char *buf = tu_read_file(p, &n);
	ck_assert_msg(n >= written, "%s: the file is %zu bytes, %zu were written", c->name, n, written);
	ck_assert_msg(n <= written + (size_t)(2 * MiB),
	              "%s: the killed writer left %zu bytes past the %zu it wrote (at most 2 MiB)", c->name,
	              n - written, written);
	size_t d = tu_first_diff(buf, data, written);
	ck_assert_msg(d == written, "%s: byte %zu of what was written differs", c->name, d);
	for (size_t i = written; i < n; i++)
		ck_assert_msg(buf[i] == 0, "%s: byte %zu past the writes is %#x, not zero", c->name, i, buf[i]);
	free(buf);

	/* An O_APPEND handle appends at the file's length, as write(2) on an
	 * O_APPEND descriptor would. */
	mmapfile_t *f = mmapfile_open(p, O_WRONLY | O_APPEND, 0);
	ck_assert_msg(f != NULL, "open O_WRONLY|O_APPEND: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_write(f, "APPENDED", 8), 8);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), (off_t)n + 8);
	f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_size(f), (off_t)n + 8);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n2;
	buf = tu_read_file(p, &n2);
	ck_assert_msg(n2 == n + 8, "after a reopen: %zu bytes, want %zu", n2, n + 8);
	ck_assert_mem_eq(buf + n, "APPENDED", 8);
	ck_assert_uint_eq(tu_first_diff(buf, data, written), written);
	free(buf);
	free(data);
}
END_TEST

/* ---- 5. files whose size the kernel does not report ---- */

/* All of a file through read(2); NULL when it cannot be opened. */
static unsigned char *read_all_fd(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	unsigned char *buf = tu_xmalloc(cap);
	ssize_t r;
	for (;;) {
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		ck_assert_ptr_nonnull(buf);
		r = read(fd, buf + len, cap - len);
		ck_assert_msg(r >= 0, "read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*n = len;
	return buf;
}

/* All of a file through a handle: NULL with errno when the open fails; a
 * failed read fails the test. */
static unsigned char *read_all_handle(const char *path, size_t *n)
{
	mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	unsigned char *buf = tu_xmalloc(cap);
	for (;;) {
		if (cap - len < 1000)
			buf = realloc(buf, cap *= 2);
		ck_assert_ptr_nonnull(buf);
		ssize_t r = mmapfile_read(f, buf + len, 1000);
		ck_assert_msg(r >= 0, "mmapfile_read %s at %zu: %s", path, len, strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	*n = len;
	return buf;
}

/* Drop the lines that start with prefix (values that change between two
 * reads, such as "cpu MHz"). */
static size_t drop_lines(unsigned char *buf, size_t n, const char *prefix)
{
	size_t out = 0, plen = strlen(prefix);
	for (size_t i = 0; i < n;) {
		unsigned char *nl = memchr(buf + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - buf) + 1 : n;
		if (!(e - i >= plen && memcmp(buf + i, prefix, plen) == 0)) {
			memmove(buf + out, buf + i, e - i);
			out += e - i;
		}
		i = e;
	}
	return out;
}

enum pseudo_check { PS_EXACT, PS_FIRST_LINE, PS_LENGTH };

static const struct pseudo_case {
	const char *path;
	enum pseudo_check check;
} pseudo_cases[] = {
	{ "/proc/self/status", PS_FIRST_LINE }, /* its values change from one read to the next */
	{ "/proc/cpuinfo", PS_EXACT },
	{ "/proc/self/maps", PS_LENGTH },       /* the handle maps, so this process's maps change */
	{ "/proc/version", PS_EXACT },
};

static bool check_pseudo(const char *path, enum pseudo_check how)
{
	size_t nfd;
	unsigned char *want = read_all_fd(path, &nfd);
	if (!want)
		return false;
	if (nfd == 0) {
		/* Nothing to compare with (some sysfs files in a container). */
		printf("%s: read(2) gives nothing: not checked\n", path);
		free(want);
		errno = ENODATA;
		return false;
	}
	size_t n;
	errno = 0;
	unsigned char *got = read_all_handle(path, &n);
	if (!got) {
		ck_assert_msg(errno == ENODEV, "%s: the open failed with %s, not ENODEV", path, strerror(errno));
		printf("%s: ENODEV\n", path);
		free(want);
		return true;
	}
	ck_assert_msg(n > 0, "%s: the open succeeded and reading it gives 0 bytes; read(2) gives %zu", path,
	              nfd);
	switch (how) {
	case PS_EXACT:
		nfd = drop_lines(want, nfd, "cpu MHz");
		n = drop_lines(got, n, "cpu MHz");
		ck_assert_msg(n == nfd, "%s: %zu bytes through the handle, %zu through read(2)", path, n, nfd);
		ck_assert_msg(memcmp(got, want, n) == 0, "%s: the bytes differ from read(2)'s (first at %zu)",
		              path, tu_first_diff(got, want, n));
		break;
	case PS_FIRST_LINE: {
		unsigned char *e = memchr(want, '\n', nfd);
		size_t l = e ? (size_t)(e - want) + 1 : nfd;
		ck_assert_msg(n >= l && memcmp(got, want, l) == 0, "%s: the first line differs from read(2)'s",
		              path);
	}
		/* fall through */
	case PS_LENGTH:
		ck_assert_msg(n >= nfd / 2 && n <= nfd * 2,
		              "%s: %zu bytes through the handle, %zu through read(2)", path, n, nfd);
		ck_assert_msg(got[n - 1] == '\n', "%s: the handle's text does not end with a newline", path);
		break;
	}
	printf("%s: %zu bytes, as read(2)\n", path, n);
	free(want);
	free(got);
	return true;
}

START_TEST(test_procfs)
{
	const struct pseudo_case *c = &pseudo_cases[_i];
	if (!check_pseudo(c->path, c->check))
		printf("SKIPPED: %s cannot be read: %s\n", c->path, strerror(errno));
}
END_TEST

START_TEST(test_sysfs)
{
	static const char *const candidates[] = {
		"/sys/kernel/mm/transparent_hugepage/enabled",
		"/sys/devices/system/cpu/online",
		"/sys/kernel/mm/transparent_hugepage/defrag",
		"/sys/power/state",
	};
	int checked = 0;
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
		if (check_pseudo(candidates[i], PS_EXACT))
			checked++;
	if (!checked)
		printf("SKIPPED: none of the sysfs files tried can be read\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shared");
	TCase *tc = tu_tcase("cut", 30);
	tcase_add_test(tc, test_cut_to_length_then_append);
	tcase_add_loop_test(tc, test_cut_in_last_page, 0, NCUT * 4);
	suite_add_tcase(s, tc);
	tc = tu_tcase("fork", 30);
	tcase_add_loop_test(tc, test_fork_child_close, 0, FC_COUNT);
	suite_add_tcase(s, tc);
	tc = tu_tcase("append", 30);
	tcase_add_test(tc, test_append_processes);
	suite_add_tcase(s, tc);
	tc = tu_tcase("killed", 60);
	tcase_add_loop_test(tc, test_killed_writer, 0, (int)(sizeof kill_cases / sizeof kill_cases[0]));
	suite_add_tcase(s, tc);
	tc = tu_tcase("pseudo", 30);
	tcase_add_loop_test(tc, test_procfs, 0, (int)(sizeof pseudo_cases / sizeof pseudo_cases[0]));
	tcase_add_test(tc, test_sysfs);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
