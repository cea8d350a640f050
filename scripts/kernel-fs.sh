# Mounts the kernel filesystems BPF needs when this host has not (bpffs, tracefs).
if [ "$(id -u)" -eq 0 ]; then
  mountpoint -q /sys/fs/bpf 2>/dev/null || { mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true; }
  [ -e /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi
