#!/usr/bin/env python3
"""What scripts/gpu-check.sh does in Python on the GPU machine: time xlc's
CUDA train step against the PyTorch peer (torch_gpt_cuda.py) in
interleaved rounds, compare a training run's losses with the CPU's, keep
every number in one results file (JSON lines) and print the final table.
Standard library only; the rounds import torch.

Usage:
  gpu_bench.py record RESULTS KEY=VALUE...
      appends a record (values that parse as JSON numbers are numbers).
  gpu_bench.py losses RESULTS CPU.jsonl CUDA.jsonl [--steps N] [--tol T] [--label L]
      each step's loss of two metrics.jsonl files (xlc train's), relative
      error |cuda - cpu| / |cpu|; exits 1 unless all N steps are there,
      finite and within T (default 1e-4); prints the worst.
  gpu_bench.py rounds RESULTS --xlc PATH --row CONFIG PRECISION BUNDLE LABEL ...
          [--configs S,M,G] [--rounds N] [--modes eager,compile,sdpa]
          [--budget S=40,...] [--compile-budget S=30,...] [--steps S=20,...]
          [--device cuda|cpu] [--total SECONDS] [--xlc-timeout SECONDS]
      (--device is the peer's; xlc bench always runs --backend cuda)
      per config (--total bounds them all, from the process's start): the torch modes' models are built and warmed up first
      (the warm-up, compilation included, timed apart; a mode over its
      compile budget is skipped with a note; compilation also leaves a
      quarter of the config's budget to the rounds), then up to N rounds, each
      timing every row once in turn (xlc bench as a subprocess, each torch
      mode in this process); a round is not started when the one before
      says it would overrun the config's budget. Torch rows in bf16 run
      only where xlc has a bf16 bundle (--row CONFIG bf16 ...).
  gpu_bench.py table RESULTS [--text FILE]
      the one table: config, precision, system, median tokens/s, fraction
      of the card's peak (67 TFLOP/s f32, 989 bf16 dense on H100/H200;
      GPU_PEAK_F32_TFLOPS and GPU_PEAK_BF16_TFLOPS override, and another
      card gets none) of the dense training FLOPs per token
      (peer_common.train_flops_per_token, bench/run.sh's count), and
      xlc's ratio to each peer of the same config and precision.

Every record gets the date (UTC) and the card (GPU_CARD, which
gpu-check.sh sets).
"""
import datetime
import gc
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import peer_common

PEAK_TFLOPS = {"f32": 67.0, "bf16": 989.0}  # H100/H200 SXM, dense


def record(path, **kv):
    kv = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "card": os.environ.get("GPU_CARD", ""), **kv}
    with open(path, "a") as f:
        f.write(json.dumps(kv) + "\n")


def read(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a torn last line of a killed stage
    return out


def cmd_record(args):
    path, kv = args[0], {}
    for a in args[1:]:
        k, _, v = a.partition("=")
        try:
            kv[k] = json.loads(v) if re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", v) else v
        except ValueError:
            kv[k] = v
    record(path, **kv)
    return 0


def metrics_losses(path):
    """step -> loss of an xlc metrics.jsonl (xlc writes NaN as "NaN")."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                m = json.loads(line)
                if "loss" in m:
                    out[int(m["step"])] = float(m["loss"])
    return out


def cmd_losses(args):
    path, cpu_path, gpu_path = args[:3]
    steps, tol, label = 20, 1e-4, "S f32"
    rest = args[3:]
    while rest:
        if rest[0] == "--steps":
            steps = int(rest[1])
        elif rest[0] == "--tol":
            tol = float(rest[1])
        elif rest[0] == "--label":
            label = rest[1]
        else:
            sys.exit(f"gpu_bench.py losses: unknown {rest[0]}")
        rest = rest[2:]
    for p in (cpu_path, gpu_path):
        if not os.path.exists(p):
            print(f"no {p}; FAILED")
            record(path, kind="losses", label=label, ok=False, why=f"no {p}")
            return 1
    cpu, gpu = metrics_losses(cpu_path), metrics_losses(gpu_path)
    worst, worst_step, bad = -1.0, None, []
    print(f"  {'step':>4}  {'cpu':>10}  {'cuda':>10}  {'rel. error':>10}")
    for s in range(1, steps + 1):
        if s not in cpu or s not in gpu:
            bad.append(f"step {s} missing from {'the cpu' if s not in cpu else 'the cuda'} run")
            continue
        c, g = cpu[s], gpu[s]
        rel = abs(g - c) / abs(c) if c != 0 else abs(g - c)
        if not (math.isfinite(c) and math.isfinite(g)):
            rel = math.inf
        print(f"  {s:4d}  {c:10.6f}  {g:10.6f}  {rel:10.2e}")
        if rel > worst:
            worst, worst_step = rel, s
    ok = not bad and worst <= tol
    for b in bad[:3]:
        print("  " + b)
    line = (f"{label}: worst relative error {worst:.2e} at step {worst_step} (cpu {cpu.get(worst_step, math.nan):.6f}, "
            f"cuda {gpu.get(worst_step, math.nan):.6f}); {'ok' if ok else 'FAILED'} (tolerance {tol:g}, {steps} steps)"
            if worst_step else f"no step to compare; FAILED")
    print(line)
    record(path, kind="losses", label=label, steps=steps, tolerance=tol, worst_rel=worst if worst >= 0 else None,
           worst_step=worst_step, ok=ok, missing=len(bad))
    return 0 if ok else 1


class OverBudget(BaseException):
    """Raised by SIGALRM in a budgeted warm-up (a BaseException, so that no
    `except Exception` inside PyTorch swallows it)."""


def _alarm(signum, frame):
    raise OverBudget()


def budgeted(seconds, fn):
    """fn() under an alarm of seconds; OverBudget if it runs over."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def per_config(spec, default):
    """"S=40,M=40,G=80" -> {"S": 40.0, ...}; a bare number applies to all."""
    out = {}
    for part in filter(None, (spec or "").split(",")):
        k, _, v = part.partition("=")
        if v:
            out[k] = float(v)
        else:
            default = float(k)
    return lambda c: out.get(c, default)


XLC_RATE = re.compile(r": ([0-9.]+) tokens/s")


def run_xlc(xlc, bundle, steps, warmup, timeout):
    """One xlc bench run of a GPU bundle; returns (tokens/s, None) or (None,
    why)."""
    cmd = [xlc, "bench", "--bundle", bundle, "--backend", "cuda", "--steps", str(steps), "--warmup", str(warmup)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"xlc bench ran over {timeout:.0f} s"
    except OSError as e:
        return None, f"xlc bench: {e}"
    m = XLC_RATE.search(p.stdout)
    if p.returncode != 0 or not m:
        err = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()
        return None, f"exit {p.returncode}: {err[-1][:300] if err else ''}"
    return float(m.group(1)), None


def cmd_rounds(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="gpu_bench.py rounds")
    ap.add_argument("results")
    ap.add_argument("--xlc", required=True)
    ap.add_argument("--row", nargs=4, action="append", default=[], metavar=("CONFIG", "PRECISION", "BUNDLE", "LABEL"))
    ap.add_argument("--configs", default="S,M,G")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="eager,compile,sdpa")
    ap.add_argument("--budget", default="S=40,M=40,G=80")
    ap.add_argument("--compile-budget", default="30,G=40")
    ap.add_argument("--steps", default="S=20,M=10,G=3")
    ap.add_argument("--xlc-timeout", type=float, default=60)
    ap.add_argument("--total", type=float, default=0, help="seconds this process may take in all (0: no limit)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    a = ap.parse_args(argv)
    import torch
    import torch_gpt_cuda as peer

    t_process = time.perf_counter()
    budget, cbudget, nsteps = per_config(a.budget, 60), per_config(a.compile_budget, 30), per_config(a.steps, 5)
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in peer.MODES:
            sys.exit(f"gpu_bench.py rounds: unknown mode {m} (have {', '.join(peer.MODES)})")
    xlc_rows = {(c, p): (b, label) for c, p, b, label in a.row}
    print(f"torch {torch.__version__}, device {a.device}"
          + (f" ({torch.cuda.get_device_name(0)})" if a.device == "cuda" and torch.cuda.is_available() else ""), flush=True)
    if any("compile" in m for m in modes) and hasattr(torch, "compile"):
        # Inductor's one-time start (its imports, the compile workers), on a
        # trivial function, so that the modes' budgets are their models'.
        t0 = time.perf_counter()
        try:
            budgeted(30, lambda: torch.compile(lambda x: x * 2 + 1)(torch.ones(8, device=a.device)).sum().item())
            print(f"torch.compile's start-up: {time.perf_counter() - t0:.1f} s", flush=True)
        except OverBudget:
            print("torch.compile's start-up: over 30 s (the compile modes will likely be skipped)", flush=True)
        except Exception as e:
            print(f"torch.compile's start-up failed: {type(e).__name__}: {str(e).strip()[:200]}", flush=True)
        record(a.results, kind="warmup", system="torch.compile start-up", seconds=round(time.perf_counter() - t0, 2))
    for cfg_name in filter(None, a.configs.split(",")):
        cfg = peer_common.CONFIGS[cfg_name]
        t_start, steps = time.perf_counter(), int(nsteps(cfg_name))
        end = t_start + budget(cfg_name)
        if a.total:
            end = min(end, t_process + a.total - 3)
        left = lambda: end - time.perf_counter()
        precisions = [p for p in ("f32", "bf16") if (cfg_name, p) in xlc_rows or p == "f32"]
        print(f"config {cfg_name} ({', '.join(f'{k}={v}' for k, v in cfg.items())}; {steps} timed steps a row a round; "
              f"budget {left():.0f} s)", flush=True)
        record(a.results, kind="config", config=cfg_name, budget=round(left(), 1), steps=steps)
        # The rows in the order each round times them: per precision, xlc
        # and then the torch modes. The torch models are built and warmed
        # up first, the uncompiled ones before the compiled, and a
        # compilation gets at most its budget and leaves a quarter of the
        # config's budget to the rounds.
        rows = []  # [precision, name, kind, xlc bundle or Trainer (None once dropped)]
        for prec in precisions:
            if (cfg_name, prec) in xlc_rows:
                bundle, label = xlc_rows[(cfg_name, prec)]
                rows.append([prec, f"xlc cuda ({label})" if label else "xlc cuda", "xlc", bundle])
            else:
                note = f"no {prec} bundle"
                print(f"  {prec} xlc: skipped: {note}", flush=True)
                record(a.results, kind="skip", config=cfg_name, precision=prec, system="xlc cuda", why=note)
            rows += [[prec, f"torch {mode}", mode, None] for mode in modes]
        reserve = budget(cfg_name) / 4
        for row in sorted((r for r in rows if r[2] != "xlc"), key=lambda r: "compile" in r[2]):
            prec, name, mode, _ = row
            compiled = "compile" in mode
            why = peer.unavailable(mode, prec, a.device)
            limit = min(cbudget(cfg_name), left() - reserve) if compiled else left()
            if why is None and limit < 5:
                why = f"no budget left for its warm-up ({left():.0f} s of the config's left)"
            if why is None:
                t0 = time.perf_counter()
                try:
                    tr = budgeted(limit, lambda: peer.Trainer(cfg, mode, prec, a.device))
                    secs = budgeted(limit - (time.perf_counter() - t0), tr.warm)
                    row[1], row[3] = tr.name(), tr
                    print(f"  {prec} {row[1]}: warm-up ({peer_common.WARMUP} steps{', compilation' if compiled else ''}) "
                          f"{secs:.1f} s", flush=True)
                    record(a.results, kind="warmup", config=cfg_name, precision=prec, system=row[1],
                           seconds=round(time.perf_counter() - t0, 2), steps=peer_common.WARMUP)
                    continue
                except OverBudget:
                    why = f"warm-up over its {limit:.0f} s budget"
                except Exception as e:  # a mode that fails is a note; the others still run
                    msg = str(e).strip().splitlines()
                    why = f"{type(e).__name__}: {msg[0][:200] if msg else ''}"
            print(f"  {prec} {name}: skipped: {why}", flush=True)
            record(a.results, kind="skip", config=cfg_name, precision=prec, system=name, why=why)
            gc.collect()
        done = 0
        for r in range(1, a.rounds + 1):
            t_round = time.perf_counter()
            for row in rows:
                prec, name, kind, obj = row
                if obj is None:
                    continue
                if kind == "xlc":
                    if a.device == "cuda":
                        torch.cuda.empty_cache()  # the peer's cached blocks back to the card for xlc
                    tps, why = run_xlc(a.xlc, obj, steps, 1, min(a.xlc_timeout, max(left(), 10)))
                else:
                    try:
                        def measure(tr=obj):
                            tr.warm(1)
                            return tr.tokens_per_s(tr.times(steps))
                        tps, why = budgeted(max(left(), 10), measure), None
                    except OverBudget:
                        tps, why = None, "over the config's budget"
                    except Exception as e:
                        msg = str(e).strip().splitlines()
                        tps, why = None, f"{type(e).__name__}: {msg[0][:200] if msg else ''}"
                if tps is None:
                    print(f"  round {r} {prec} {name}: FAILED: {why}; dropped from the later rounds", flush=True)
                    record(a.results, kind="skip", config=cfg_name, precision=prec, system=name, why=why, round=r)
                    row[3] = None
                    continue
                print(f"  round {r} {prec} {name}: {tps:,.0f} tokens/s", flush=True)
                record(a.results, kind="time", config=cfg_name, precision=prec, system=name, round=r,
                       tokens_per_s=round(tps, 1), steps=steps)
            done = r
            took = time.perf_counter() - t_round
            if r < a.rounds and took > left():
                print(f"  stopping after {r} round{'s' if r > 1 else ''}: another ({took:.0f} s) would overrun "
                      f"the config's budget ({left():.0f} s left)", flush=True)
                break
        print(f"config {cfg_name}: {done} round{'s' if done != 1 else ''} in {time.perf_counter() - t_start:.0f} s", flush=True)
        record(a.results, kind="rounds", config=cfg_name, rounds=done, seconds=round(time.perf_counter() - t_start, 1))
        rows.clear()
        gc.collect()
        if a.device == "cuda":
            torch.cuda.empty_cache()
    return 0


def cmd_table(argv):
    path = argv[0]
    text = argv[argv.index("--text") + 1] if "--text" in argv else None
    recs = read(path)
    host = next((r for r in recs if r.get("kind") == "host"), {})
    card = host.get("card", "")
    peaks = {}
    for prec, default in PEAK_TFLOPS.items():
        env = os.environ.get(f"GPU_PEAK_{prec.upper()}_TFLOPS")
        if env:
            peaks[prec] = float(env)
        elif "H100" in card or "H200" in card:
            peaks[prec] = default
    times, order = {}, []
    for r in recs:
        if r.get("kind") in ("time", "skip") and "config" in r:
            key = (r["config"], r["precision"], r["system"])
            if key not in times:
                times[key] = {"tps": [], "why": None}
                order.append(key)
            if r["kind"] == "time":
                times[key]["tps"].append(r["tokens_per_s"])
            else:
                times[key]["why"] = r["why"]
    cfg_rank = {c: i for i, c in enumerate(peer_common.CONFIGS)}
    modes = ("eager", "compile", "sdpa", "sdpa-compile")  # torch_gpt_cuda.MODES, without importing torch
    sys_rank = lambda s: 0 if s.startswith("xlc") else 1 + modes.index(s.split()[1]) if s.split()[1:2] and s.split()[1] in modes else 9
    order.sort(key=lambda k: (cfg_rank.get(k[0], 99), k[1] != "f32", sys_rank(k[2])))
    lines = [f"GPU check {host.get('date', '?')}: {card or 'card unknown'}, driver {host.get('driver', '?')}, "
             f"torch {host.get('torch', '?')}; peak {', '.join(f'{p} {v:g} TFLOP/s' for p, v in peaks.items()) or 'unknown for this card'}"]
    head = ("config", "prec", "system", "tokens/s", "% peak", "xlc/it", "rounds", "note")
    rows = []
    for key in order:
        c, prec, system = key
        ent = times[key]
        med = statistics.median(ent["tps"]) if ent["tps"] else None
        xlc = [v for (cc, pp, ss), v in times.items() if cc == c and pp == prec and ss.startswith("xlc") and v["tps"]]
        xmed = statistics.median(xlc[0]["tps"]) if xlc else None
        frac = ""
        if med and prec in peaks and c in peer_common.CONFIGS:
            f = med * peer_common.train_flops_per_token(peer_common.CONFIGS[c]) / (peaks[prec] * 1e12)
            frac = f"{f:.1%}" if f >= 0.001 else f"{f:.3%}"
        ratio = f"{xmed / med:.2f}" if med and xmed and not system.startswith("xlc") else ""
        note = re.sub(r"/\S*/([^/\s]+)", r"\1", ent["why"] or "")  # files by their names
        if ent["tps"] and note:
            note = "a later round failed: " + note
        rows.append((c, prec, system, f"{med:,.0f}" if med else "-", frac, ratio, str(len(ent["tps"])),
                     note if len(note) <= 100 else note[:99] + "…"))
    started = [r["config"] for r in recs if r.get("kind") == "config"]
    for c in started:
        if not any(k[0] == c for k in order):
            rows.append((c, "", "(no timings: the stage ended first)", "-", "", "", "0", ""))
    width = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(v.rjust(width[i]) if i in (3, 4, 5, 6) else v.ljust(width[i]) for i, v in enumerate(r)).rstrip()
    lines += [fmt(head), fmt(tuple("-" * w for w in width))] + [fmt(r) for r in rows]
    if not rows:
        lines.append("(no timings)")
    lines.append("tokens/s: medians over the rounds; % peak: dense training FLOPs per token (bench/run.sh's count) "
                 "times tokens/s over the peak; xlc/it: xlc's median over the row's")
    out = "\n".join(lines)
    print(out)
    if text:
        with open(text, "w") as f:
            f.write(out + "\n")
    return 0


def main():
    cmds = {"record": cmd_record, "losses": cmd_losses, "rounds": cmd_rounds, "table": cmd_table}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        sys.exit("usage: gpu_bench.py record|losses|rounds|table RESULTS ... (see the module doc)")
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
