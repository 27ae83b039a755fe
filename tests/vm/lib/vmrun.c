// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmrun: the host side of the guest command agent (tests/vm/lib/agent.c), in C because it runs
 * once per scenario command and a Python start costs ~40 ms of a ~100 ms round trip.
 *
 *   vmrun ready AGENT TIMEOUT         wait for the agent's READY line, print it
 *   vmrun run AGENT TIMEOUT           run the shell script on stdin in the guest; its stdout and
 *                                     stderr are copied to ours, its exit code is ours
 *
 * AGENT is the path prefix of the QEMU pipe chardev: AGENT.in (to the guest), AGENT.out (from
 * it). Harness errors print "vmctl: ..." on stderr and exit 124 (timeout) or 125 (guest not
 * running or died), as tests/vm/lib/vmctl.py does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("vmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void grow(struct buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	b->cap = (b->len + more + 1) * 2;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		die(125, "out of memory");
}

static void add(struct buf *b, const void *s, size_t n)
{
	grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void encode(struct buf *b, const unsigned char *in, size_t n)
{
	size_t i;

	grow(b, n / 3 * 4 + 8);
	for (i = 0; i + 3 <= n; i += 3) {
		unsigned v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];

		b->p[b->len++] = b64[v >> 18];
		b->p[b->len++] = b64[(v >> 12) & 63];
		b->p[b->len++] = b64[(v >> 6) & 63];
		b->p[b->len++] = b64[v & 63];
	}
	if (i < n) {
		int two = n - i == 2;
		unsigned v = in[i] << 16 | (two ? in[i + 1] << 8 : 0);

		b->p[b->len++] = b64[v >> 18];
		b->p[b->len++] = b64[(v >> 12) & 63];
		b->p[b->len++] = two ? b64[(v >> 6) & 63] : '=';
		b->p[b->len++] = '=';
	}
	b->p[b->len] = 0;
}

/* Decode s[0..n) and write it to fd. */
static void decode_to(int fd, const char *s, size_t n)
{
	static signed char val[256];
	static int init;
	char out[4096];
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;

	if (!init) {
		memset(val, -1, sizeof(val));
		for (int i = 0; i < 64; i++)
			val[(unsigned char)b64[i]] = (signed char)i;
		init = 1;
	}
	for (size_t i = 0; i < n; i++) {
		int d = val[(unsigned char)s[i]];

		if (d < 0)
			continue;
		v = v << 6 | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((v >> bits) & 0xff);
			if (o == sizeof(out)) {
				if (write(fd, out, o) < 0)
					return;
				o = 0;
			}
		}
	}
	if (o && write(fd, out, o) < 0)
		return;
}

/* Read lines from fd until one starting with prefix; returns it (NUL-terminated, no '\n'). */
static char *wait_line(int fd, const char *prefix, double deadline, const char *what)
{
	static struct buf in;
	size_t plen = strlen(prefix), start = 0;

	for (;;) {
		char *nl;

		while (in.len > start && (nl = memchr(in.p + start, '\n', in.len - start))) {
			char *line = in.p + start;

			*nl = 0;
			start = (size_t)(nl - in.p) + 1;
			if (!strncmp(line, prefix, plen))
				return line;
		}
		if (start) {
			memmove(in.p, in.p + start, in.len - start);
			in.len -= start;
			start = 0;
		}
		double left = deadline - now();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (left <= 0)
			die(124, "timed out waiting for %s", what);
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		grow(&in, 1 << 20);
		ssize_t n = read(fd, in.p + in.len, in.cap - in.len - 1);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			die(125, "guest died while waiting for %s", what);
		in.len += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	char path[4096], what[64];

	if (argc != 4 || (strcmp(argv[1], "ready") && strcmp(argv[1], "run"))) {
		fprintf(stderr, "usage: vmrun ready|run AGENT TIMEOUT\n");
		return 2;
	}
	double tmo = atof(argv[3]);
	double deadline = now() + tmo;

	snprintf(path, sizeof(path), "%s.out", argv[2]);
	int rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (rfd < 0)
		die(125, "cannot open %s: %s", path, strerror(errno));
	if (!strcmp(argv[1], "ready")) {
		puts(wait_line(rfd, "READY", deadline, "the guest agent"));
		return 0;
	}

	/* run: the script from stdin, base64 on one line */
	struct buf script = { 0 }, msg = { 0 };
	char chunk[65536], id[32], hdr[96];
	ssize_t n;
	unsigned char rnd[6];

	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		add(&script, chunk, (size_t)n);
	int ufd = open("/dev/urandom", O_RDONLY);

	if (ufd < 0 || read(ufd, rnd, sizeof(rnd)) != sizeof(rnd))
		die(125, "no random id");
	close(ufd);
	snprintf(id, sizeof(id), "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5]);
	snprintf(hdr, sizeof(hdr), "C %s %ld ", id, (long)tmo);
	add(&msg, hdr, strlen(hdr));
	encode(&msg, (unsigned char *)script.p, script.len);
	add(&msg, "\n", 1);

	snprintf(path, sizeof(path), "%s.in", argv[2]);
	int wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (wfd < 0) {
		if (errno == ENXIO)
			die(125, "guest not running (no reader on %s)", path);
		die(125, "cannot open %s: %s", path, strerror(errno));
	}
	deadline = now() + tmo + 15;
	for (size_t off = 0; off < msg.len;) {
		struct pollfd pfd = { .fd = wfd, .events = POLLOUT };

		if (now() > deadline)
			die(124, "timed out sending the command");
		poll(&pfd, 1, 1000);
		n = write(wfd, msg.p + off, msg.len - off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			die(125, "guest died while sending the command");
		off += (size_t)n;
	}

	snprintf(hdr, sizeof(hdr), "R %s ", id);
	snprintf(what, sizeof(what), "the command (%lds)", (long)tmo);
	char *line = wait_line(rfd, hdr, deadline, what);
	char *p = line + strlen(hdr), *sp;
	int rc = atoi(p);

	p = strchr(p, ' ');
	p = p ? p + 1 : line + strlen(line);
	sp = strchr(p, ' ');
	decode_to(1, p, sp ? (size_t)(sp - p) : strlen(p));
	if (sp)
		decode_to(2, sp + 1, strlen(sp + 1));
	if (rc == 124)
		fprintf(stderr, "vmctl: command timed out in the guest after %lds\n", (long)tmo);
	return rc;
}
