# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The scenario API of the rmr VM harness. Sourced by tests/vm/lib/scenario.sh before the
# scenario file; see tests/vm/README.md for the format. Names starting with _ are internal.
#
# Provided by the runner (environment):
#   VM_DIR     this scenario's results folder (serial logs, dmesg, disks, transcript)
#   VM_RUN     this scenario's runtime folder (sockets, fifos, pids; short path)
#   VM_KERNEL  bzImage   VM_INITRD  initramfs   VM_TOOLS  tools image (/usr)   VM_LIB  tests/vm/lib

# ---- scenario options (set them in the scenario before vm_boot) --------------------------
NSTG=${NSTG:-2}            # storage nodes in the topology: stg0 .. stg$((NSTG-1)), at most 4
DISK_MB=${DISK_MB:-256}    # size of each storage node's disk (/dev/sda in the guest);
                           # per guest: DISK_MB_stg1=512, DISK_MB_clt=64 (clt has none by default)
MEM_MB=${MEM_MB:-512}      # guest RAM; per guest: MEM_MB_clt=768
CPUS=${CPUS:-1}            # vCPUs per guest; per guest: CPUS_clt=2
ON_TIMEOUT=${ON_TIMEOUT:-120}  # default per-command timeout of on/on_fail/... (seconds)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}
KMEMLEAK=${KMEMLEAK:-1}    # 1: scan for leaks in every live guest at the end
VM_APPEND=${VM_APPEND:-}   # extra kernel command line for every guest

_VMCTL="/usr/bin/python3 -I -S $VM_LIB/vmctl.py"   # QEMU monitor
_VMRUN=${VM_VMRUN:-$_VMCTL}                           # agent (C: a Python start is ~40 ms)
_ALL_GUESTS="clt stg0 stg1 stg2 stg3"
# Boot-time savers measured with initcall_debug: 256 legacy PTY pairs cost ~1 s under TCG with
# lockdep, probing the PS/2 mouse ~0.5 s; the guests need neither, nor 4 UARTs.
_FASTBOOT="pty.legacy_count=0 i8042.noaux=1 i8042.nokbd=1 8250.nr_uarts=1"
_T0=${_T0:-$EPOCHREALTIME}

# ---- small helpers -----------------------------------------------------------------------
_now() { echo "$EPOCHREALTIME"; }
_since() { # START (seconds.micro): seconds since, one decimal
	local a=${1/./} b=${EPOCHREALTIME/./}
	a=${a:0:${#a}-5} b=${b:0:${#b}-5}   # tenths of a second
	local d=$((b - a))
	printf '%d.%d' $((d / 10)) $((d % 10))
}

log() { # MSG...: progress line in the scenario log and the transcript
	local line
	line="[$(_since "$_T0")s] $*"
	echo "$line"
	echo "$line" >>"$VM_DIR/commands.log"
}

fail() { # REASON...: fail the scenario now (works from subshells and $(...) too)
	local reason="$*"
	[ -s "$VM_DIR/fail.reason" ] || printf '%s\n' "$reason" >"$VM_DIR/fail.reason"
	echo "FAIL: $reason" >&2
	echo "[$(_since "$_T0")s] FAIL: $reason" >>"$VM_DIR/commands.log"
	kill -USR1 "$VM_MAIN_PID" 2>/dev/null
	exit 1
}

_guest_ok() {
	case $1 in
	clt) return 0 ;;
	stg[0-3]) [ "${1#stg}" -lt "$NSTG" ] && return 0 ;;
	esac
	fail "unknown guest '$1' (topology: $(_topology); NSTG=$NSTG)"
}

_topology() {
	local i=0 t=clt
	while [ "$i" -lt "$NSTG" ]; do t="$t stg$i"; i=$((i + 1)); done
	echo "$t"
}

vm_ip() { # NAME: the guest's address
	case $1 in
	clt) echo 192.168.122.10 ;;
	stg[0-3]) echo "192.168.122.$((80 + 4 * ${1#stg}))" ;;
	*) fail "vm_ip: unknown guest '$1'" ;;
	esac
}

vm_iface() { # A B: the interface in A that links to B (ethN)
	local k=0 p
	for p in $(_topology); do
		[ "$p" = "$1" ] && continue
		[ "$p" = "$2" ] && { echo "eth$k"; return 0; }
		k=$((k + 1))
	done
	fail "vm_iface: no link $1-$2"
}

vm_disk() { # NAME: host path of the guest's disk image (raw)
	echo "$VM_DIR/$1.img"
}

_alive() { # PID: running and not a zombie (a daemonized QEMU is reaped by whoever is PID 1)
	local st
	[ -r "/proc/$1/stat" ] || return 1
	read -r st <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

vm_running() { # NAME: true if the guest's QEMU is alive
	local pid
	[ -r "$VM_RUN/$1/pid" ] || return 1
	pid=$(<"$VM_RUN/$1/pid")
	[ -n "$pid" ] && _alive "$pid"
}

_host_khz() {
	awk -F: '/^cpu MHz/ { printf "%d\n", $2 * 1000; exit }' /proc/cpuinfo
}

# ---- guests ------------------------------------------------------------------------------
_launch() { # NAME
	local n=$1 d=$VM_RUN/$1 ip mac_own k=0 p slot args=() cpus mem down=() drop=() img st size
	ip=$(vm_ip "$n")
	mac_own=$(printf '%02x' "${ip##*.}")
	mkdir -p "$d" "$VM_RUN/net" "$VM_RUN/links"
	rm -f "$d/agent.in" "$d/agent.out" "$d/agent2.in" "$d/agent2.out" "$d/mon" "$d/pid"
	mkfifo "$d/agent.in" "$d/agent.out" "$d/agent2.in" "$d/agent2.out"
	cpus=CPUS_$n; cpus=${!cpus:-$CPUS}
	mem=MEM_MB_$n; mem=${!mem:-$MEM_MB}
	if [ "$cpus" -gt 1 ]; then args+=(-smp "$cpus,sockets=$cpus"); else args+=(-smp 1); fi
	for p in $(_topology); do
		[ "$p" = "$n" ] && continue
		slot=$(printf '0x%x' $((0x10 + k)))
		rm -f "$VM_RUN/net/$n-$p" "$VM_RUN/net/$n-$p.cut"
		args+=(-netdev "dgram,id=$p,local.type=unix,local.path=$VM_RUN/net/$n-$p,remote.type=unix,remote.path=$VM_RUN/net/$p-$n"
			-device "virtio-net-pci,netdev=$p,id=nic-$p,addr=$slot,mac=52:54:00:00:$mac_own:$(printf '%02x' "$(vm_ip "$p" | cut -d. -f4)")")
		st=$(cat "$VM_RUN/links/$(_linkname "$n" "$p")" 2>/dev/null)
		[ "$st" = down ] && down+=("$p")
		[ "$st" = drop ] && drop+=("$p")
		k=$((k + 1))
	done
	size=DISK_MB_$n; size=${!size:-}
	case $n in stg*) size=${size:-$DISK_MB} ;; esac
	if [ -n "$size" ] && [ "$size" != 0 ]; then
		img=$(vm_disk "$n")
		[ -e "$img" ] || truncate -s "${size}M" "$img"
		args+=(-device virtio-scsi-pci,id=scsi,addr=0x6
			-drive "file=$img,if=none,id=disk0,format=raw,cache=unsafe,aio=threads"
			-device scsi-hd,drive=disk0,bus=scsi.0)
	fi
	[ ${#down[@]} -gt 0 ] || [ ${#drop[@]} -gt 0 ] && args+=(-S)
	echo "=== rmr-vm: $n boot at $(date '+%F %T') ===" >>"$VM_DIR/$n.serial.log"
	echo "$EPOCHREALTIME" >"$d/started"
	if ! qemu-system-x86_64 -name "$n" -accel tcg -cpu max -M pc -m "$mem" \
		-nodefaults -no-user-config -display none -no-reboot -daemonize -pidfile "$d/pid" \
		-kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
		-append "console=ttyS0 panic=-1 tsc_early_khz=$(_host_khz) tsc=reliable $_FASTBOOT vm_name=$n vm_ip=$ip $VM_APPEND" \
		-chardev "file,id=ser,path=$VM_DIR/$n.serial.log,append=on" -serial chardev:ser \
		-chardev "pipe,id=agent,path=$d/agent" \
		-device virtio-serial-pci,id=vser,addr=0x4 \
		-device virtserialport,bus=vser.0,chardev=agent,name=rmr-agent \
		-chardev "pipe,id=agent2,path=$d/agent2" \
		-device virtserialport,bus=vser.0,chardev=agent2,name=rmr-agent-2 \
		-monitor "unix:$d/mon,server=on,wait=off" \
		-device virtio-rng-pci,addr=0x5 \
		-drive "file=$VM_TOOLS,if=none,id=tools,format=raw,readonly=on" \
		-device virtio-blk-pci,drive=tools,addr=0x7 \
		"${args[@]}" 2>>"$VM_DIR/$n.qemu.log"; then
		fail "cannot start $n: $(tail -3 "$VM_DIR/$n.qemu.log")"
	fi
	for p in "${down[@]}"; do
		$_VMCTL hmp "$d/mon" set_link "$p" off >/dev/null || fail "set_link on new $n failed"
	done
	for p in "${drop[@]}"; do
		mv "$VM_RUN/net/$n-$p" "$VM_RUN/net/$n-$p.cut" || fail "cannot cut $n-$p"
	done
	[ ${#down[@]} -gt 0 ] || [ ${#drop[@]} -gt 0 ] && { $_VMCTL hmp "$d/mon" cont >/dev/null || fail "cont $n failed"; }
	return 0
}

_wait_ready() { # NAME
	local n=$1 d=$VM_RUN/$1 out t
	if ! out=$($_VMRUN ready "$d/agent" "$BOOT_TIMEOUT" 2>&1); then
		echo "$n: $out" >"$VM_RUN/$n/boot.err"
		return 1
	fi
	t=$(_since "$(cat "$d/started")")
	echo "$n boot ${t}s (guest uptime at agent ready ${out#READY }s)" >>"$VM_DIR/timings"
	echo "$t"
}

vm_boot() { # [NAME...]: boot guests (default: the whole topology) in parallel, wait for agents
	local names=("$@") n pids=() t bad=""
	[ $# -gt 0 ] || read -ra names <<<"$(_topology)"
	for n in "${names[@]}"; do
		_guest_ok "$n"
		vm_running "$n" && fail "vm_boot: $n is already running"
		_launch "$n"
	done
	for n in "${names[@]}"; do
		_wait_ready "$n" >"$VM_RUN/$n/boot.time" &
		pids+=($!)
	done
	for k in "${!pids[@]}"; do
		wait "${pids[$k]}" || bad="$bad ${names[$k]}"
	done
	[ -z "$bad" ] || fail "guest(s)$bad did not come up: $(cat "$VM_RUN"/*/boot.err 2>/dev/null | head -3)"
	t=""
	for n in "${names[@]}"; do t="$t $n=$(cat "$VM_RUN/$n/boot.time")s"; done
	log "booted:$t"
}

vm_start() { vm_boot "$@"; } # NAME...: start (again) stopped guests; disks and links kept

vm_kill() { # NAME...: hard power-off (SIGKILL QEMU); the disk image stays
	local n pid i
	for n in "$@"; do
		_guest_ok "$n"
		pid=$(cat "$VM_RUN/$n/pid" 2>/dev/null) || fail "vm_kill: $n was never started"
		kill -9 "$pid" 2>/dev/null
		for i in $(seq 200); do _alive "$pid" || break; sleep 0.05; done
		_alive "$pid" && fail "vm_kill: $n (pid $pid) does not die"
		rm -f "$VM_RUN/$n/pid"
		echo "=== rmr-vm: $n killed at $(date '+%F %T') ===" >>"$VM_DIR/$n.serial.log"
		log "killed $n"
	done
}

vm_reboot() { # NAME...: power-cycle (kill + start)
	vm_kill "$@"
	vm_start "$@"
}

# ---- links -------------------------------------------------------------------------------
_linkname() { if [[ $1 < $2 ]]; then echo "$1-$2"; else echo "$2-$1"; fi; }

_set_link() { # A B on|down|drop
	local a=$1 b=$2 st=$3 x y f old
	_guest_ok "$a"; _guest_ok "$b"
	[ "$a" != "$b" ] || fail "link: $a-$a is not a link"
	mkdir -p "$VM_RUN/links"
	f=$VM_RUN/links/$(_linkname "$a" "$b")
	old=$(cat "$f" 2>/dev/null)
	[ "$st" = on ] || [ -z "$old" ] || fail "link $a-$b is already $old"
	case $st in
	down | on)
		# carrier: QEMU set_link on the NIC of each running end
		if [ "$st" = down ] || [ "$old" = down ]; then
			for x in "$a" "$b"; do
				y=$b; [ "$x" = "$b" ] && y=$a
				vm_running "$x" || continue
				$_VMCTL hmp "$VM_RUN/$x/mon" set_link "$y" "$([ "$st" = down ] && echo off || echo on)" >/dev/null ||
					fail "set_link $y on $x failed"
			done
		fi
		;;
	esac
	case $st in
	drop)
		# silent: hide each end's socket, the other end's frames to it vanish
		for x in "$a-$b" "$b-$a"; do
			[ -e "$VM_RUN/net/$x" ] && mv "$VM_RUN/net/$x" "$VM_RUN/net/$x.cut"
		done
		;;
	on)
		for x in "$a-$b" "$b-$a"; do
			[ -e "$VM_RUN/net/$x.cut" ] && mv "$VM_RUN/net/$x.cut" "$VM_RUN/net/$x"
		done
		;;
	esac
	if [ "$st" = on ]; then rm -f "$f"; else echo "$st" >"$f"; fi
	if [ "$st" = on ] && [ "$old" = down ]; then
		# usable when link_up returns: wait until the guests have seen their carrier come back
		for x in "$a" "$b"; do
			y=$b; [ "$x" = "$b" ] && y=$a
			vm_running "$x" || continue
			wait_for -t 10 "$x" "grep -q 1 /sys/class/net/$(vm_iface "$x" "$y")/carrier"
		done
	fi
	log "link $a-$b $st"
}

link_down() { _set_link "$1" "$2" down; } # A B: cut A-B like a pulled cable (both ends lose carrier)
link_drop() { _set_link "$1" "$2" drop; } # A B: cut A-B silently (frames vanish, carrier stays up)
link_up() { _set_link "$1" "$2" on; }     # A B: restore a cut link

# ---- commands in guests ------------------------------------------------------------------
# All take an optional "-t SECONDS" first (default ON_TIMEOUT); the command is one shell
# script (the arguments joined by spaces) run by busybox sh in the guest, cwd /root.

_run() { # sets _rc, _out_f, _err_f; args: TIMEOUT NAME SCRIPT [WHAT TO LOG]
	local t=$1 n=$2 s=$3 what=${4:-$3}
	_guest_ok "$n"
	_out_f=$VM_RUN/tmp.$BASHPID.$RANDOM.out
	_err_f=${_out_f%.out}.err
	printf '%s' "$s" | $_VMRUN run "$VM_RUN/$n/agent" "$t" >"$_out_f" 2>"$_err_f"
	_rc=$?
	{
		_short what "$what"
		echo "[$(_since "$_T0")s] $n\$ $what"
		[ -s "$_out_f" ] && sed 's/^/  | /' "$_out_f" | head -200
		[ -s "$_err_f" ] && sed 's/^/  ! /' "$_err_f" | head -200
		[ "$_rc" = 0 ] || echo "  rc=$_rc"
	} >>"$VM_DIR/commands.log"
}

_emit() { cat "$_out_f"; cat "$_err_f" >&2; rm -f "$_out_f" "$_err_f"; }

_cmd() { # a command, shortened for messages
	local c="$*"
	[ ${#c} -le 160 ] || c="${c:0:150}...(${#c} chars)"
	printf '%s' "$c"
}
_short() { # VAR STRING: VAR=STRING shortened for messages (no subshell)
	local c="$2"
	[ ${#c} -le 160 ] || c="${c:0:150}...(${#c} chars)"
	printf -v "$1" '%s' "$c"
}

_excerpt() { # what to show of a failed command: ":" and its output's tail, if any
	local t
	t=$({
		tail -c 1500 "$_out_f"
		tail -c 1500 "$_err_f"
	} | sed 's/^/    /')
	[ -z "$t" ] || printf ':\n%s' "$t"
}

_harness_err() { grep -q '^vmctl: guest \|^vmctl: cannot\|^vmctl: timed out' "$_err_f"; }

_topt() { # parse "-t N": sets _t and _shift
	_t=$ON_TIMEOUT _shift=0
	if [ "${1:-}" = -t ]; then _t=$2 _shift=2; fi
}

on() { # [-t S] NAME CMD...: run; its stdout is ours; a non-zero exit fails the scenario
	_topt "$@"; shift $_shift
	local n=$1; shift
	_run "$_t" "$n" "$*"
	if [ "$_rc" != 0 ]; then
		fail "on $n: '$(_cmd "$*")' exited $_rc$(_excerpt)"
	fi
	_emit
}

on_each() { # [-t S] "NAME..." CMD...: run CMD on those guests in parallel; each must succeed;
	# prints the outputs in the order of the names
	_topt "$@"; shift $_shift
	local names=$1 n p pids=() tmpd
	shift
	tmpd=$VM_RUN/each.$BASHPID.$RANDOM
	mkdir -p "$tmpd"
	for n in $names; do
		on -t "$_t" "$n" "$@" >"$tmpd/$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for n in $names; do cat "$tmpd/$n"; done
	rm -rf "$tmpd"
}

on_try() { # [-t S] NAME CMD...: run; print its output; return its exit code (never fails)
	_topt "$@"; shift $_shift
	local n=$1; shift
	_run "$_t" "$n" "$*"
	_harness_err && fail "on_try $n: '$(_cmd "$*")': $(cat "$_err_f")"
	local rc=$_rc
	_emit
	return "$rc"
}

on_fail() { # [-t S] NAME CMD...: the command must exit non-zero (else the scenario fails)
	_topt "$@"; shift $_shift
	local n=$1; shift
	_run "$_t" "$n" "$*"
	_harness_err && fail "on_fail $n: '$(_cmd "$*")': $(cat "$_err_f")"
	[ "$_rc" != 0 ] || fail "on $n: '$(_cmd "$*")' succeeded but was expected to fail$(_excerpt)"
	_emit
	return 0
}

expect_errno() { # [-t S] NAME ERRNO CMD...: must fail with that error's message on stderr
	_topt "$@"; shift $_shift
	local n=$1 e=$2 msg; shift 2
	msg=$(/usr/bin/python3 -I -S -c 'import errno,os,sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$e" 2>/dev/null) ||
		fail "expect_errno: unknown errno name '$e'"
	_run "$_t" "$n" "$*"
	_harness_err && fail "expect_errno $n: '$(_cmd "$*")': $(cat "$_err_f")"
	[ "$_rc" != 0 ] || fail "on $n: '$(_cmd "$*")' succeeded, expected $e$(_excerpt)"
	grep -qF "$msg" "$_err_f" || fail "on $n: '$(_cmd "$*")' failed ($_rc) but not with $e ('$msg')$(_excerpt)"
	_emit 2>/dev/null
	return 0
}

wait_for() { # [-t S] NAME CMD...: retry CMD in the guest every 0.2 s until it succeeds (default 30 s)
	local t=30
	if [ "${1:-}" = -t ]; then t=$2; shift 2; fi
	local n=$1; shift
	local s="$*"
	_run "$((t + 10))" "$n" "end=\$((\$(cut -d. -f1 /proc/uptime) + $t))
while :; do
	( $s
) >/tmp/.wait_for.out 2>&1 && exit 0
	[ \$(cut -d. -f1 /proc/uptime) -ge \$end ] && { cat /tmp/.wait_for.out; exit 124; }
	sleep 0.2
done" "wait_for -t $t: $s"
	[ "$_rc" = 0 ] || fail "wait_for $n: '$(_cmd "$s")' not true after ${t}s (rc $_rc)$(_excerpt)"
	rm -f "$_out_f" "$_err_f"
}

on_bg() { # NAME CMD...: start CMD in the background in the guest; prints a handle for bg_wait
	local n=$1 seq; shift
	seq=$(($(cat "$VM_RUN/bgseq" 2>/dev/null || echo 0) + 1))
	echo "$seq" >"$VM_RUN/bgseq"
	local b64
	b64=$(printf '%s' "$*" | base64 -w0)
	_run "$ON_TIMEOUT" "$n" "set -e
mkdir -p /run/bg
echo $b64 | base64 -d >/run/bg/$seq.sh
rm -f /run/bg/$seq.rc
setsid sh -c 'sh /run/bg/$seq.sh >/run/bg/$seq.out 2>&1; echo \$? >/run/bg/$seq.rc.tmp; mv /run/bg/$seq.rc.tmp /run/bg/$seq.rc' </dev/null >/dev/null 2>&1 &
echo \$! >/run/bg/$seq.pid" "on_bg ($n:$seq): $*"
	[ "$_rc" = 0 ] || fail "on_bg $n: cannot start '$(_cmd "$*")'$(_excerpt)"
	rm -f "$_out_f" "$_err_f"
	echo "$n:$seq"
}

_bg_wait() { # TIMEOUT HANDLE -> sets _rc (job's), prints output
	local t=$1 n=${2%%:*} seq=${2#*:}
	_run "$((t + 10))" "$n" "end=\$((\$(cut -d. -f1 /proc/uptime) + $t))
while [ ! -e /run/bg/$seq.rc ]; do
	[ \$(cut -d. -f1 /proc/uptime) -ge \$end ] && { echo 'bg job $seq still running after ${t}s' >&2; exit 255; }
	sleep 0.2
done
cat /run/bg/$seq.out; exit \$(cat /run/bg/$seq.rc)" "bg_wait -t $t $2"
}

bg_wait() { # [-t S] HANDLE: wait for a background job; print its output; non-zero exit fails
	_topt "$@"; shift $_shift
	_bg_wait "$_t" "$1"
	[ "$_rc" = 0 ] || fail "background job $1 exited $_rc$(_excerpt)"
	_emit
}

bg_wait_try() { # [-t S] HANDLE: like bg_wait but returns the job's exit code
	_topt "$@"; shift $_shift
	_bg_wait "$_t" "$1"
	_harness_err && fail "bg_wait_try $1: $(cat "$_err_f")"
	local rc=$_rc
	_emit
	return "$rc"
}

bg_kill() { # HANDLE: kill a background job (its whole session)
	local n=${1%%:*} seq=${1#*:}
	on_try "$n" "kill -9 -\$(cat /run/bg/$seq.pid) 2>/dev/null; true" >/dev/null
}

vm_monitor() { # NAME HMP-COMMAND...: run a QEMU human-monitor command for the guest, print its output
	local n=$1; shift
	vm_running "$n" || fail "vm_monitor: $n is not running"
	$_VMCTL hmp "$VM_RUN/$n/mon" "$@" || fail "vm_monitor $n: '$*' failed"
}

vm_put() { # NAME HOSTFILE GUESTPATH: copy a (small) file into the guest
	local b64
	b64=$(base64 -w0 "$2") || fail "vm_put: cannot read $2"
	on "$1" "echo $b64 | base64 -d >'$3'" >/dev/null
}

# ---- checks ------------------------------------------------------------------------------
expect_eq() { # ACTUAL EXPECTED [WHAT]
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}
expect_ne() { # ACTUAL UNEXPECTED [WHAT]
	[ "$1" != "$2" ] || fail "${3:-value}: got '$1', expected something else"
}
expect_match() { # STRING ERE [WHAT]
	[[ $1 =~ $2 ]] || fail "${3:-value}: '$1' does not match /$2/"
}
expect_nomatch() { # STRING ERE [WHAT]
	[[ $1 =~ $2 ]] && fail "${3:-value}: '$1' matches /$2/"
	return 0
}

log_allow() { # ERE: kernel log lines matching it do not fail the scenario (use sparingly)
	echo "$1" >>"$VM_DIR/log_allow"
}

# ---- end of scenario (called by scenario.sh) ---------------------------------------------
# Kernel log lines that fail a scenario.
_SPLAT='WARNING:|BUG:|BUG kmalloc|kernel BUG|Oops|KASAN|UBSAN|general protection fault|Kernel panic|possible recursive locking|circular locking|inconsistent lock state|possible irq lock inversion|bad unlock balance|lock held when returning|suspicious RCU usage|held lock freed|refcount_t:|unreferenced object|Call Trace|list_(add|del) corruption|blocked for more than|soft lockup|hard LOCKUP|rcu_.* stall|detected stall'

_finish() { # collect logs of live guests, stop them, check the logs (uses the second agent)
	local n out bad="" f
	for n in $_ALL_GUESTS; do
		vm_running "$n" || continue
		if [ "${_TIMED_OUT:-0}" = 1 ]; then # show blocked tasks
			printf 'echo w >/proc/sysrq-trigger' | $_VMRUN run "$VM_RUN/$n/agent2" 10 >/dev/null 2>&1
		fi
		printf 'dmesg' | $_VMRUN run "$VM_RUN/$n/agent2" 30 >"$VM_DIR/$n.dmesg" 2>&1
		if [ "$KMEMLEAK" = 1 ] && [ "${_TIMED_OUT:-0}" != 1 ]; then
			local t0=$EPOCHREALTIME
			printf 'echo scan >/sys/kernel/debug/kmemleak && cat /sys/kernel/debug/kmemleak' |
				$_VMRUN run "$VM_RUN/$n/agent2" 120 >"$VM_DIR/$n.kmemleak" 2>&1
			echo "$n kmemleak scan $(_since "$t0")s" >>"$VM_DIR/timings"
		fi
	done
	_kill_all
	for f in "$VM_DIR"/*.serial.log "$VM_DIR"/*.dmesg "$VM_DIR"/*.kmemleak; do
		[ -f "$f" ] || continue
		out=$(grep -aE "$_SPLAT" "$f" | { if [ -s "$VM_DIR/log_allow" ]; then grep -avEf "$VM_DIR/log_allow"; else cat; fi; } | head -3)
		[ -n "$out" ] && bad="$bad; $(basename "$f"): $(echo "$out" | sed 's/^\[ *[0-9.]*\] //' | tr '\n' '|' | sed 's/|$//' | cut -c1-240)"
	done
	[ -z "$bad" ] || printf 'kernel log: %s\n' "${bad#; }" >"$VM_DIR/splat"
}

_kill_all() {
	local p pid
	for p in "$VM_RUN"/*/pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p")
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	for p in "$VM_RUN"/*/pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p")
		for _ in $(seq 100); do _alive "$pid" || break; sleep 0.05; done
		rm -f "$p"
	done
}
