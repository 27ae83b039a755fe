#!/usr/bin/python3 -IS
# SPDX-License-Identifier: GPL-2.0-or-later
"""Host side of the guest agent and the QEMU monitor (used by tests/vm/lib/harness.sh; the
harness runs agent commands with the faster lib/vmrun.c and uses this for the monitor).

  vmctl.py ready AGENT TIMEOUT          wait for the guest agent's READY line
  vmctl.py run AGENT TIMEOUT [FILE|-]   run a shell script (FILE or stdin) in the guest; its
                                        stdout/stderr are copied to ours, its exit code is ours
  vmctl.py hmp SOCKET COMMAND...        run one QEMU human-monitor command, print its output

AGENT is the path prefix of the QEMU pipe chardev: AGENT.in (to the guest), AGENT.out (from it).
Harness errors (guest gone, timeout) print "vmctl: ..." on stderr and exit 124 (timeout) or
125 (guest not running / died).
"""
import base64
import errno
import os
import select
import socket
import sys
import time


def die(code, msg):
    sys.stderr.write("vmctl: %s\n" % msg)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def open_agent(agent):
    try:
        rfd = os.open(agent + ".out", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        die(125, "cannot open %s.out: %s" % (agent, e.strerror))
    try:
        wfd = os.open(agent + ".in", os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            die(125, "guest not running (no reader on %s.in)" % agent)
        die(125, "cannot open %s.in: %s" % (agent, e.strerror))
    return rfd, wfd


def lines(rfd, deadline, what):
    """Yield complete lines from the fifo until the deadline."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            die(124, "timed out waiting for %s" % what)
        r, _, _ = select.select([rfd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(rfd, 1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            # No writer left: QEMU exited. Poll a little in case it is a transient reopen.
            die(125, "guest died while waiting for %s" % what)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line


def cmd_ready(agent, timeout):
    deadline = time.monotonic() + timeout
    rfd = None
    # The fifo may have no writer for a moment while QEMU starts.
    while rfd is None:
        try:
            rfd = os.open(agent + ".out", os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                die(124, "no agent fifo")
            time.sleep(0.05)
    for line in lines(rfd, deadline, "the guest agent"):
        if line.startswith(b"READY"):
            print(line.decode(errors="replace"))
            return 0


def cmd_run(agent, timeout, path):
    script = open(path, "rb").read() if path and path != "-" else sys.stdin.buffer.read()
    rfd, wfd = open_agent(agent)
    cid = os.urandom(6).hex()
    msg = b"C %s %d %s\n" % (cid.encode(), timeout, base64.b64encode(script))
    deadline = time.monotonic() + timeout + 15
    view = memoryview(msg)
    while view:
        select.select([], [wfd], [], 1)
        try:
            n = os.write(wfd, view)
        except BlockingIOError:
            continue
        except BrokenPipeError:
            die(125, "guest died while sending the command")
        view = view[n:]
        if time.monotonic() > deadline:
            die(124, "timed out sending the command")
    prefix = b"R " + cid.encode() + b" "
    for line in lines(rfd, deadline, "the command (%ds)" % timeout):
        if not line.startswith(prefix):
            continue  # a late answer to an earlier, timed-out command
        parts = line.split(b" ")
        rc = int(parts[2])
        out = base64.b64decode(parts[3]) if len(parts) > 3 else b""
        err = base64.b64decode(parts[4]) if len(parts) > 4 else b""
        sys.stdout.buffer.write(out)
        sys.stderr.buffer.write(err)
        sys.stdout.flush()
        sys.stderr.flush()
        if rc == 124:
            sys.stderr.write("vmctl: command timed out in the guest after %ds\n" % timeout)
        return rc


def cmd_hmp(sock_path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock_path)
    except OSError as e:
        die(125, "monitor %s: %s" % (sock_path, e.strerror))
    buf = b""

    def until_prompt():
        nonlocal buf
        while b"(qemu) " not in buf:
            chunk = s.recv(65536)
            if not chunk:
                die(125, "monitor closed")
            buf += chunk
        out, buf = buf.split(b"(qemu) ", 1)
        return out

    until_prompt()
    s.sendall(command.encode() + b"\n")
    out = until_prompt().decode(errors="replace").replace("\r", "")
    # drop the echoed command line (HMP echoes with terminal escapes)
    body = out.split("\n", 1)[1] if "\n" in out else ""
    s.close()
    sys.stdout.write(body)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "ready":
        return cmd_ready(argv[2], float(argv[3]) if len(argv) > 3 else 60)
    if len(argv) >= 4 and argv[1] == "run":
        return cmd_run(argv[2], int(argv[3]), argv[4] if len(argv) > 4 else None)
    if len(argv) >= 4 and argv[1] == "hmp":
        return cmd_hmp(argv[2], " ".join(argv[3:]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
