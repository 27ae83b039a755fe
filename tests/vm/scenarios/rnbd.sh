# SPDX-License-Identifier: GPL-2.0-or-later
# RNBD over RTRS over Soft-RoCE between two guests: clt maps stg0's disk (/dev/sda), writes
# random data and reads it back identical, on the client, on the server and in the host's disk
# image; then ext4 and a short fio verify run on the mapped device. Proves the transport, the
# guests' tools and the harness.
COST=15    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=240
NSTG=1

vm_boot clt stg0
on stg0 'modprobe rnbd-server'
on clt 'modprobe rnbd-client'
on clt "echo 'sessname=rnbd-stg0 path=ip:$(vm_ip stg0) device_path=/dev/sda' >/sys/class/rnbd-client/ctl/map_device"
wait_for clt '[ -b /dev/rnbd0 ]'
expect_eq "$(on clt 'blockdev --getsize64 /dev/rnbd0')" $((DISK_MB * 1048576)) "size of rnbd0"

on clt 'dd if=/dev/urandom of=/tmp/pat bs=1M count=8 2>/dev/null'
want=$(on clt 'sha256sum </tmp/pat')
log "$(on clt 'dd if=/tmp/pat of=/dev/rnbd0 bs=1M oflag=direct 2>&1 | tail -1')"
expect_eq "$(on clt 'dd if=/dev/rnbd0 bs=1M count=8 iflag=direct 2>/dev/null | sha256sum')" "$want" "data read back through rnbd0"
expect_eq "$(on stg0 'dd if=/dev/sda bs=1M count=8 iflag=direct 2>/dev/null | sha256sum')" "$want" "data on stg0's disk"
expect_eq "$(head -c 8M "$(vm_disk stg0)" | sha256sum)" "$want" "data in stg0's disk image on the host"

on clt 'mkfs.ext4 -q -F /dev/rnbd0 && mount /dev/rnbd0 /mnt && cp /tmp/pat /mnt/pat && umount /mnt'
on clt 'e2fsck -fn /dev/rnbd0 >/dev/null && mount /dev/rnbd0 /mnt && sha256sum </mnt/pat >/tmp/sum && umount /mnt'
expect_eq "$(on clt 'cat /tmp/sum')" "$want" "file on ext4 over rnbd0"

# fio with verification: 4 MiB of 16 KiB random writes at queue depth 16, then read back
log "fio randwrite+verify: $(on clt 'fio --name=verify --filename=/dev/rnbd0 --direct=1 --ioengine=libaio \
	--iodepth=16 --rw=randwrite --bs=16k --size=4M --verify=md5 --do_verify=1 \
	--output-format=terse --terse-version=3 | cut -d";" -f5,49' | sed 's/^0;/ok, write IOPS /')"

on clt 'echo normal >/sys/block/rnbd0/rnbd/unmap_device'
wait_for clt '[ ! -e /dev/rnbd0 ]'
