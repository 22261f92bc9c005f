"""Benchmark: sparseft's exact magnitude masks vs `torch.nn.utils.prune` (global_unstructured, l1_unstructured), cat + kthvalue, and Wanda's per-row sort.

    python bench/masks.py                  # CPU: a ~220M-parameter Llama (154M prunable) in fp32; about 2-4 minutes
    python bench/masks.py --device cuda    # GPU: LLaMA-7B shapes in bf16 (6.5B prunable parameters)
    python bench/masks.py --preset tiny    # a smoke test of the whole script in seconds
    python bench/masks.py --dtype bf16 --preset 1b6 --methods sparseft,cat_kthvalue   # CPU, bf16: 1.6B prunable weights
        # (cat + kthvalue needs more than 24 GB there: where the OS kills a peer, its row says so and the table still prints)
    python bench/masks.py --scope layer    # per-layer masks: ours vs prune.l1_unstructured on each layer
    python bench/masks.py --scope row      # per-row masks: ours vs the Wanda reference code's stable sort of each weight's rows
    python bench/masks.py --preset 7b --dtype bf16 --methods sparseft,device_path   # CPU: the GPU's code path at 7B (~21 GB)

Every method masks the same seeded model (magnitude scores, unstructured, sparsity 0.5, global scope unless
`--scope layer` or `--scope row`) in its own subprocess. Time is wall time of the mask computation alone (the model is built first); ours is the best of
`--repeat` runs in its process (the first run is shown too: it also pays for first-touching fresh memory, which is
slow on virtual machines), the others run once (`global_unstructured` rewrites the model it prunes). Peak extra memory is
the growth of the process's resident set over its level once the model is built (VmHWM reset through
/proc/self/clear_refs, else a 1 ms sampling thread) on CPU, measured during the first run, and the growth of `torch.cuda.max_memory_allocated` on GPU.
"Beyond masks" subtracts the bytes of the masks each method returns (bool for ours and cat + kthvalue, float32
`weight_mask` buffers for `global_unstructured`), as a percentage of the prunable weights' bytes.

`device_path` (CPU only, any scope; not in the default list) is ours again through the code path a GPU takes
(`sparseft.selection.device_path` with CUDA's chunk size: counts kept in tensors and read back once per pass, layers
batched): a rehearsal at full size, before device time is spent, that it gives the same masks and how much memory
its larger temporaries take. Its time says nothing about a GPU.

Goals: ours at least 5x faster than `global_unstructured`, extra memory beyond the masks under 5% of the weights'
bytes, and masks equal to the exact reference (cat + kthvalue with ties broken by lowest index, as sparseft does).
On the GPU (LLaMA-7B shapes), the goal is <= 50 ms.
"""
from __future__ import annotations

import argparse, importlib, json, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_llama, exit_reason, peak_meter

PRESETS = {  # LlamaConfig fields (multi-head attention, untied embeddings)
    'tiny': dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4, vocab_size=1000),
    'cpu200m': dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=12, num_attention_heads=16, vocab_size=32000),
    '1b6': dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=32, num_attention_heads=16, vocab_size=32000),
    '7b': dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000),
}
SCOPE_METHODS = {'global': ('sparseft', 'global_unstructured', 'cat_kthvalue'), 'layer': ('sparseft', 'l1_unstructured'),
                 'row': ('sparseft', 'row_sort')}
METHODS = ('sparseft', 'global_unstructured', 'cat_kthvalue', 'l1_unstructured', 'row_sort', 'device_path')
OURS = ('sparseft', 'device_path')  # repeated, timed after a warm-up on CUDA, and never a peer
SCOPE_NAMES = {'global': 'global', 'layer': 'per-layer', 'row': 'per-row'}
PEER_LABELS = {'global_unstructured': 'global_unstructured', 'cat_kthvalue': 'cat + kthvalue', 'l1_unstructured': 'l1_unstructured on each layer',
               'row_sort': 'the per-row sort'}

# -- the model --------------------------------------------------------------------------------------------------

def build_model(preset: str, device: str, dtype: torch.dtype, seed: int = 0):
    "A seeded LlamaForCausalLM of a preset's shapes (multi-head attention), materialised on `device` without init temporaries."
    return build_llama(PRESETS[preset], device, dtype, seed, max_position_embeddings=256).eval()

def prunable(model) -> dict[str, torch.nn.Parameter]:
    from sparseft.core import prunable_params
    return prunable_params(model)

# -- the three methods --------------------------------------------------------------------------------------------

def run_sparseft(model, sparsity, scope='global'):
    "Ours: lazy magnitude scores; exact thresholds by counting passes (over all layers, or per layer), or each row's k-th value by `kthvalue` (per row)."
    from sparseft.mask_generator import compute_unstructured_mask
    masks = compute_unstructured_mask(model, sparsity, scope=scope)
    return masks, sum(m.numel() * m.element_size() for m in masks.values())

def run_device_path(model, sparsity, scope='global'):
    "Ours through the GPU's code path on the CPU (`selection.device_path` at CUDA's chunk size): the same masks as `run_sparseft`."
    from sparseft.selection import CHUNK_SIZE, device_path
    with device_path(chunk=CHUNK_SIZE['cuda']): return run_sparseft(model, sparsity, scope)

def run_global_unstructured(model, sparsity):
    "torch.nn.utils.prune.global_unstructured with L1Unstructured (concatenates every weight, then topk)."
    from torch.nn.utils import prune
    names, owners = list(prunable(model)), []
    for name in names:
        mod, _, attr = name.rpartition('.')
        owners.append((model.get_submodule(mod), attr))
    prune.global_unstructured(owners, pruning_method=prune.L1Unstructured, amount=sparsity)
    masks = {n: getattr(m, a + '_mask') for n, (m, a) in zip(names, owners)}  # float32 buffers
    return masks, sum(m.numel() * m.element_size() for m in masks.values())

def run_cat_kthvalue(model, sparsity):
    "The exact reference: concatenate |W|, kthvalue, then break ties at the threshold by lowest index, as sparseft."
    params = prunable(model)
    scores = torch.cat([p.detach().abs().float().reshape(-1) for p in params.values()])
    k = round(sparsity * scores.numel())
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if k:
        v = scores.kthvalue(k).values
        torch.gt(scores, v, out=keep)
        need = k - int((scores < v).sum())
        keep[(scores == v).nonzero().squeeze(1)[need:]] = True
    masks, i = {}, 0
    for n, p in params.items():
        masks[n] = keep[i:i + p.numel()].view(p.shape); i += p.numel()
    return masks, keep.numel()

def run_l1_unstructured(model, sparsity):
    "torch.nn.utils.prune.l1_unstructured on each layer (topk of the layer's |W|): the per-layer peer."
    from torch.nn.utils import prune
    masks = {}
    for name in prunable(model):
        mod, _, attr = name.rpartition('.')
        m = model.get_submodule(mod)
        prune.l1_unstructured(m, attr, amount=sparsity)
        masks[name] = getattr(m, attr + '_mask')  # float32 buffers
    return masks, sum(m.numel() * m.element_size() for m in masks.values())

def run_row_sort(model, sparsity):
    "The Wanda reference code's per-row mask: a stable sort of each weight's rows of |W|, the first k of each row pruned (scatter)."
    masks = {}
    for name, p in prunable(model).items():
        metric = p.detach().abs().float()
        pruned = torch.zeros_like(metric, dtype=torch.bool)
        pruned.scatter_(1, torch.sort(metric, dim=-1, stable=True)[1][:, :round(metric.shape[1] * sparsity)], True)
        masks[name] = ~pruned
    return masks, sum(m.numel() * m.element_size() for m in masks.values())

RUNNERS = {'sparseft': run_sparseft, 'device_path': run_device_path, 'global_unstructured': run_global_unstructured, 'cat_kthvalue': run_cat_kthvalue,
           'l1_unstructured': run_l1_unstructured, 'row_sort': run_row_sort}

def threshold_ties(params: dict, sparsity: float, scope: str) -> torch.Tensor:
    "Which entries equal the k-th smallest |W| of their scope (all weights, their layer, their row), flat in parameter order."
    scores = [p.detach().abs().float().cpu() for p in params.values()]
    groups = ([torch.cat([s.reshape(-1) for s in scores])[None]] if scope == 'global' else
              [s.reshape(1, -1) if scope == 'layer' else s.reshape(-1, s.shape[-1]) for s in scores])  # one group per row of each
    return torch.cat([(g == g.kthvalue(max(1, round(sparsity * g.shape[1])), dim=1, keepdim=True).values).reshape(-1) for g in groups])

# -- one method in its own process -------------------------------------------------------------------------------

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}

def worker(method: str, preset: str, device: str, sparsity: float, out: Path, repeat: int, dtype: str, scope: str = 'global') -> dict:
    dtype = DTYPES[dtype]
    for mod in ('sparseft.mask_generator', 'sparseft.importance', 'torch.nn.utils.prune'): importlib.import_module(mod)  # not measured
    model = build_model(preset, device, dtype)
    params = prunable(model); names = list(params)
    n = sum(p.numel() for p in params.values()); weight_bytes = sum(p.numel() * p.element_size() for p in params.values())
    k = (round(sparsity * n) if scope == 'global' else  # exactly k pruned
         sum(round(sparsity * p.numel()) for p in params.values()) if scope == 'layer' else
         sum(p.numel() // p.shape[-1] * round(sparsity * p.shape[-1]) for p in params.values()))
    times = []
    run = (lambda: RUNNERS[method](model, sparsity, scope)) if method in OURS else (lambda: RUNNERS[method](model, sparsity))
    if device.startswith('cuda') and method in OURS:  # warm up kernels and the caching allocator, then time
        run()
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    try:
        with peak_meter(device) as mem:
            sync(); t0 = time.perf_counter()
            masks, mask_bytes = run()
            sync(); times.append(time.perf_counter() - t0)
    except (RuntimeError, MemoryError) as e:  # a peer that cannot run at this size (kthvalue's index limit, memory) is a row, not a crash
        if method in OURS: raise
        return dict(method=method, error=f"not possible at this size: {str(e).splitlines()[0][:120]}", n=n, weight_bytes=weight_bytes, k=k)
    for _ in range(repeat - 1):  # more timings (ours only: the others change the model or are slow)
        del masks; sync(); t0 = time.perf_counter()
        masks, _ = run()
        sync(); times.append(time.perf_counter() - t0)
    pruned = sum(int((~masks[name].bool()).sum()) for name in names)
    if all(masks[name].numel() % 8 == 0 for name in names):  # pack tensor by tensor: no concatenated copy of the masks (7B on a 24 GB machine)
        bits, i = np.empty(n // 8, dtype=np.uint8), 0
        for name in names:
            b = np.packbits(masks[name].reshape(-1).bool().cpu().numpy()); bits[i:i + b.size] = b; i += b.size
    else: bits = np.packbits(torch.cat([masks[name].reshape(-1).bool().cpu() for name in names]).numpy())
    bits.tofile(out / f'{method}.bits')
    if method in ('cat_kthvalue', 'l1_unstructured', 'row_sort'):  # which entries tie with their threshold: where masks may differ
        np.packbits(threshold_ties(params, sparsity, scope).numpy()).tofile(out / 'ties.bits')
    return dict(method=method, time_s=min(times), times_s=times, extra_bytes=mem.extra, mask_bytes=mask_bytes,
                weight_bytes=weight_bytes, n=n, pruned=pruned, k=k)

# -- the driver ----------------------------------------------------------------------------------------------------

def _read_bits(path: Path) -> np.ndarray: return np.fromfile(path, dtype=np.uint8)

def failed_row(method: str, returncode: int, stderr: str) -> dict:
    "The row of a peer whose worker died (the OS killed it for memory, or it crashed outside the worker's own error handling)."
    last = next((l.strip() for l in reversed(stderr.splitlines()) if l.strip()), '')
    return dict(method=method, error=f"not possible at this size: {exit_reason(returncode)}" + (f": {last[:120]}" if last else ''))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    ap.add_argument('--preset', default=None, choices=list(PRESETS), help="model shapes (default: cpu200m on CPU, 7b on CUDA)")
    ap.add_argument('--sparsity', type=float, default=0.5)
    ap.add_argument('--scope', default='global', choices=list(SCOPE_METHODS), help="one threshold over all layers, one per layer (peer: l1_unstructured), or one per row (peer: row_sort)")
    ap.add_argument('--dtype', default=None, choices=list(DTYPES), help='weight dtype (default: bf16 on CUDA, fp32 on CPU)')
    ap.add_argument('--methods', default=None, help=f"comma-separated, of {', '.join(METHODS)} (default: all on CPU, sparseft on CUDA)")
    ap.add_argument('--repeat', type=int, default=None, help='timed runs of ours, the best is reported (default 3 on CPU, 5 on CUDA)')
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--out', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cuda = a.device.startswith('cuda')
    preset = a.preset or ('7b' if cuda else 'cpu200m')
    dtype = a.dtype or ('bf16' if cuda else 'fp32')
    if a.worker:
        print(json.dumps(worker(a.worker, preset, a.device, a.sparsity, Path(a.out), a.repeat or 1, dtype, a.scope)))
        return
    if cuda and not torch.cuda.is_available(): sys.exit('--device cuda: no CUDA device is available here')
    known = SCOPE_METHODS[a.scope] + (() if cuda else ('device_path',))  # on a GPU, sparseft is the device path
    methods = a.methods.split(',') if a.methods else (['sparseft'] if cuda and a.scope == 'global' else list(known))
    for m in methods:
        if m not in known: sys.exit(f"unknown method {m!r} for scope {a.scope!r}; known: {', '.join(known)}")
    repeat = a.repeat or (5 if cuda else 3)
    with tempfile.TemporaryDirectory(prefix='sparseft-bench-') as tmp:
        rows = {}
        for m in methods:
            cmd = [sys.executable, __file__, '--worker', m, '--device', a.device, '--preset', preset, '--sparsity', str(a.sparsity),
                   '--out', tmp, '--repeat', str(repeat if m in OURS else 1), '--dtype', dtype, '--scope', a.scope]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode and m in OURS: sys.exit(f'{m} failed ({exit_reason(r.returncode)}):\n{r.stderr[-3000:]}')
            rows[m] = json.loads(r.stdout.strip().splitlines()[-1]) if not r.returncode else failed_row(m, r.returncode, r.stderr)
            print(f'  {m}: ' + (rows[m]['error'] if 'error' in rows[m] else f'{rows[m]["time_s"]:.3f} s'), flush=True)
        report(rows, Path(tmp), preset, a.device, a.sparsity, dtype, a.scope)

def report(rows: dict, tmp: Path, preset: str, device: str, sparsity: float, dtype: str = 'fp32', scope: str = 'global'):
    failed = {m: r for m, r in rows.items() if 'error' in r}
    rows = {m: r for m, r in rows.items() if 'error' not in r}
    first = next((r for r in (*rows.values(), *failed.values()) if 'n' in r), None)
    if first is None:  # every method failed before it measured the model
        for m, r in failed.items(): print(f"{m}: {r['error']}")
        return
    wb, n = first['weight_bytes'], first['n']
    print(f"\n{SCOPE_NAMES[scope]} magnitude masks at sparsity {sparsity}: preset {preset} on {device} in {dtype}, "
          f"{n / 1e6:.1f}M prunable weights ({wb / 2**20:.0f} MiB); k = {first['k']:,} pruned\n")
    ours = _read_bits(tmp / 'sparseft.bits') if 'sparseft' in rows else None
    ties = _read_bits(tmp / 'ties.bits') if (tmp / 'ties.bits').exists() else None
    print(f"{'method':<22}{'time (s)':>10}{'first run':>11}{'peak extra (MiB)':>18}{'masks (MiB)':>13}{'beyond masks':>14}{'% weights':>11}{'pruned == k':>13}  same masks as ours")
    for m, r in rows.items():
        same = ''
        if ours is not None and m != 'sparseft':
            diff = np.unpackbits(_read_bits(tmp / f'{m}.bits') ^ ours).sum()
            same = 'identical' if diff == 0 else f'{diff:,} entries differ'
            if diff and ties is not None:
                d = _read_bits(tmp / f'{m}.bits') ^ ours
                outside = np.unpackbits(d & ~ties).sum()
                same += ' (all tied with the threshold)' if outside == 0 else f' ({outside:,} not at a tie)'
        beyond = r['extra_bytes'] - r['mask_bytes']
        print(f"{m:<22}{r['time_s']:>10.3f}{r['times_s'][0]:>11.3f}{r['extra_bytes'] / 2**20:>18.1f}{r['mask_bytes'] / 2**20:>13.1f}"
              f"{beyond / 2**20:>14.1f}{100 * beyond / wb:>10.1f}%{str(r['pruned'] == r['k']):>13}  {same}")
    for m, r in failed.items(): print(f"{m:<22}{'-':>10}{'-':>11}{'-':>18}{'-':>13}{'-':>14}{'-':>11}{'-':>13}  {r['error']}")
    if 'sparseft' in rows:
        o = rows['sparseft']; beyond = 100 * (o['extra_bytes'] - o['mask_bytes']) / wb
        print()
        ours_beyond = max(1, o['extra_bytes'] - o['mask_bytes'])
        for m, label in PEER_LABELS.items():
            if m not in rows: continue
            r = rows[m]; sp = r['time_s'] / o['time_s']
            print(f"speed-up vs {label}: {sp:.1f}x" + (f" (goal >= 5x: {'met' if sp >= 5 else 'NOT met'})" if m == 'global_unstructured' else '')
                  + f"; memory beyond masks, {m} / ours: {(r['extra_bytes'] - r['mask_bytes']) / ours_beyond:.0f}x")
        print(f"ours, extra memory beyond masks: {beyond:.2f}% of the weights' bytes (goal < 5%: {'met' if beyond < 5 else 'NOT met'})")
        if device.startswith('cuda'):
            print(f"ours on {device}: {1000 * o['time_s']:.1f} ms (best of {len(o['times_s'])}; goal <= 50 ms: {'met' if o['time_s'] <= 0.05 else 'NOT met'})")

if __name__ == '__main__':
    main()
