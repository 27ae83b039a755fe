// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rmr-agent: the guest side of the VM harness's command channel (tests/vm/lib/vmctl.py is the
 * host side). Built statically on the host into the guests' initramfs.
 *
 * It talks over the virtio-serial port named by argv[1] (default "rmr-agent"; the guests run a
 * second one on "rmr-agent-2", which the harness uses when the first is busy or stuck):
 *   host -> guest: "C <id> <timeout s> <base64 script>\n"
 *   guest -> host: "R <id> <exit code> <base64 stdout> <base64 stderr>\n"
 *   guest -> host once at start: "READY <uptime>\n"
 * Each script runs as "/bin/sh /run/<port>.sh" in its own session (setsid), cwd /root, stdin
 * /dev/null, stdout/stderr to files (so background children cannot hold the reply back). On
 * timeout the whole process group is killed and the exit code is 124. Commands run one at a
 * time; the agent also reaps orphans, so it can run as PID 1's child or as PID 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port = -1;
static char agent_sh[64], agent_out[64], agent_err[64];
static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(port, buf, len);

		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			exit(3);
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Base64-encode a file's contents onto the port. */
static void put_b64_file(const char *path)
{
	unsigned char in[3 * 4096];
	char out[4 * 4096];
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	for (;;) {
		size_t have = 0, i, o = 0;

		while (have < sizeof(in)) {
			ssize_t n = read(fd, in + have, sizeof(in) - have);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		for (i = 0; i + 3 <= have; i += 3) {
			unsigned v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];

			out[o++] = b64chars[v >> 18];
			out[o++] = b64chars[(v >> 12) & 63];
			out[o++] = b64chars[(v >> 6) & 63];
			out[o++] = b64chars[v & 63];
		}
		if (i < have) {
			int two = have - i == 2;
			unsigned v = in[i] << 16 | (two ? in[i + 1] << 8 : 0);

			out[o++] = b64chars[v >> 18];
			out[o++] = b64chars[(v >> 12) & 63];
			out[o++] = two ? b64chars[(v >> 6) & 63] : '=';
			out[o++] = '=';
		}
		put(out, o);
		if (have < sizeof(in))
			break;
	}
	close(fd);
}

static int b64val(int c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

/* Decode in place; returns the length. */
static size_t b64_decode(char *s)
{
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;

	for (char *p = s; *p; p++) {
		int d = b64val((unsigned char)*p);

		if (d < 0)
			continue;
		v = v << 6 | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)((v >> bits) & 0xff);
		}
	}
	s[o] = 0;
	return o;
}

static double uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int find_port(const char *want, char *dev, size_t len)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char path[300], name[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = 0;
			found = !strcmp(name, want);
		}
		if (found)
			snprintf(dev, len, "/dev/%s", e->d_name);
		fclose(f);
	}
	closedir(d);
	return found;
}

static int run(const char *script, size_t len, long tmo, int *timed_out)
{
	sigset_t set;
	struct timespec end, now, left;
	pid_t pid;
	int status = 0;

	*timed_out = 0;
	{
		int fd = open(agent_sh, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0)
			return 126;
		while (len) {
			ssize_t n = write(fd, script, len);

			if (n <= 0) {
				close(fd);
				return 126;
			}
			script += n;
			len -= (size_t)n;
		}
		close(fd);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pid = fork();
	if (pid < 0)
		return 126;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(agent_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(agent_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		sigprocmask(SIG_UNBLOCK, &set, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		if (chdir("/root"))
			(void)chdir("/");
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		for (int fd = 3; fd < 64; fd++)
			close(fd);
		execl("/bin/sh", "sh", agent_sh, (char *)NULL);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += tmo;
	for (;;) {
		pid_t r;

		/* reap everything; stop when ours is done */
		while ((r = waitpid(-1, &status, WNOHANG)) > 0)
			if (r == pid)
				goto done;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0) {
			*timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while ((r = waitpid(-1, &status, 0)) > 0 && r != pid)
				;
			return 124;
		}
		sigtimedwait(&set, NULL, &left);
	}
done:
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 125;
}

int main(int argc, char **argv)
{
	const char *want = argc > 1 ? argv[1] : "rmr-agent";
	char dev[300], hdr[128];
	char *line = NULL;
	size_t cap = 0, len = 0, start = 0;
	sigset_t set;
	int tries;

	for (tries = 0; !find_port(want, dev, sizeof(dev)); tries++) {
		if (tries > 100) {
			fprintf(stderr, "rmr-agent: no virtio port named %s\n", want);
			return 1;
		}
		usleep(50000);
	}
	snprintf(agent_sh, sizeof(agent_sh), "/run/%s.sh", want);
	snprintf(agent_out, sizeof(agent_out), "/run/%s.out", want);
	snprintf(agent_err, sizeof(agent_err), "/run/%s.err", want);
	port = open(dev, O_RDWR | O_CLOEXEC);
	if (port < 0) {
		perror(dev);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	snprintf(hdr, sizeof(hdr), "READY %.2f\n", uptime());
	put(hdr, strlen(hdr));

	for (;;) {
		char *nl, *id, *tmo_s, *b64, *save;
		int rc, timed_out;
		long tmo;
		ssize_t n;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		nl = line ? memchr(line + start, '\n', len - start) : NULL;
		if (!nl) {
			if (start) {
				memmove(line, line + start, len - start);
				len -= start;
				start = 0;
			}
			if (cap - len < 65536) {
				cap = cap * 2 + 65536;
				line = realloc(line, cap);
				if (!line)
					return 2;
			}
			n = read(port, line + len, cap - len - 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* host side closed or not there: wait and retry */
				usleep(100000);
				continue;
			}
			len += (size_t)n;
			continue;
		}
		*nl = 0;
		{
			char *cmd = line + start;

			start = (size_t)(nl - line) + 1;
			if (strncmp(cmd, "C ", 2))
				continue;
			strtok_r(cmd, " ", &save);
			id = strtok_r(NULL, " ", &save);
			tmo_s = strtok_r(NULL, " ", &save);
			b64 = strtok_r(NULL, " ", &save);
			if (!id || !tmo_s)
				continue;
			tmo = strtol(tmo_s, NULL, 10);
			if (tmo <= 0)
				tmo = 60;
			if (!b64)
				b64 = (char *)"";
			rc = run(b64, b64_decode(b64), tmo, &timed_out);
			if (timed_out) {
				int fd = open(agent_err, O_WRONLY | O_APPEND | O_CREAT, 0600);

				if (fd >= 0) {
					dprintf(fd, "rmr-agent: timed out after %lds, process group killed\n", tmo);
					close(fd);
				}
			}
			snprintf(hdr, sizeof(hdr), "R %s %d ", id, rc);
			put(hdr, strlen(hdr));
			put_b64_file(agent_out);
			put(" ", 1);
			put_b64_file(agent_err);
			put("\n", 1);
		}
	}
}
