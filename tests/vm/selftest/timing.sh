# SPDX-License-Identifier: GPL-2.0-or-later
# Harness self-test and measurement: boot time of one guest (three boots), of three guests at
# once, and the host round trip of a trivial command. Numbers go to the scenario log.
TIMEOUT=300
NSTG=2
KMEMLEAK=0

for i in 1 2 3; do
	vm_boot stg0
	vm_kill stg0
done
vm_boot
t0=$EPOCHREALTIME
for i in $(seq 30); do on clt true; done
log "on round trip: $(( (${EPOCHREALTIME/./} - ${t0/./}) / 30000 )) ms (mean of 30)"
t0=$EPOCHREALTIME
for i in $(seq 30); do on clt 'cat /proc/uptime' >/dev/null; done
log "on round trip with output: $(( (${EPOCHREALTIME/./} - ${t0/./}) / 30000 )) ms (mean of 30)"
t0=$EPOCHREALTIME
wait_for clt 'true'
log "wait_for (true at once): $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms"
