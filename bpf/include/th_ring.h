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

static __always_inline __u64 th_rb_flags(void *ring)
{
	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= th_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

#endif /* TH_RING_H */
