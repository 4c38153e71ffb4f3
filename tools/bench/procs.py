#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""procs.py: upvm-bench with processes: N upvm-bench processes at once,
each with its own region, under ONE budget, in two modes side by side:

  kernel-swap  the N processes (upvm-bench --mode native) in one memory
               cgroup (v1) limited to the budget, with a swap file on;
  upvmd        the N processes (upvm-bench --mode upvm) attached to one
               upvmd holding the budget;
  upvm         (optional) the N processes under upvm each with a budget
               of its own, the budget / N: what upvm does without upvmd.

For each repeat and workload, the modes alternate; each process reports
its own GiB/s (its timed phase) and the script adds the aggregate (all
bytes over the wall time of the slowest) and samples the sum of the
processes' RssAnon every 50 ms (the peak against the budget).

usage: procs.py --bench UPVM-BENCH --upvmd UPVMD --upvm UPVM [--procs 4]
                [--size 1G] [--budget 1G] [-w seq-write,seq-read,rand-read]
                [--ops N] [-r 2] [--swap-dir DIR] [--modes kernel-swap,upvmd]
Root, cgroup v1 memory controller at /sys/fs/cgroup/memory.  Cleans up
its swap file, cgroup and daemon.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CG = "/sys/fs/cgroup/memory"


def size(s):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(s[:-1]) * m[s[-1].upper()] if s[-1].upper() in m else int(s)


def rss_anon(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class KernelSwap:
    """one memory cgroup with the budget, and a swap file of our own"""

    def __init__(self, a, work):
        self.swap = os.path.join(a.swap_dir, f"procs-swap.{os.getpid()}")
        need = a.procs * a.size + (256 << 20)
        subprocess.run(["fallocate", "-l", str(need), self.swap],
                       check=True)
        os.chmod(self.swap, 0o600)
        subprocess.run(["mkswap", "-q", self.swap], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["swapon", self.swap], check=True)
        self.cg = os.path.join(CG, f"upvm-procs.{os.getpid()}")
        os.mkdir(self.cg)
        with open(os.path.join(self.cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(a.budget))
        with open(os.path.join(self.cg, "memory.swappiness"), "w") as f:
            f.write("60")

    def preexec(self):
        with open(os.path.join(self.cg, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def peak(self):
        with open(os.path.join(self.cg, "memory.max_usage_in_bytes")) as f:
            return int(f.read())

    def reset_peak(self):
        with open(os.path.join(self.cg, "memory.max_usage_in_bytes"),
                  "w") as f:
            f.write("0")

    def close(self):
        for _ in range(50):
            try:
                os.rmdir(self.cg)
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(["swapoff", self.swap])
        os.remove(self.swap)


class Upvmd:
    def __init__(self, a, work):
        self.sock = os.path.join(work, "upvmd.sock")
        self.p = subprocess.Popen([a.upvmd, "--socket", self.sock,
                                   "--budget", str(a.budget), "--swap",
                                   a.swap_dir, "--foreground"],
                                  stderr=open(os.path.join(work, "upvmd.log"),
                                              "w"))
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.upvm = a.upvm

    def stat(self):
        r = subprocess.run([self.upvm, "stat", "--json", "--socket",
                            self.sock], capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def close(self):
        self.p.terminate()
        self.p.wait()


def run_procs(a, mode, ctx, wl):
    args = [a.bench, "-s", str(a.size), "-w", wl, "-r", "1", "-f", "json",
            "--swap-dir", a.swap_dir]
    if wl in ("rand-read", "rand-rw", "zipf"):
        args += ["--ops", str(a.ops)]
    env = dict(os.environ)
    if mode == "kernel-swap":
        args += ["-m", "native"]
        ctx.reset_peak()
        kw = {"preexec_fn": ctx.preexec}
    elif mode == "upvm":
        args += ["-m", "upvm", "-b", str(a.budget // a.procs)]
        kw = {}
    else:
        args += ["-m", "upvm"]
        env["UPVM_DAEMON"] = ctx.sock
        kw = {}
    t0 = time.time()
    ps = [subprocess.Popen(args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, **kw)
          for _ in range(a.procs)]
    peak_rss = 0
    peak_res = 0
    while any(p.poll() is None for p in ps):
        # (RssAnon from /proc only: cheap, and the same in every mode)
        peak_rss = max(peak_rss, sum(rss_anon(p.pid) for p in ps))
        time.sleep(0.05)
    if mode == "upvmd":
        s = ctx.stat()          # upvmd's own peak, summed every 100 ms
        peak_res = s["peak_pages"] * 4096 if s else 0
    wall = time.time() - t0
    rates, byts = [], 0
    for p in ps:
        out, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"procs.py: {mode} {wl}: a process exited "
                     f"{p.returncode}: {err[-500:]}")
        rec = json.loads(out)[0]
        rates.append(rec["gib_per_s"])
        byts += rec["runs"][0]["bytes_touched"]
    cg_peak = ctx.peak() if mode == "kernel-swap" else peak_res
    if mode == "upvm":
        cg_peak = peak_rss
    return {"rates": rates, "wall": wall, "agg": byts / wall / (1 << 30),
            "peak_rss": peak_rss, "peak_mem": cg_peak}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--upvmd", required=True)
    ap.add_argument("--upvm", required=True)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--size", type=size, default=1 << 30)
    ap.add_argument("--budget", type=size, default=1 << 30)
    ap.add_argument("-w", "--workloads", default="seq-write,seq-read,"
                    "rand-read")
    ap.add_argument("--ops", type=int, default=50000)
    ap.add_argument("-r", "--repeat", type=int, default=2)
    ap.add_argument("--swap-dir", default=os.environ.get("TMPDIR",
                                                         "/var/tmp"))
    ap.add_argument("--modes", default="kernel-swap,upvmd")
    a = ap.parse_args()
    modes = a.modes.split(",")
    work = tempfile.mkdtemp(prefix="upvm-procs.", dir=a.swap_dir)
    ctx = {}
    res = {}
    try:
        if "kernel-swap" in modes:
            ctx["kernel-swap"] = KernelSwap(a, work)
        if "upvmd" in modes:
            ctx["upvmd"] = Upvmd(a, work)
        if "upvm" in modes:
            ctx["upvm"] = None
        for r in range(a.repeat):
            for wl in a.workloads.split(","):
                order = modes if r % 2 == 0 else modes[::-1]
                for m in order:
                    x = run_procs(a, m, ctx[m], wl)
                    res.setdefault((wl, m), []).append(x)
                    print(f"# run {r + 1} {wl:10s} {m:11s} per-process "
                          f"GiB/s {' '.join(f'{v:.3f}' for v in x['rates'])}"
                          f"  aggregate {x['agg']:.3f}  wall {x['wall']:.1f}"
                          f" s  peak RssAnon sum {x['peak_rss'] >> 20} MiB",
                          flush=True)
    finally:
        for c in ctx.values():
            if c is not None:
                c.close()
        subprocess.run(["rm", "-rf", work])
    print(f"\n{a.procs} processes x {a.size >> 20} MiB, one budget of "
          f"{a.budget >> 20} MiB; {a.repeat} repeats; medians "
          "(min) of per-process GiB/s and of the aggregate")
    print(f"{'workload':10s} {'mode':11s} {'per-proc':>15s} "
          f"{'aggregate':>15s} {'peak RssAnon':>13s} {'peak mem':>9s}")
    for wl in a.workloads.split(","):
        for m in modes:
            xs = res[(wl, m)]
            per = [statistics.median(x["rates"]) for x in xs]
            agg = [x["agg"] for x in xs]
            print(f"{wl:10s} {m:11s} {statistics.median(per):7.3f} "
                  f"({min(per):.3f}) {statistics.median(agg):7.3f} "
                  f"({min(agg):.3f}) {max(x['peak_rss'] for x in xs) >> 20:9d}"
                  f" MiB {max(x['peak_mem'] for x in xs) >> 20:5d} MiB")
        k = statistics.median(statistics.median(x["rates"])
                              for x in res[(wl, modes[0])])
        for m in modes[1:]:
            u = statistics.median(statistics.median(x["rates"])
                                  for x in res[(wl, m)])
            print(f"{wl:10s} {m}/{modes[0]}: {u / k:.2f}x per process")
    return 0


sys.exit(main())
