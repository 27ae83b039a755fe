# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The prompt of `make demo-shell`: sourced by tests/vm/demo.sh after the bring-up, in the
# scenario process, so the harness (tests/vm/lib/harness.sh) and pool.sh are loaded and the
# guests are running. demo_shell reads commands (see DEMO_HELP) until `exit` or end of input;
# each runs in a subshell, so an error ends that command, not the cluster.

DEMO_HELP="Commands (guests: clt = compute client P, stg0 = A, stg1 = B):
  on NAME CMD...       run a shell command on a guest, e.g.  on clt ls -l /mnt
  status [NAME...]     rmrctl status on the guests (default: every running guest)
  watch [-c N] [NAME...]
                       status of the guests every second, changed lines highlighted; Ctrl-C
                       (or N frames) stops
  write [MIB]          write a new file of MIB (default 32) MiB of random data to /mnt on clt,
                       sync, print and remember its sha256
  files                check every file written by 'write' against its sha256
  fio_start [MIB]      start fio on clt in the background, over and over until fio_stop: random
                       4k writes (QD16, direct) over a MIB (default 16) MiB file in /mnt, each
                       pass read back and checked (md5 per block); a pass that fails stops it
  fio_stop             end fio after its current pass (at most 120 s): every pass must have
                       passed its check, and at least one must have run; removes its file
  cut A B              cut the link between guests A and B (both ends lose carrier)
  drop A B             cut it silently (frames vanish, carrier stays: peers notice late)
  freeze NAME          stop the guest's CPUs at once (QEMU stop), e.g. right before a crash
  write_one NAME [CHUNK] (scripts) a raw 64 KiB write to CHUNK (default 799) that only
                       NAME's leg confirms; clt is frozen right after it
  differ               (scripts) the data areas must differ: clt powered off, a write on one
  restore A B          restore it
  crash NAME           power a guest off hard (its disk stays)
  disk_fail stg0|stg1  (DEMO_DM=1) the node's store device starts failing every IO
                       (device-mapper 'error' table over its disk)
  disk_heal stg0|stg1  (DEMO_DM=1) the store device serves IO again
  boot NAME            power it on again and load the modules (the pools are gone)
  rebuild stg0|stg1    the 'storage node crash' runbook of Documentation/admin-guide.md on
                       a rebooted storage node: pool join, store add, its sync pool
  reassemble [stg1]    the 'compute client crash' runbook on a rebooted clt: pool join, both
                       legs in assemble mode (stg0's first, or stg1's), device map, mount /mnt
  sync_legs stg0|stg1  wait (at most 60 s) until that node's sync pool legs are normal
  sync stg0|stg1       wait for that node's resync (it starts by itself when the node enters
                       normal with chunks to sync; this starts one if none runs, once the
                       node's sync pool legs are normal)
  verify               compare the data areas of stg0's and stg1's disks (/mnt frozen meanwhile)
  wait_normal [SECS]   wait (default 120 s) until every leg on clt is normal
  wait_failed [SECS]   wait (default 60 s) until a leg on clt is failed
  capture TAG          copy the rmr/brmr sysfs classes of the running guests to the results
                       folder (capture/TAG/NAME), for rmrctl --sysfs DIR status
  help                 this text
  exit                 stop the cluster and end the demo
Try: watch (in a second terminal: none needed, Ctrl-C returns here), then
  cut clt stg1; write 16; status; restore clt stg1; sync stg1; verify"


_demo_running() { # the running guests of the topology
	local n out=""
	for n in $(_topology); do vm_running "$n" && out="$out $n"; done
	echo "${out# }"
}

_sync_legs_wait() { # WHO: guest shell code that waits (at most 60 s) until every leg of the
	# node's sync pool is normal, says how long it waited, and ends non-zero if they are not
	echo "i=0; while grep -qv '^normal' $C/pools/$P/sessions/*/state 2>/dev/null; do [ \$i -ge 300 ] && break; sleep 0.2; i=\$((i + 1)); done
[ \$i = 0 ] || echo \"$1: waited \$((i * 200)) ms for the sync pool's legs to be normal\"
! grep -qv '^normal' $C/pools/$P/sessions/*/state 2>/dev/null"
}

_demo_on() { # NAME CMD: run, print stdout and stderr, return the exit code (no scenario failure)
	local n=$1
	shift
	vm_running "$n" || { echo "$n is not running (boot $n)" >&2; return 1; }
	_run 600 "$n" "$*"
	local rc=$_rc
	_emit
	return "$rc"
}

_demo_status() { # NAME...: rmrctl status of each, under a header line
	local n
	for n in "$@"; do
		printf '\033[1m-- %s (%s)\033[0m\n' "$n" "$(vm_ip "$n")"
		if vm_running "$n"; then
			_run 30 "$n" 'rmrctl status'
			_emit 2>&1
		else
			echo "  (powered off)"
		fi
	done
}

_demo_watch() { # COUNT NAME...: redraw the status every second (COUNT times, 0: until Ctrl-C);
	# lines that changed since the previous frame in inverse video
	local count=$1 k=0 prev=() cur=() i line
	shift
	trap 'printf "\n"; exit 0' INT
	while [ "$count" = 0 ] || [ "$k" -lt "$count" ]; do
		k=$((k + 1))
		mapfile -t cur < <(_demo_status "$@")
		printf '\033[H\033[2J\033[1mrmr demo: %s   every 1 s, Ctrl-C stops\033[0m\n\n' "$(date '+%T')"
		for i in "${!cur[@]}"; do
			line=${cur[$i]}
			if [ "${#prev[@]}" -gt 0 ] && [ "${prev[$i]:-}" != "$line" ]; then
				printf '\033[7m%s\033[0m\n' "$line"
			else
				printf '%s\n' "$line"
			fi
		done
		prev=("${cur[@]}")
		[ "$k" = "$count" ] || sleep 1
	done
}

_demo_cmd() { # one command line, already split into words
	local c=${1:-}
	[ $# -gt 0 ] && shift
	case $c in
	'') ;;
	help | '?') echo "$DEMO_HELP" ;;
	on)
		[ $# -ge 2 ] || { echo "usage: on NAME CMD..." >&2; return 2; }
		_demo_on "$@" ;;
	status)
		# shellcheck disable=SC2046
		[ $# -gt 0 ] || set -- $(_demo_running)
		_demo_status "$@" ;;
	watch)
		local count=0
		if [ "${1:-}" = -c ]; then
			[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "usage: watch [-c N] [NAME...]" >&2; return 2; }
			count=$2
			shift 2
		fi
		# shellcheck disable=SC2046
		[ $# -gt 0 ] || set -- $(_demo_running)
		_demo_watch "$count" "$@" ;;
	write)
		local mib=${1:-32} out
		[[ $mib =~ ^[1-9][0-9]*$ ]] || { echo "usage: write [MIB]" >&2; return 2; }
		out=$(_demo_on clt "[ -d /mnt/lost+found ] || { echo '/mnt is not mounted' >&2; exit 1; }
f=/mnt/new-\$(date +%s)-\$\$.bin
/usr/bin/dd if=/dev/urandom of=\$f bs=1M count=$mib status=none && sync && /usr/bin/sha256sum \$f") || return 1
		echo "$out"
		echo "$out" >>"$VM_DIR/demo.sums" ;;
	files)
		[ -s "$VM_DIR/demo.sums" ] || { echo "no file written yet (write)" >&2; return 1; }
		_demo_on clt "/usr/bin/sha256sum -c <<'EOF'
$(cat "$VM_DIR/demo.sums")
EOF" ;;
	fio_start)
		local mib=${1:-16}
		[[ $mib =~ ^[1-9][0-9]*$ ]] || { echo "usage: fio_start [MIB]" >&2; return 2; }
		# Each pass writes the whole file once (fio's --verify=md5 with do_verify: written
		# blocks are read back and checked after the pass); passes repeat until /tmp/fio.stop.
		_demo_on clt "[ -d /mnt/lost+found ] || { echo '/mnt is not mounted' >&2; exit 1; }
rm -f /tmp/fio.stop /tmp/fio.log /tmp/fio.done
cat >/tmp/fio.sh <<'EOS'
n=0
while [ ! -e /tmp/fio.stop ]; do
	n=\$((n + 1))
	if fio --name=bg --filename=/mnt/fio-bg.dat --size=${mib}M --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --verify=md5 --do_verify=1 --randrepeat=0 --verify_fatal=1 >/tmp/fio.out 2>&1; then
		echo pass \$n ok >>/tmp/fio.log
	else
		echo pass \$n FAILED: >>/tmp/fio.log
		grep -m5 -iE 'verify|error|bad' /tmp/fio.out >>/tmp/fio.log
		break
	fi
done
touch /tmp/fio.done
EOS
setsid sh /tmp/fio.sh </dev/null >/dev/null 2>&1 &
sleep 1; echo 'fio started: passes of ${mib} MiB, each checked'" ;;
	fio_stop)
		_demo_on clt "[ -e /tmp/fio.sh ] || { echo 'fio_start first' >&2; exit 2; }
touch /tmp/fio.stop; i=0
until [ -e /tmp/fio.done ]; do [ \$i -ge 1200 ] && { echo 'fio did not end its pass within 120 s'; cat /tmp/fio.log; exit 1; }; sleep 0.1; i=\$((i + 1)); done
cat /tmp/fio.log
! grep -q FAILED /tmp/fio.log && grep -q 'ok\$' /tmp/fio.log || exit 1
rm -f /mnt/fio-bg.dat; echo fio: \$(grep -c 'ok\$' /tmp/fio.log) passes, every one checked clean, file removed" ;;
	cut)
		[ $# = 2 ] || { echo "usage: cut A B" >&2; return 2; }
		link_down "$1" "$2" && echo "link $1-$2 cut" ;;
	write_one)
		# a 64 KiB raw write to chunk CHUNK (default the last, a region ext4 leaves free) that
		# only NAME's leg confirms: its writer waits on a FIFO so the write goes out at once,
		# the link to the other node drops every frame, and clt is frozen as soon as NAME's
		# leg confirms the write, before Soft-RoCE gives up on the other (no leg fails, no
		# MAP_ADD). For crash scripts: power clt off next.
		local n=${1:-} ch=${2:-799} m other
		case $n in
		stg0) m=42 other=stg1 ;;
		stg1) m=43 other=stg0 ;;
		*) echo "usage: write_one stg0|stg1 [CHUNK]" >&2; return 2 ;;
		esac
		[[ $ch =~ ^[0-9]+$ ]] || { echo "usage: write_one stg0|stg1 [CHUNK]" >&2; return 2; }
		_demo_on clt "/usr/bin/dd if=/dev/urandom of=/tmp/v bs=64k count=1 status=none && rm -f /tmp/f && mkfifo /tmp/f &&
{ setsid sh -c '/usr/bin/dd if=/tmp/f of=/dev/brmr0 bs=64k count=1 seek=$((ch * CHUNK / 65536)) iflag=fullblock oflag=direct status=none' </dev/null >/dev/null 2>&1 & } &&
sleep 1 && ps | grep -q '[d]d if=/tmp/f' && echo 'writer waiting for its data'" || return 1
		link_drop clt "$other" && echo "link clt-$other dropping every frame" || return 1
		_demo_on clt "a() { awk '\$2 == \"member\" && \$3 == $m { print \$NF }' $BC/ctl/devices/brmr0/stats; }
w0=\$(a); /usr/bin/timeout 5 sh -c 'cat /tmp/v >/tmp/f' || exit 1
i=0; while [ \"\$(a)\" = \"\$w0\" ]; do [ \$i -ge 300 ] && { echo '$n did not confirm the write'; exit 1; }; sleep 0.01; i=\$((i + 1)); done
echo \"$n confirmed the write after \$i polls; $other never hears of it\"" || return 1
		vm_monitor clt stop >/dev/null && echo "clt frozen" ;;
	freeze)
		[ $# = 1 ] || { echo "usage: freeze NAME" >&2; return 2; }
		vm_running "$1" || { echo "$1 is not running" >&2; return 1; }
		vm_monitor "$1" stop >/dev/null && echo "$1 frozen" ;;
	drop)
		[ $# = 2 ] || { echo "usage: drop A B" >&2; return 2; }
		link_drop "$1" "$2" && echo "link $1-$2 dropping every frame" ;;
	restore)
		[ $# = 2 ] || { echo "usage: restore A B" >&2; return 2; }
		link_up "$1" "$2" && echo "link $1-$2 restored" ;;
	crash)
		[ $# = 1 ] || { echo "usage: crash NAME" >&2; return 2; }
		vm_running "$1" || { echo "$1 is not running" >&2; return 1; }
		vm_kill "$1" && echo "$1 powered off" ;;
	boot)
		[ $# = 1 ] || { echo "usage: boot NAME" >&2; return 2; }
		vm_start "$1" || return 1
		case $1 in
		clt) _demo_on clt 'modprobe rtrs-client && modprobe rmr && modprobe brmr' ;;
		*) _demo_on "$1" "modprobe rtrs-server && modprobe rtrs-client && modprobe rmr && modprobe brmr && $DEMO_DEV_SETUP" ;;
		esac && echo "$1 booted, modules loaded" ;;
	disk_fail | disk_heal)
		[ "${DEMO_DM:-0}" = 1 ] || { echo "$c needs DEMO_DM=1 (stores on device-mapper)" >&2; return 2; }
		case ${1:-} in stg0 | stg1) ;; *) echo "usage: $c stg0|stg1" >&2; return 2 ;; esac
		local table='linear /dev/sda 0'
		[ "$c" = disk_fail ] && table=error
		_demo_on "$1" "n=\$(cat /sys/block/sda/size); dmsetup suspend bdisk && dmsetup load bdisk --table \"0 \$n $table\" && dmsetup resume bdisk" &&
			echo "$1: store device $([ "$c" = disk_fail ] && echo 'fails every IO' || echo 'serves IO again')" ;;
	rebuild)
		local n=${1:-} id peer sync
		case $n in
		stg0) id=42 peer=$B_IP sync=$SYNC_A ;;
		stg1) id=43 peer=$A_IP sync=$SYNC_B ;;
		*) echo "usage: rebuild stg0|stg1" >&2; return 2 ;;
		esac
		_demo_on "$n" "set -x
rmrctl pool join $P --member-id $id &&
rmrctl store add $P --device $DEMO_DEV --mapped-size $SIZE &&
rmrctl pool join $P --chunk-size $CHUNK --sync &&
rmrctl leg add $P $sync --path $peer --wait=90 &&
rmrctl pool attach $P" ;;
	reassemble)
		local first=$LEG_A first_ip=$A_IP second=$LEG_B second_ip=$B_IP
		case ${1:-stg0} in
		stg0) ;;
		stg1) first=$LEG_B first_ip=$B_IP second=$LEG_A second_ip=$A_IP ;;
		*) echo "usage: reassemble [stg0|stg1] (the node whose leg is added first)" >&2; return 2 ;;
		esac
		_demo_on clt "set -x
rmrctl pool join $P --chunk-size $CHUNK &&
rmrctl leg add $P $first --path $first_ip --mode assemble --wait=90 &&
rmrctl leg add $P $second --path $second_ip --mode assemble --wait=90 &&
rmrctl device map $P --size $SIZE &&
mkdir -p /mnt && mount /dev/brmr0 /mnt && ls -l /mnt" ;;
	wait_failed)
		local t=${1:-60}
		[[ $t =~ ^[0-9]+$ ]] || { echo "usage: wait_failed [SECS]" >&2; return 2; }
		_demo_on clt "i=0; until grep -q '^failed' $C/pools/$P/sessions/*/state; do
	[ \$i -ge $t ] && { echo 'no leg failed after ${t}s:'; rmrctl status; exit 1; }
	i=\$((i + 1)); sleep 1; done; echo \"a leg failed after \${i}s\"" ;;
	wait_normal)
		local t=${1:-120}
		[[ $t =~ ^[0-9]+$ ]] || { echo "usage: wait_normal [SECS]" >&2; return 2; }
		_demo_on clt "i=0; while grep -qv '^normal' $C/pools/$P/sessions/*/state; do
	[ \$i -ge $t ] && { echo 'legs not normal after ${t}s:'; rmrctl status; exit 1; }
	i=\$((i + 1)); sleep 1; done; echo \"every leg normal after \${i}s\"" ;;
	sync_legs)
		[ $# = 1 ] || { echo "usage: sync_legs stg0|stg1" >&2; return 2; }
		_demo_on "$1" "$(_sync_legs_wait sync_legs) || exit 1" ;;
	sync)
		[ $# = 1 ] || { echo "usage: sync stg0|stg1" >&2; return 2; }
		# The node reads from its peers over its sync pool: after a cut between the storage
		# nodes, wait (at most 60 s) for its legs to be back, and say so.
		_demo_on "$1" "$(_sync_legs_wait sync)
# A write to a chunk the node could not sync yet failed its leg: it is NO_IO until the client's
# recovery worker enables it again (about a second); sync start needs it normal.
i=0; until [ \"\$(head -1 $S/pools/$P/state)\" = normal ]; do [ \$i -ge 300 ] && break; sleep 0.2; i=\$((i + 1)); done
[ \$i = 0 ] || echo \"sync: waited \$((i * 200)) ms for the server pool to be normal\"
rmrctl sync start $P --wait=600 && rmrctl status" ;;
	verify)
		local a b frozen=0 sum="/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$AREA_BYTES count=$((SIZE / 2048)) status=none | /usr/bin/sha256sum | cut -d' ' -f1"
		# A leg that failed (a cut, a crash) is back within seconds and its node resyncs what
		# it missed. Compare after that (at most 60 s each), and say so.
		if vm_running clt; then
			_demo_on clt "i=0; while grep -qv '^normal' $C/pools/$P/sessions/*/state; do [ \$i -ge 300 ] && break; sleep 0.2; i=\$((i + 1)); done
[ \$i = 0 ] || { echo \"verify: waited \$((i / 5)) s for every leg to be normal\"; dmesg | grep -E 'rmr: .*(-> failed|failed \\()' | tail -2; }"
		fi
		for a in stg0 stg1; do
			_demo_on "$a" "i=0; while [ -e $S/pools/$P/map_summary ] && grep -qv ' \[\] 0/' $S/pools/$P/map_summary; do [ \$i -ge 300 ] && break; sleep 0.2; i=\$((i + 1)); done
[ \$i = 0 ] || echo \"verify: waited \$((i / 5)) s for $a's resync\""
		done
		# ext4 writes by itself (journal commits, lazy inode table init): freeze it meanwhile
		if vm_running clt && _demo_on clt 'grep -q " /mnt " /proc/mounts' 2>/dev/null; then
			_demo_on clt 'fsfreeze --freeze /mnt' && frozen=1 && echo "/mnt on clt frozen"
		fi
		echo "sha256 of the data area (${SIZE} sectors) of each storage node's disk:"
		a=$(_demo_on stg0 "$sum") && b=$(_demo_on stg1 "$sum")
		[ "$frozen" = 1 ] && _demo_on clt 'fsfreeze --unfreeze /mnt' && echo "/mnt on clt thawed"
		[ -n "$a" ] && [ -n "$b" ] || return 1
		echo "  stg0 $a"
		echo "  stg1 $b"
		if [ "$a" = "$b" ]; then echo "identical"; else echo "DIFFERENT (a resync pending? see status)"; return 1; fi ;;
	differ)
		# the opposite of verify, for scripts: a write reached one node only (client down)
		local sum="/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$AREA_BYTES count=$((SIZE / 2048)) status=none | /usr/bin/sha256sum | cut -d' ' -f1" a b
		vm_running clt && { echo "differ: power clt off first" >&2; return 2; }
		a=$(_demo_on stg0 "$sum") && b=$(_demo_on stg1 "$sum") || return 1
		echo "  stg0 $a"
		echo "  stg1 $b"
		if [ "$a" != "$b" ]; then echo "different"; else echo "identical (expected different)"; return 1; fi ;;
	capture)
		[[ ${1:-} =~ ^[A-Za-z0-9_-]+$ ]] || { echo "usage: capture TAG" >&2; return 2; }
		# shellcheck disable=SC2046
		sysfs_capture "$1" $(_demo_running) && echo "in $VM_DIR/capture/$1" ;;
	*) echo "unknown command '$c' (help lists them)" >&2; return 2 ;;
	esac
}

# demo_shell: the prompt. DEMO_INPUT=FILE reads the commands from FILE instead of stdin;
# DEMO_STRICT=1 (tests/vm/scenarios/demo_shell.sh) fails the scenario at the first command
# that exits non-zero.
demo_shell() {
	local line words rc interactive=0
	exec 3<"${DEMO_INPUT:-/dev/stdin}"
	[ -t 3 ] && interactive=1
	trap 'echo' INT
	echo
	echo "$DEMO_HELP"
	while :; do
		if [ "$interactive" = 1 ]; then
			read -r -e -p 'rmr-demo> ' line <&3 || break
			history -s "$line"
		else
			read -r line <&3 || break
			echo "rmr-demo> $line"
			case $line in '#'*) continue ;; esac
		fi
		read -r -a words <<<"$line"
		case ${words[0]:-} in exit | quit) break ;; esac
		log "demo-shell: $line"
		# In a subshell, with a fail() that ends only that subshell: an error ends the command,
		# not the demo (the harness's fail() ends the scenario).
		(
			fail() {
				echo "error: $*" >&2
				exit 1
			}
			if [ "${words[0]:-}" = on ] && [ "${#words[@]}" -ge 3 ]; then
				# the guest's shell parses the rest of the line, quotes and redirections included
				_demo_on "${words[1]}" "$(sed -E 's/^[[:space:]]*on[[:space:]]+[^[:space:]]+[[:space:]]+//' <<<"$line")"
			else
				_demo_cmd "${words[@]}"
			fi
		)
		rc=$?
		if [ "$rc" != 0 ]; then
			echo "(exit $rc)"
			[ "${DEMO_STRICT:-0}" = 1 ] && fail "demo-shell: '$line' exited $rc"
		fi
	done
	exec 3<&-
	trap - INT
	echo "stopping the cluster"
}
