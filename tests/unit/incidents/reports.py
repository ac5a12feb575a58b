# ruff: noqa: E501 -- kernel lines are quoted as the kernel prints them, however long
"""Kernel reports the shipped captures lack, in the kernel's own output formats.

Each is what the named kernel function prints (x86_64, 6.x unless said),
one string per printk line, as netconsole sends them: no timestamps (those
are in the extended header), leading spaces kept.
"""

from __future__ import annotations

REGS = """\
RSP: 0018:ffffb4c0c04dfe90 EFLAGS: 00000202
RAX: 0000000000000000 RBX: ffff9a0c81d4c000 RCX: 0000000000000000
RDX: 0000000000000001 RSI: 0000000000000246 RDI: ffff9a0c81d4c000
RBP: ffffb4c0c04dfea8 R08: 0000000000000000 R09: ffffb4c0c04dfd38
R10: 0000000000000001 R11: 0000000000000000 R12: ffff9a0c8a1e2000
R13: 0000000000000000 R14: ffff9a0c81d4c0c0 R15: 0000000000000000
FS:  0000000000000000(0000) GS:ffff9a0cbfc80000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 00007f1d2c3b4000 CR3: 000000010a20e004 CR4: 0000000000370ee0"""

HW = "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014"

HUNG_TASK = """\
INFO: task kworker/u4:1:57 blocked for more than 120 seconds.
      Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:kworker/u4:1    state:D stack:0     pid:57    ppid:2      flags:0x00004000
Workqueue: writeback wb_workfn (flush-8:0)
Call Trace:
 <TASK>
 __schedule+0x34d/0x9e0
 schedule+0x5a/0xd0
 io_schedule+0x42/0x70
 bit_wait_io+0xd/0x60
 __wait_on_bit_lock+0x5d/0xb0
 out_of_line_wait_on_bit_lock+0x92/0xb0
 ? cpumask_weight.constprop.0+0x20/0x20
 __lock_buffer+0x2e/0x30
 do_get_write_access+0x2a3/0x3c0 [jbd2]
 jbd2_journal_get_write_access+0x63/0x80 [jbd2]
 __ext4_journal_get_write_access+0x8a/0x1a0 [ext4]
 ext4_reserve_inode_write+0x5d/0xa0 [ext4]
 __ext4_mark_inode_dirty+0x5b/0x220 [ext4]
 ext4_dirty_inode+0x5c/0x80 [ext4]
 __mark_inode_dirty+0x54/0x360
 ext4_writepages+0x5a1/0xfa0 [ext4]
 do_writepages+0xcf/0x1e0
 __writeback_single_inode+0x3d/0x360
 writeback_sb_inodes+0x1ed/0x4a0
 wb_workfn+0x31b/0x4f0
 process_one_work+0x1c7/0x380
 worker_thread+0x4d/0x380
 ? rescuer_thread+0x3a0/0x3a0
 kthread+0xda/0x100
 ? kthread_complete_and_exit+0x20/0x20
 ret_from_fork+0x22/0x30
 </TASK>"""

OOM = f"""\
stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
CPU: 1 PID: 1234 Comm: stress Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
Call Trace:
 <TASK>
 dump_stack_lvl+0x44/0x5c
 dump_header+0x4a/0x211
 oom_kill_process.cold+0xb/0x10
 out_of_memory+0x1fd/0x4c0
 __alloc_pages_slowpath.constprop.0+0xc8b/0xe00
 __alloc_pages+0x305/0x330
 __folio_alloc+0x16/0x40
 vma_alloc_folio+0x98/0x370
 __handle_mm_fault+0x8c4/0xee0
 handle_mm_fault+0xdb/0x2d0
 do_user_addr_fault+0x1b0/0x570
 exc_page_fault+0x70/0x170
 asm_exc_page_fault+0x22/0x30
RIP: 0033:0x55d3c3a0b9f0
Code: Unable to access opcode bytes at 0x55d3c3a0b9c6.
RSP: 002b:00007ffd4bd8c3b0 EFLAGS: 00010206
 </TASK>
Mem-Info:
active_anon:10 inactive_anon:240113 isolated_anon:0
 active_file:31 inactive_file:41 isolated_file:0
 free:1331 free_pcp:59 free_cma:0
Node 0 active_anon:40kB inactive_anon:960452kB active_file:124kB all_unreclaimable? yes
Node 0 DMA free:3808kB boost:0kB min:180kB low:224kB high:268kB present:15992kB managed:15360kB
lowmem_reserve[]: 0 954 954 954 954
Node 0 DMA: 0*4kB 0*8kB 0*16kB 1*32kB (U) 1*64kB (U) 1*128kB (U) 1*512kB (U) = 3808kB
76 total pagecache pages
0 pages in swap cache
Free swap  = 0kB
Total swap = 0kB
262014 pages RAM
16617 pages reserved
Tasks state (memory values in pages):
[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
[    201]     0   201     5573      338    77824        0             0 systemd-journal
[   1234]     0  1234   263172   240000  1970176        0             0 stress
oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice,task=stress,pid=1234,uid=0
Out of memory: Killed process 1234 (stress) total-vm:1052688kB, anon-rss:960000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:1924kB oom_score_adj:0"""

RCU_STALL = f"""\
rcu: INFO: rcu_preempt self-detected stall on CPU
rcu: \t1-....: (5249 ticks this GP) idle=6d4c/1/0x4000000000000000 softirq=12874/12874 fqs=2625
\t(t=5250 jiffies g=19265 q=1361 ncpus=2)
CPU: 1 PID: 312 Comm: spin Tainted: G           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
RIP: 0010:spin_forever+0x15/0x30 [spinmod]
Code: 00 00 00 00 0f 1f 44 00 00 55 48 89 e5 53 48 89 fb eb 02 f3 90 <48> 8b 03 a8 01 75 f7 5b 5d c3
{REGS}
Call Trace:
 <IRQ>
 ? rcu_dump_cpu_stacks+0xa4/0xe0
 ? rcu_sched_clock_irq.cold+0x4f/0x2c6
 ? update_process_times+0x93/0xd0
 ? tick_sched_handle+0x22/0x60
 ? tick_sched_timer+0x71/0x90
 ? __hrtimer_run_queues+0x112/0x2b0
 ? hrtimer_interrupt+0xff/0x220
 ? __sysvec_apic_timer_interrupt+0x53/0x100
 ? sysvec_apic_timer_interrupt+0x69/0x90
 </IRQ>
 <TASK>
 ? asm_sysvec_apic_timer_interrupt+0x16/0x20
 ? spin_forever+0x15/0x30 [spinmod]
 spinmod_init+0x19/0xff0 [spinmod]
 do_one_initcall+0x41/0x200
 do_init_module+0x4c/0x210
 __do_sys_finit_module+0x9e/0xf0
 do_syscall_64+0x58/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>"""

SOFT_LOCKUP = f"""\
watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [spin:312]
Modules linked in: spinmod(O) netconsole configfs virtio_net net_failover failover
CPU: 0 PID: 312 Comm: spin Tainted: G           O L     6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
RIP: 0010:spin_forever+0x15/0x30 [spinmod]
Code: 00 00 00 00 0f 1f 44 00 00 55 48 89 e5 53 48 89 fb eb 02 f3 90 <48> 8b 03 a8 01 75 f7 5b 5d c3
{REGS}
Call Trace:
 <IRQ>
 ? watchdog_timer_fn+0x1ab/0x210
 ? softlockup_fn+0x70/0x70
 ? __hrtimer_run_queues+0x112/0x2b0
 ? hrtimer_interrupt+0xff/0x220
 ? __sysvec_apic_timer_interrupt+0x53/0x100
 ? sysvec_apic_timer_interrupt+0x69/0x90
 </IRQ>
 <TASK>
 ? asm_sysvec_apic_timer_interrupt+0x16/0x20
 ? spin_forever+0x15/0x30 [spinmod]
 spinmod_init+0x19/0xff0 [spinmod]
 do_one_initcall+0x41/0x200
 do_init_module+0x4c/0x210
 __do_sys_finit_module+0x9e/0xf0
 do_syscall_64+0x58/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>"""

HARD_LOCKUP = f"""\
watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in: foo(O) netconsole configfs virtio_net
CPU: 1 PID: 0 Comm: swapper/1 Tainted: G           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
RIP: 0010:native_queued_spin_lock_slowpath+0x1c5/0x2a0
Code: 00 00 f0 0f ba 2b 08 0f 92 c0 0f b6 c0 c1 e0 08 89 c2 8b 03 30 e4 09 d0 a9 00 01 ff ff 75 48 85 c0 74 0e 8b 03 84 c0 74 08 f3 90 <8b> 03 84 c0 75 f8 b8 01 00 00 00 66 89 03 5b 5d
{REGS}
Call Trace:
 <NMI>
 ? watchdog_hardlockup_check+0x1a6/0x1c0
 ? __perf_event_overflow+0xe5/0x2a0
 ? handle_pmi_common+0x17e/0x3a0
 </NMI>
 <IRQ>
 _raw_spin_lock+0x29/0x30
 foo_irq_handler+0x2a/0x90 [foo]
 __handle_irq_event_percpu+0x4a/0x180
 handle_irq_event+0x38/0x80
 handle_edge_irq+0x8b/0x230
 __common_interrupt+0x41/0xa0
 common_interrupt+0x80/0xa0
 </IRQ>
 <TASK>
 asm_common_interrupt+0x26/0x40
RIP: 0010:default_idle+0xb/0x10
Code: 07 76 e7 48 83 c4 08 5b 5d 41 5c 41 5d c3 cc cc cc cc 0f 1f 44 00 00 eb 07 0f 00 2d 02 5b 4d 00 fb f4 <c3> cc cc cc cc
 default_idle_call+0x30/0x100
 do_idle+0x26b/0x2a0
 cpu_startup_entry+0x29/0x30
 start_secondary+0x11e/0x140
 secondary_startup_64_no_verify+0xe5/0xeb
 </TASK>
Kernel panic - not syncing: Hard LOCKUP
CPU: 1 PID: 0 Comm: swapper/1 Tainted: G           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
Call Trace:
 <NMI>
 dump_stack_lvl+0x44/0x5c
 panic+0x118/0x2ed
 nmi_panic.cold+0xc/0xc
 watchdog_hardlockup_check.cold+0x20/0x20
 </NMI>
Kernel Offset: 0x2a000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
---[ end Kernel panic - not syncing: Hard LOCKUP ]---"""

MCE = """\
mce: [Hardware Error]: CPU 2: Machine Check Exception: 5 Bank 4: b200000000070f0f
mce: [Hardware Error]: RIP !INEXACT! 10:<ffffffff8d9e5a47> {intel_idle+0x87/0x130}
mce: [Hardware Error]: TSC 29f5a2e1c4f6
mce: [Hardware Error]: PROCESSOR 0:50654 TIME 1700000000 SOCKET 0 APIC 4 microcode 2006d05
mce: [Hardware Error]: Run the above through 'mcelog --ascii'
mce: [Hardware Error]: Machine check: Processor context corrupt
Kernel panic - not syncing: Fatal machine check
Kernel Offset: 0x2a000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
---[ end Kernel panic - not syncing: Fatal machine check ]---"""

GPF = f"""\
general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI
CPU: 3 PID: 2211 Comm: kworker/3:2 Tainted: G        W          6.1.0-18-amd64 #1  Debian 6.1.76-1
Hardware name: Dell Inc. PowerEdge R640/0W23H8, BIOS 2.19.1 06/05/2023
Workqueue: events mlx5e_rx_dim_work [mlx5_core]
RIP: 0010:__list_del_entry_valid+0x25/0xc0
Code: 00 00 00 48 8b 17 4c 8b 47 08 48 b8 00 01 00 00 00 00 ad de 48 39 c2 74 26 48 b8 22 01 00 00 00 00 ad de <49> 39 c0
{REGS}
Call Trace:
 <TASK>
 ? __die_body.cold+0x1a/0x1f
 ? die_addr+0x38/0x60
 ? exc_general_protection+0x221/0x4a0
 ? asm_exc_general_protection+0x22/0x30
 ? __list_del_entry_valid+0x25/0xc0
 mlx5e_free_rx_descs+0x5e/0x160 [mlx5_core]
 mlx5e_close_rq+0x2a/0x80 [mlx5_core]
 process_one_work+0x1c7/0x380
 worker_thread+0x4d/0x380
 kthread+0xd7/0x100
 ret_from_fork+0x1f/0x30
 </TASK>
Modules linked in: mlx5_core mlxfw psample tls pci_hyperv_intf
---[ end trace 0000000000000000 ]---
RIP: 0010:__list_del_entry_valid+0x25/0xc0
Code: 00 00 00 48 8b 17 4c 8b 47 08 48 b8 00 01 00 00 00 00 ad de 48 39 c2 74 26 48 b8 22 01 00 00 00 00 ad de <49> 39 c0
{REGS}
Kernel panic - not syncing: Fatal exception
Kernel Offset: 0x1a000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
---[ end Kernel panic - not syncing: Fatal exception ]---"""

KASAN = f"""\
==================================================================
BUG: KASAN: slab-use-after-free in nfc_llcp_find_local+0x2d/0x90 [nfc]
Read of size 8 at addr ffff888021e3b010 by task kworker/0:3/5203

CPU: 0 PID: 5203 Comm: kworker/0:3 Not tainted 6.5.0-1-amd64 #1  Debian 6.5.3-1
{HW}
Workqueue: events nfc_urelease_event_work [nfc]
Call Trace:
 <TASK>
 dump_stack_lvl+0x48/0x70
 print_report+0xc4/0x620
 kasan_report+0xda/0x110
 nfc_llcp_find_local+0x2d/0x90 [nfc]
 nfc_llcp_unregister_device+0x1f/0x80 [nfc]
 nfc_unregister_device+0x196/0x330 [nfc]
 process_one_work+0x1c7/0x380
 worker_thread+0x4d/0x380
 kthread+0xd7/0x100
 ret_from_fork+0x1f/0x30
 </TASK>

Allocated by task 5202:
 kasan_save_stack+0x22/0x40
 kasan_set_track+0x25/0x30
 __kasan_kmalloc+0x7f/0x90
 nfc_llcp_register_device+0x49/0xa40 [nfc]
 nfc_register_device+0x61/0x260 [nfc]

Freed by task 5203:
 kasan_save_stack+0x22/0x40
 kfree+0xc4/0x160
 nfc_llcp_local_put+0x17d/0x1f0 [nfc]

The buggy address belongs to the object at ffff888021e3b000
 which belongs to the cache kmalloc-2k of size 2048
The buggy address is located 16 bytes inside of
 freed 2048-byte region [ffff888021e3b000, ffff888021e3b800)
=================================================================="""

UBSAN = f"""\
================================================================================
UBSAN: array-index-out-of-bounds in drivers/net/wireless/foo/ie.c:1234:19
index 8 is out of range for type 'u8 [8]'
CPU: 1 PID: 842 Comm: kworker/1:2 Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
Workqueue: events foo_work [foo]
Call Trace:
 <TASK>
 dump_stack_lvl+0x44/0x5c
 __ubsan_handle_out_of_bounds.cold+0x44/0x49
 foo_parse_ie+0x1cb/0x1e0 [foo]
 foo_work+0x8e/0x1a0 [foo]
 process_one_work+0x1c7/0x380
 worker_thread+0x4d/0x380
 kthread+0xd7/0x100
 ret_from_fork+0x1f/0x30
 </TASK>
================================================================================"""

LOCKDEP = f"""\

======================================================
WARNING: possible circular locking dependency detected
6.1.0-rc1 #1 Not tainted
------------------------------------------------------
kworker/0:1/12 is trying to acquire lock:
ffff888100a3c0d8 (&dev->mutex){{+.+.}}-{{3:3}}, at: foo_reset+0x2c/0x90 [foo]

but task is already holding lock:
ffffffff82a5e6e8 (rtnl_mutex){{+.+.}}-{{3:3}}, at: foo_work+0x19/0x40 [foo]

which lock already depends on the new lock.


the existing dependency chain (in reverse order) is:

-> #1 (rtnl_mutex){{+.+.}}-{{3:3}}:
       __mutex_lock+0x8f/0x890
       foo_open+0x22/0x80 [foo]

-> #0 (&dev->mutex){{+.+.}}-{{3:3}}:
       __lock_acquire+0x1170/0x1ec0
       lock_acquire+0xc2/0x2b0
       __mutex_lock+0x8f/0x890
       foo_reset+0x2c/0x90 [foo]

other info that might help us debug this:

 Possible unsafe locking scenario:

       CPU0                    CPU1
       ----                    ----
  lock(rtnl_mutex);
                               lock(&dev->mutex);
                               lock(rtnl_mutex);
  lock(&dev->mutex);

 *** DEADLOCK ***

2 locks held by kworker/0:1/12:
 #0: ffff888100051948 ((wq_completion)events){{+.+.}}-{{0:0}}, at: process_one_work+0x1e6/0x5a0
 #1: ffffffff82a5e6e8 (rtnl_mutex){{+.+.}}-{{3:3}}, at: foo_work+0x19/0x40 [foo]

stack backtrace:
CPU: 0 PID: 12 Comm: kworker/0:1 Not tainted 6.1.0-rc1 #1
{HW}
Workqueue: events foo_work [foo]
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 check_noncircular+0x10d/0x130
 __lock_acquire+0x1170/0x1ec0
 lock_acquire+0xc2/0x2b0
 __mutex_lock+0x8f/0x890
 foo_reset+0x2c/0x90 [foo]
 foo_work+0x2e/0x40 [foo]
 process_one_work+0x26c/0x5a0
 worker_thread+0x52/0x3e0
 kthread+0xe5/0x110
 ret_from_fork+0x1f/0x30
 </TASK>"""

KERNEL_BUG = f"""\
------------[ cut here ]------------
kernel BUG at fs/ext4/inode.c:2786!
invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
CPU: 2 PID: 1456 Comm: kworker/u16:3 Tainted: G        W          6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
Workqueue: writeback wb_workfn (flush-8:0)
RIP: 0010:ext4_writepages+0xf1e/0x1010 [ext4]
Code: 0f 0b 48 8b 85 38 ff ff ff 48 8b 40 20 <0f> 0b
{REGS}
Call Trace:
 <TASK>
 ? __die_body.cold+0x1a/0x1f
 ? die+0x2a/0x50
 ? do_trap+0xc5/0x110
 ? ext4_writepages+0xf1e/0x1010 [ext4]
 ? exc_invalid_op+0x4c/0x60
 ? asm_exc_invalid_op+0x16/0x20
 do_writepages+0xcf/0x1e0
 __writeback_single_inode+0x3d/0x360
 writeback_sb_inodes+0x1ed/0x4a0
 wb_workfn+0x31b/0x4f0
 process_one_work+0x1c7/0x380
 </TASK>
Modules linked in: ext4 crc16 mbcache jbd2
---[ end trace 0000000000000000 ]---"""

SCHED_ATOMIC = f"""\
BUG: scheduling while atomic: insmod/1234/0x00000002
Modules linked in: foo(O+) netconsole
CPU: 0 PID: 1234 Comm: insmod Tainted: G           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
Call Trace:
 <TASK>
 dump_stack_lvl+0x44/0x5c
 __schedule_bug.cold+0x47/0x53
 __schedule+0x6e1/0x9e0
 schedule+0x5a/0xd0
 schedule_timeout+0x88/0x140
 msleep+0x29/0x40
 foo_init+0x2d/0x1000 [foo]
 do_one_initcall+0x41/0x200
 </TASK>"""

EXT4_ERRORS = """\
EXT4-fs error (device sda1): ext4_find_entry:1580: inode #2: comm ls: reading directory lblock 0
EXT4-fs error (device sda1): ext4_find_entry:1580: inode #2: comm ls: reading directory lblock 0
EXT4-fs (sda1): Remounting filesystem read-only"""

XFS_ERROR = """\
XFS (dm-0): Metadata corruption detected at xfs_dinode_verify+0xa0/0x6f0 [xfs], inode 0x4a1 dinode
XFS (dm-0): Unmount and run xfs_repair"""

BTRFS_ERROR = """\
BTRFS error (device nvme0n1p2): bdev /dev/nvme0n1p2 errs: wr 0, rd 1, flush 0, corrupt 0, gen 0"""

IO_ERRORS = """\
I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2
Buffer I/O error on dev sdb, logical block 256, async page read
I/O error, dev sdb, sector 2056 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"""

NETDEV_WATCHDOG = """\
virtio_net virtio0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5120 ms
virtio_net virtio0 eth0: TX timeout on queue: 0, sq: output.0, vq: 0x1, name: output.0, 5120 usecs ago"""

NETDEV_WATCHDOG_WARN = f"""\
------------[ cut here ]------------
NETDEV WATCHDOG: eth0 (e1000e): transmit queue 0 timed out
WARNING: CPU: 0 PID: 0 at net/sched/sch_generic.c:477 dev_watchdog+0x259/0x260
Modules linked in: e1000e ptp pps_core
CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.10.0-21-amd64 #1 Debian 5.10.162-1
{HW}
RIP: 0010:dev_watchdog+0x259/0x260
Code: e8 6f 8c fb ff eb a5 4c 89 ef c6 05 e5 8f fe 00 01 e8 5f 4c fa ff 89 d9 4c 89 ee <0f> 0b
{REGS}
Call Trace:
 <IRQ>
 ? pfifo_fast_enqueue+0x150/0x150
 call_timer_fn+0x29/0xf0
 __run_timers.part.0+0x1d8/0x250
 run_timer_softirq+0x26/0x50
 __do_softirq+0xc5/0x275
 </IRQ>
---[ end trace 5c4e1a6b0d4b1e6c ]---"""

WARN_TEMPLATE = f"""\
------------[ cut here ]------------
WARNING: CPU: {{cpu}} PID: {{pid}} at drivers/net/foo/foo_main.c:{{line}} foo_tx+0x{{off}}/0x2a0 [foo]
Modules linked in: foo(O) netconsole
CPU: {{cpu}} PID: {{pid}} Comm: {{comm}} Tainted: G           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
{HW}
RIP: 0010:foo_tx+0x{{off}}/0x2a0 [foo]
Code: 48 c7 c7 60 82 3d c0 e8 f9 fd ae d4 <0f> 0b e9 5e fd ff ff
RSP: 0018:ffffb4c0{{addr}} EFLAGS: 00010246
RAX: 0000000000000000 RBX: ffff9a0c{{addr}} RCX: 0000000000000000
Call Trace:
 <TASK>
 foo_xmit+0x5c/0x1a0 [foo]
 dev_hard_start_xmit+0x63/0x1c0
 __dev_queue_xmit+0x26b/0xd30
 ip_finish_output2+0x287/0x5a0
 </TASK>
---[ end trace 0000000000000000 ]---"""


def warn(*, cpu: int = 1, pid: int = 160, comm: str = "insmod", line: int = 98,
         off: str = "2e7", addr: str = "c04dfe90") -> str:
    """A WARN in foo_tx with the numbers a host, a boot or a build would change."""
    return WARN_TEMPLATE.format(cpu=cpu, pid=pid, comm=comm, line=line, off=off, addr=addr)


def corpus_lines() -> list[str]:
    """Every line of these reports and of the shipped crash and panic captures."""
    from tests.helpers import capture, decode_capture, records

    lines = [line for name, value in globals().items() if name.isupper()
             for line in str(value).split("\n")]
    lines += warn().split("\n")
    for scenario in ("crash", "panic"):
        for r in records(decode_capture(capture("6.12.117+deb12-amd64", scenario))):
            lines += r.text.decode("utf-8", "replace").split("\n")
    return lines
