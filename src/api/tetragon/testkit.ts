// Test helpers for the Tetragon API tests: synthetic events built like the
// process cache builds them (the agent itself takes execId from the model).
import type { ExecEvent, ExitEvent, PodInfo, ProcessInfo, WallTime } from '../../model/event';

/** exec_id = base64("<node>:<ktime>:<pid>"), standard alphabet with padding. */
export function makeExecId(node: string, ktime: bigint | number, pid: number): string {
  return Buffer.from(`${node}:${ktime}:${pid}`).toString('base64');
}

export function wallTime(rfc3339: string): WallTime {
  const m = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(rfc3339);
  if (!m) throw new Error(`bad time ${rfc3339}`);
  return { sec: Date.parse(m[1] + 'Z') / 1000, nsec: Number((m[2] ?? '').padEnd(9, '0')) };
}

export function makeProcess(over: Partial<ProcessInfo> = {}): ProcessInfo {
  const node = 'mynode';
  const pid = over.pid ?? 4242;
  const ktime = over.ktime ?? 1234567890n;
  return {
    execId: makeExecId(node, ktime, pid),
    parentExecId: makeExecId(node, 1000n, 1),
    pid,
    tid: pid,
    ktime,
    creds: { uid: 1000, gid: 1000, euid: 1000, egid: 1000 },
    auid: 4294967295,
    cwd: '/home/user',
    binary: '/usr/bin/true',
    args: [],
    arguments: '',
    flags: 'execve clone',
    startTime: { sec: 1696629837, nsec: 700327580 },
    cgroupId: 1n,
    docker: '',
    refcnt: 0,
    ...over,
  };
}

export function makeExec(process: ProcessInfo, parent?: ProcessInfo, nodeName = 'mynode', time?: WallTime): ExecEvent {
  return { kind: 'exec', seq: 0, time: time ?? process.startTime, nodeName, process, parent, wire: new Map() };
}

export function makeExit(
  process: ProcessInfo,
  status: number,
  signal: string,
  parent?: ProcessInfo,
  nodeName = 'mynode',
  time: WallTime = { sec: 1696629840, nsec: 0 },
): ExitEvent {
  return { kind: 'exit', seq: 0, time, nodeName, process, parent, status, signal, wire: new Map() };
}

/** The pod of the upstream §6.1 example. */
export function xwingPod(): PodInfo {
  return {
    namespace: 'default',
    name: 'xwing',
    labels: { 'app.kubernetes.io/name': 'xwing', class: 'xwing', org: 'alliance' },
    workload: 'xwing',
    container: {
      id: 'containerd://551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3',
      name: 'spaceship',
      imageId: 'docker.io/tgraf/netperf@sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6',
      imageName: 'docker.io/tgraf/netperf:latest',
      startTime: wallTime('2023-10-06T21:52:41Z'),
      pid: 49,
    },
  };
}

const EXAMPLE_NODE = 'gke-john-632-default-pool-7041cac0-9s95';

/** The process_exec event of the contract's §6.1 example, as the model would carry it. */
export function example61(): ExecEvent {
  const parent = makeProcess({
    execId: makeExecId(EXAMPLE_NODE, 13548670883299n, 52699),
    parentExecId: makeExecId(EXAMPLE_NODE, 13548645245839n, 52689),
    pid: 52699,
    tid: 52699,
    ktime: 13548670883299n,
    creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
    cwd: '/',
    binary: '/bin/bash',
    args: ['-c', 'curl https://ebpf.io/applications/#tetragon'],
    arguments: '-c "curl https://ebpf.io/applications/#tetragon"',
    flags: 'execve rootcwd clone',
    startTime: wallTime('2023-10-06T22:03:57.696889812Z'),
    docker: '551e161c47d8ff0eb665438a7bcd5b4',
    pod: xwingPod(),
  });
  const process = makeProcess({
    execId: makeExecId(EXAMPLE_NODE, 13548674321373n, 52699),
    parentExecId: parent.execId,
    pid: 52699,
    tid: 52699,
    ktime: 13548674321373n,
    creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
    cwd: '/',
    binary: '/usr/bin/curl',
    args: ['https://ebpf.io/applications/#tetragon'],
    arguments: 'https://ebpf.io/applications/#tetragon',
    flags: 'execve rootcwd',
    startTime: wallTime('2023-10-06T22:03:57.700327580Z'),
    docker: '551e161c47d8ff0eb665438a7bcd5b4',
    pod: xwingPod(),
  });
  return makeExec(process, parent, EXAMPLE_NODE, wallTime('2023-10-06T22:03:57.700326678Z'));
}

/** §6.1 verbatim (pretty-printed there; compared as parsed JSON). */
export const EXAMPLE_61_JSON = String.raw`{
  "process_exec": {
    "process": {
      "exec_id": "Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4Njc0MzIxMzczOjUyNjk5",
      "pid": 52699,
      "uid": 0,
      "cwd": "/",
      "binary": "/usr/bin/curl",
      "arguments": "https://ebpf.io/applications/#tetragon",
      "flags": "execve rootcwd",
      "start_time": "2023-10-06T22:03:57.700327580Z",
      "auid": 4294967295,
      "pod": {
        "namespace": "default",
        "name": "xwing",
        "container": {
          "id": "containerd://551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3",
          "name": "spaceship",
          "image": {
            "id": "docker.io/tgraf/netperf@sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6",
            "name": "docker.io/tgraf/netperf:latest"
          },
          "start_time": "2023-10-06T21:52:41Z",
          "pid": 49
        },
        "pod_labels": {
          "app.kubernetes.io/name": "xwing",
          "class": "xwing",
          "org": "alliance"
        },
        "workload": "xwing"
      },
      "docker": "551e161c47d8ff0eb665438a7bcd5b4",
      "parent_exec_id": "Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4NjcwODgzMjk5OjUyNjk5",
      "tid": 52699
    },
    "parent": {
      "exec_id": "Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4NjcwODgzMjk5OjUyNjk5",
      "pid": 52699,
      "uid": 0,
      "cwd": "/",
      "binary": "/bin/bash",
      "arguments": "-c \"curl https://ebpf.io/applications/#tetragon\"",
      "flags": "execve rootcwd clone",
      "start_time": "2023-10-06T22:03:57.696889812Z",
      "auid": 4294967295,
      "pod": {
        "namespace": "default",
        "name": "xwing",
        "container": {
          "id": "containerd://551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3",
          "name": "spaceship",
          "image": {
            "id": "docker.io/tgraf/netperf@sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6",
            "name": "docker.io/tgraf/netperf:latest"
          },
          "start_time": "2023-10-06T21:52:41Z",
          "pid": 49
        },
        "pod_labels": {
          "app.kubernetes.io/name": "xwing",
          "class": "xwing",
          "org": "alliance"
        },
        "workload": "xwing"
      },
      "docker": "551e161c47d8ff0eb665438a7bcd5b4",
      "parent_exec_id": "Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4NjQ1MjQ1ODM5OjUyNjg5",
      "tid": 52699
    }
  },
  "node_name": "gke-john-632-default-pool-7041cac0-9s95",
  "time": "2023-10-06T22:03:57.700326678Z"
}`;
