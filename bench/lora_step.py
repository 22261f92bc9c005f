"""Benchmark: one LoRA training step on a pruned Llama, PEFT LoRA vs sparseft's sparse LoRA (sparse_to_dense, sparse_to_sparse).

    python bench/lora_step.py                  # CPU: a ~220M-parameter Llama in fp32, batch 2 x 128; 5-8 minutes on 2 cores
    python bench/lora_step.py --threads 1      # the same, one thread per process (steadier on a machine shared with other jobs)
    python bench/lora_step.py --device cuda    # GPU: the TinyLlama-1.1B shape in bf16, batch 8 x 512
    python bench/lora_step.py --preset tiny    # a smoke test of the whole script in seconds
    python bench/lora_step.py --profile sparse_to_sparse   # where one variant's step time goes (torch.profiler)
    python bench/lora_step.py --compile        # every variant under torch.compile (inductor; `--compile aot_eager`: another backend)

Every variant trains the same seeded model, pruned with the same 50% unstructured magnitude masks (layer scope) on the
seven projections of every block, with rank-16 adapters (alpha 32, dropout 0) on those seven projections, kept in the
model's dtype, and AdamW. The peer is `peft.get_peft_model(model, LoraConfig(...), autocast_adapter_dtype=False)` on the
model pruned with `sparseft.mask_ops.apply_masks`; ours is `apply_sparse_lora(model, masks, SparseLoRAConfig(...))`.
With B = 0 at the start every variant computes the same function: the table shows the same first loss for all.

Each round runs every variant in its own fresh subprocess (the order rotates from round to round); a process builds the
model and the masks, wraps it and frees the masks. On CPU it then runs two steps under torch.profiler's memory timeline:
"peak live" is the peak growth of the bytes held by live tensors over those two steps (activations, gradients, the
optimizer state and any scratch, made in the first), over the wrapped model: what the implementation needs, whatever
glibc's allocator keeps. Then `--warmup` and `--steps` timed steps (forward, backward, optimizer step, zero_grad) on
random tokens: step time (wall) and CPU time are the medians of the timed steps, and "peak RSS" the growth of the peak
resident set over those steps (VmHWM reset through /proc/self/clear_refs, else a 1 ms sampling thread). On GPU, the peak
memory is the growth of `torch.cuda.max_memory_allocated` over all steps. The table reports medians over rounds and the
ratios to PEFT.

With `--compile` each process compiles the wrapped model with `torch.compile` (PEFT's alike) and runs one step to compile it
before anything is measured. sparse_to_sparse's autograd function runs as written between the compiled graphs
(`sparseft.lora_kernels`: compiled through, it kept a weight-sized tensor per layer for the backward).

Goals (issue 4): sparse_to_dense <= 1.05x PEFT's step time and peak memory; sparse_to_sparse <= 1.5x step time on CPU
(<= 1.1x on GPU) and <= 1.05x peak memory.
"""
from __future__ import annotations

import argparse, json, statistics, subprocess, sys, time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_llama, peak_meter

PRESETS = {  # LlamaConfig fields (untied embeddings)
    'tiny': dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, vocab_size=1000),
    'cpu200m': dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=12, num_attention_heads=16, num_key_value_heads=16, vocab_size=32000),
    'tinyllama': dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
}
VARIANTS = ('peft', 'sparse_to_dense', 'sparse_to_sparse')
PROJECTIONS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
GOALS = {'cpu': {'sparse_to_dense': (1.05, 1.05), 'sparse_to_sparse': (1.5, 1.05)},
         'cuda': {'sparse_to_dense': (1.05, 1.05), 'sparse_to_sparse': (1.1, 1.05)}}  # (step time, peak memory) vs PEFT

# -- the model and the variants -----------------------------------------------------------------------------------

def matmul_work(preset: str, batch: int, seq: int, r: int, layers: int | None = None) -> dict[str, float]:
    """Multiply-adds of one step's matrix products, per variant (attention and the output layer included, elementwise work not).
    PEFT: x W^T and g W per projection, plus the adapters' low-rank products. sparse_to_sparse: those two, the masked
    gradient (g^T x) * M, the fold B A (forward and backward) and B^T G, G A^T: its exact gradient needs a third
    weight-sized product, so this ratio is the floor of its step time where the products dominate (CPU, large GPU shapes)."""
    c = PRESETS[preset]; h, i, v, L = c['hidden_size'], c['intermediate_size'], c['vocab_size'], layers or c['num_hidden_layers']
    kv = h // c['num_attention_heads'] * c['num_key_value_heads']
    shapes = [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i)]  # (d_out, d_in) of the seven projections
    t, d2 = batch * seq, L * sum(o * n for o, n in shapes)
    common = 2 * t * v * h + L * 3 * 2 * t * seq * h  # output layer (forward, input gradient), attention (forward, backward ~2x)
    low_rank = L * sum(3 * t * r * (o + n) for o, n in shapes)  # adapters: forward and backward products of rank r
    return {'peft': common + 2 * t * d2 + low_rank, 'sparse_to_dense': common + 2 * t * d2 + low_rank,
            'sparse_to_sparse': common + 3 * t * d2 + 4 * r * d2 + low_rank}

def build_model(preset: str, device: str, dtype: torch.dtype, seed: int = 0, layers: int | None = None):
    "A seeded LlamaForCausalLM of a preset's shapes (optionally fewer layers), materialised on `device` without init temporaries."
    shape = {**PRESETS[preset], **({'num_hidden_layers': layers} if layers else {})}
    return build_llama(shape, device, dtype, seed, max_position_embeddings=4096, use_cache=False)

def magnitude_masks(model, sparsity: float):
    "50% unstructured magnitude masks, layer scope, on the seven projections of every block."
    from sparseft.mask_generator import compute_unstructured_mask
    return compute_unstructured_mask(model, sparsity, include=[f'*.{p}.weight' for p in PROJECTIONS])

def wrap(variant: str, model, masks, r: int, alpha: float):
    "The model ready to train: PEFT LoRA on the pruned model, or sparseft's sparse LoRA in one of its modes."
    if variant == 'peft':
        from peft import LoraConfig, get_peft_model
        from sparseft.mask_ops import apply_masks
        apply_masks(model, masks)
        return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(PROJECTIONS)),
                              autocast_adapter_dtype=False)
    from sparseft.sparse_lora import SparseLoRAConfig, apply_sparse_lora
    cfg = SparseLoRAConfig(r=r, alpha=alpha, dropout=0.0, target_modules=[f'*.{p}' for p in PROJECTIONS], modules_to_save=None,
                           sparsity_mode=variant)
    return apply_sparse_lora(model, masks, cfg)

def sparseft_chunk(device: str, elements: int):
    "Set the block size of sparse_to_sparse's weight-shaped temporaries on this device type."
    from sparseft.sparse_lora import CHUNK_ELEMENTS
    CHUNK_ELEMENTS[torch.device(device).type] = elements

# -- memory ---------------------------------------------------------------------------------------------------

def live_peak(step, calls: int = 2) -> int | None:
    "Peak growth of the bytes held by live CPU tensors over `calls` calls of `step`, from torch.profiler's memory timeline."
    from torch.profiler import ProfilerActivity, profile
    try: from torch.profiler._memory_profiler import Action  # a private module (torch >= 2.1): None if it is gone
    except ImportError:
        for _ in range(calls): step()
        return None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as p:
        for _ in range(calls): step()
    live = peak = 0
    for _, action, _, size in sorted(p._memory_profile().timeline, key=lambda e: e[0]):
        if action == Action.CREATE: live += size
        elif action == Action.DESTROY: live -= size
        peak = max(peak, live)
    return peak

# -- one variant in its own process -------------------------------------------------------------------------------

def region_table(events, cuda: bool) -> str:
    "The step's phases and sparse LoRA's own ranges (`sparse_lora.*`, named only while profiling): calls and time, inclusive."
    total = 'device_time_total' if cuda and hasattr(events[0], 'device_time_total') else 'cuda_time_total' if cuda else 'cpu_time_total'
    rows = sorted((e for e in events if e.key.startswith(('step.', 'sparse_lora.'))), key=lambda e: (not e.key.startswith('step.'), e.key))
    step_us = sum(getattr(e, total) for e in rows if e.key.startswith('step.')) or 1
    lines = [f"where the step goes ({'GPU' if cuda else 'CPU'} time, inclusive; sparse_lora.* only in sparse_to_sparse):",
             f"  {'range':<34}{'calls':>7}{'ms':>10}{'% of step':>11}"]
    lines += [f"  {e.key:<34}{e.count:>7}{getattr(e, total) / 1e3:>10.2f}{100 * getattr(e, total) / step_us:>10.1f}%" for e in rows]
    return '\n'.join(lines)

def worker(variant: str, preset: str, device: str, batch: int, seq: int, warmup: int, steps: int, r: int, alpha: float,
           layers: int | None = None, profile: bool = False, chunk: int | None = None, compile: str | None = None) -> dict:
    cuda = device.startswith('cuda')
    if chunk: sparseft_chunk(device, chunk)
    dtype = torch.bfloat16 if cuda else torch.float32
    import peft, transformers, sparseft.sparse_lora  # noqa: F401  imported before measuring
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    model = build_model(preset, device, dtype, layers=layers)
    masks = magnitude_masks(model, 0.5)
    model = wrap(variant, model, masks, r, alpha)
    del masks
    model.train()
    if compile: model = torch.compile(model, backend=compile)  # every variant alike; the first (untimed) step compiles
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, PRESETS[preset]['vocab_size'], (batch, seq), generator=g).to(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step(phase=lambda name: nullcontext()):  # phase: record_function, to name the parts in a profile
        with phase('step.forward'): loss = model(input_ids=ids, labels=ids).loss
        with phase('step.backward'): loss.backward()
        with phase('step.optimizer'): opt.step(); opt.zero_grad(set_to_none=True)
        return loss.item()

    if profile:
        from torch.profiler import ProfilerActivity, profile as prof, record_function
        for _ in range(warmup): step()
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with prof(activities=acts) as p: step(record_function); sync()
        device_key = 'self_device_time_total' if hasattr(torch.autograd.profiler_util.FunctionEventAvg(), 'self_device_time_total') else 'self_cuda_time_total'
        key = device_key if cuda else 'self_cpu_time_total'  # torch >= 2.4 names it 'device', older 'cuda'
        print(p.key_averages().table(sort_by=key, row_limit=25), file=sys.stderr)
        print(region_table(p.key_averages(), cuda))
        return {}
    times, cpu_times, losses = [], [], []
    if compile: losses.append(step())  # the compile, outside the memory profile (its tracing would fill the profiler's timeline)
    # CPU: bytes of live tensors over the first two steps (the optimizer state and any scratch are made in the first)
    live = None if cuda else live_peak(lambda: losses.append(step()))
    with peak_meter(device) as mem:  # CPU: RSS over the next steps; CUDA: allocated bytes over all steps
        for i in range(warmup + steps):
            sync(); t0, c0 = time.perf_counter(), time.process_time()
            losses.append(step())
            sync(); t, c = time.perf_counter() - t0, time.process_time() - c0
            if i >= warmup: times.append(t); cpu_times.append(c)
    live = mem.extra if cuda or live is None else live  # without the profiler's timeline, CPU falls back to RSS
    return dict(variant=variant, step_s=statistics.median(times), cpu_s=statistics.median(cpu_times), times_s=times, peak_extra=live, rss_extra=mem.extra,
                first_loss=losses[0], trainable=sum(p.numel() for p in params))

# -- the driver ----------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    ap.add_argument('--preset', default=None, choices=list(PRESETS), help='model shapes (default: cpu200m on CPU, tinyllama on CUDA)')
    ap.add_argument('--batch', type=int, default=None, help='sequences per step (default 2 on CPU, 8 on CUDA)')
    ap.add_argument('--seq', type=int, default=None, help='tokens per sequence (default 128 on CPU, 512 on CUDA)')
    ap.add_argument('--rounds', type=int, default=3, help='interleaved rounds (each runs every variant in a fresh process)')
    ap.add_argument('--warmup', type=int, default=None, help='untimed steps first (default 1 on CPU after the 2 profiled ones, 3 on CUDA)')
    ap.add_argument('--steps', type=int, default=None, help='timed steps (default 3 on CPU, 10 on CUDA)')
    ap.add_argument('--r', type=int, default=16)
    ap.add_argument('--layers', type=int, default=None, help="override the preset's number of blocks")
    ap.add_argument('--chunk', type=int, default=None, help='sparseft.sparse_lora.CHUNK_ELEMENTS for the device (block size, in entries)')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads per process (default: torch\'s own choice)')
    ap.add_argument('--alpha', type=float, default=32)
    ap.add_argument('--variants', default=','.join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument('--profile', default=None, choices=VARIANTS, help='profile one step of this variant instead of timing')
    ap.add_argument('--compile', nargs='?', const='inductor', default=None, metavar='BACKEND',
                    help="torch.compile the model in every variant, with this backend (default 'inductor'); one untimed step compiles")
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cuda = a.device.startswith('cuda')
    preset = a.preset or ('tinyllama' if cuda else 'cpu200m')
    batch, seq = a.batch or (8 if cuda else 2), a.seq or (512 if cuda else 128)
    warmup, steps = a.warmup if a.warmup is not None else (3 if cuda else 1), a.steps or (10 if cuda else 3)
    if a.threads: torch.set_num_threads(a.threads)
    if a.worker or a.profile:
        out = worker(a.worker or a.profile, preset, a.device, batch, seq, warmup, steps, a.r, a.alpha, a.layers, profile=bool(a.profile), chunk=a.chunk,
                     compile=a.compile)
        if a.worker: print(json.dumps(out))
        return
    if cuda and not torch.cuda.is_available(): sys.exit('--device cuda: no CUDA device is available here')
    variants = a.variants.split(',')
    for v in variants:
        if v not in VARIANTS: sys.exit(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    print(f"LoRA training step: preset {preset} on {a.device} ({'bf16' if cuda else 'fp32'}), batch {batch} x {seq}, r={a.r}, "
          f"alpha={a.alpha:g}, 50% unstructured magnitude masks{f', torch.compile ({a.compile})' if a.compile else ''}; {a.rounds} rounds x ({warmup} warm-up + {steps} timed steps)", flush=True)
    rows = {v: [] for v in variants}
    t_start = time.time()
    for rnd in range(a.rounds):
        order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
        for v in order:
            cmd = [sys.executable, __file__, '--worker', v, '--device', a.device, '--preset', preset, '--batch', str(batch), '--seq', str(seq),
                   '--warmup', str(warmup), '--steps', str(steps), '--r', str(a.r), '--alpha', str(a.alpha)] + (['--layers', str(a.layers)] if a.layers else []) + (['--threads', str(a.threads)] if a.threads else []) + (['--chunk', str(a.chunk)] if a.chunk else []) + (['--compile', a.compile] if a.compile else [])
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode: sys.exit(f'{v} failed (exit {res.returncode}):\n{res.stderr[-3000:]}')
            rows[v].append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = rows[v][-1]
            print(f"  round {rnd + 1} {v:<17} {r['step_s']:.3f} s/step ({r['cpu_s']:.3f} s CPU), peak +{r['peak_extra'] / 2**20:.0f} MiB", flush=True)
    print(f"({time.time() - t_start:.0f} s)\n")
    report(rows, 'cuda' if cuda else 'cpu')
    work = matmul_work(preset, batch, seq, a.r, a.layers)
    print("matmul work x PEFT's (the floor of step time where products dominate): "
          + ', '.join(f"{v} {work[v] / work['peft']:.2f}x" for v in variants if v != 'peft'))

def report(rows: dict, kind: str):
    keys = ('step_s', 'cpu_s', 'peak_extra', 'rss_extra')
    med = {v: {k: statistics.median(r[k] for r in rs) for k in keys} | {'loss': rs[0]['first_loss'], 'trainable': rs[0]['trainable']}
           for v, rs in rows.items()}
    ref = med.get('peft')
    mem = 'alloc' if kind == 'cuda' else 'live'
    print(f"{'variant':<18}{'step (s)':>9}{'x PEFT':>8}{'CPU (s)':>9}{'x PEFT':>8}{f'peak {mem} (MiB)':>17}{'x PEFT':>8}"
          + ('' if kind == 'cuda' else f"{'peak RSS (MiB)':>16}{'x PEFT':>8}") + f"{'trainable':>11}{'first loss':>11}  goal (step time, peak {mem})")
    for v, m in med.items():
        ratio = lambda k: m[k] / ref[k] if ref else float('nan')
        goal, verdict = GOALS[kind].get(v), ''
        if goal and ref:
            verdict = (f"<= {goal[0]}x {'met' if ratio('step_s') <= goal[0] else 'NOT met'}, "
                       f"<= {goal[1]}x {'met' if ratio('peak_extra') <= goal[1] else 'NOT met'}")
        print(f"{v:<18}{m['step_s']:>9.3f}{ratio('step_s'):>8.3f}{m['cpu_s']:>9.3f}{ratio('cpu_s'):>8.3f}"
              f"{m['peak_extra'] / 2**20:>17.1f}{ratio('peak_extra'):>8.3f}"
              + ('' if kind == 'cuda' else f"{m['rss_extra'] / 2**20:>16.1f}{ratio('rss_extra'):>8.3f}")
              + f"{m['trainable']:>11,}{m['loss']:>11.5f}  {verdict}")
    for k, name, scale in (('step_s', 'step (s)', 1), ('cpu_s', 'CPU (s)', 1), ('peak_extra', f'peak {mem} (MiB)', 2**20),
                           ('rss_extra', 'peak RSS (MiB)', 2**20)):
        if kind != 'cuda' or k != 'rss_extra':
            print(f"per round, {name}:", {v: [round(r[k] / scale, 3 if scale == 1 else 1) for r in rs] for v, rs in rows.items()})

if __name__ == '__main__':
    main()
