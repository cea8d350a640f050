/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Ring-buffer submission without a wake-up per record. Waking the consumer
 * costs the producing task tens of microseconds on virtualised hosts (an IPI
 * per record); the consumer drains the rings every few ms anyway (native/
 * ring.cc pollMs), so records are submitted quietly until th_wakeup_bytes are
 * waiting, and only then is the consumer woken.
 */
#ifndef TH_RING_H
#define TH_RING_H

/* Set from user space (rodata); 0 wakes on every record. */
const volatile __u64 th_wakeup_bytes = 65536;

/*
 * Wake only as the backlog crosses th_wakeup_bytes (within one window), not
 * on every record above it: in a storm the backlog stays above the mark
 * between polls, and a wake-up per record (an irq_work self-IPI, a VM exit
 * on virtual machines) costs the producer microseconds each. A crossing
 * missed by a large record costs at most one poll interval.
 */
#define TH_WAKEUP_WINDOW 8192

static __always_inline __u64 th_rb_flags(void *ring)
{
	__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);

	if (avail >= th_wakeup_bytes && avail < th_wakeup_bytes + TH_WAKEUP_WINDOW)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

#endif /* TH_RING_H */
