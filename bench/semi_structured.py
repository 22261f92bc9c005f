"""Benchmark: 2:4 semi-structured sparse kernels (`torch.sparse.to_sparse_semi_structured`) against dense, in bf16.

    python bench/semi_structured.py --preset tiny     # CPU (or any device), seconds: small shapes; on CPU every part runs the dense-with-zeros fallback
    python bench/semi_structured.py --preset tiny --emulate  # CPU: the 2:4 code paths themselves, on `fixtures.emulated_24_kernels` (no speed)
    python bench/semi_structured.py                   # CUDA, compute capability >= 8.0: the full preset below, a few minutes

Three parts, each printing its times and the ratio dense / 2:4 (above 1: the sparse kernels are faster):

(a) GEMM: y = x W^T for the weight shapes of LLaMA-7B (4096x4096 attention, 11008x4096 up/gate, 4096x11008 down) at 512 ... 16384
    tokens; W pruned 2:4 by magnitude, dense bf16 `F.linear` vs the same W as a semi-structured tensor; and the time to compress W
    (`to_sparse_semi_structured`), which sparse_to_sparse training pays once per layer and step. The training backward's input
    gradient g W is the GEMM of the transposed shape (11008x4096 <-> 4096x11008): its row says what a compressed W^T would gain, but a
    2:4 mask's transpose is 2:4 only for a transposable mask; the share of column groups of 4 that happen to be 2:4 is printed, and
    what share of the 2:4 mask's magnitude a transposable 2:4 mask of the same W keeps.
(b) merged model: a Llama built from a config (the TinyLlama-1.1B shape in the full preset), pruned 2:4 on its projections,
    wrapped with `SparseModelWrapper(mode='inference')` with `kernels='dense'` and `kernels='semi_structured'`: prefill tokens/s
    (one forward over the prompt) and decode tokens/s (greedy `generate` of N new tokens minus that of 1: the prefill cancels).
(c) one training step (forward, backward, AdamW) on the same pruned model: PEFT LoRA on the dense-with-zeros model vs sparseft's
    sparse LoRA in sparse_to_sparse mode on the dense kernels and on the 2:4 kernels (`kernels='semi_structured'`: the folded weight
    compressed and multiplied on the 2:4 kernels in each forward; backward dense), and on transposable 2:4 masks with the backward's
    input gradient g W_f on the 2:4 kernels too (W_f^T compressed each step), with the first step's loss of each, and the floors of
    the 2:4 steps against PEFT's from their GEMM work, (1/k + 2) / 2 and (2/k + 1) / 2 with k part (a)'s 2:4 speed-up: exact masked
    gradients cost a third weight-sized GEMM, so no k <= 2 brings either under PEFT's step.

Times are medians of `--repeats` runs after a warmup, synchronised on CUDA. Where the kernels are not available (CPU, older GPUs)
the 2:4 side is the fallback the wrapper reports, and the ratios are about 1.
"""
from __future__ import annotations

import argparse, contextlib, copy, statistics, sys, time, warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_llama

PRESETS = {
    'tiny': {'gemm': [(256, 256), (704, 256), (256, 704)], 'tokens': [64, 256],
             'model': dict(hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=4, vocab_size=1000),
             'prefill': 128, 'decode': 8, 'batch': (2, 64)},
    'full': {'gemm': [(4096, 4096), (11008, 4096), (4096, 11008)], 'tokens': [512, 1024, 2048, 4096, 8192, 16384],
             'model': dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                           vocab_size=32000),
             'prefill': 2048, 'decode': 128, 'batch': (8, 512)},
}
PROJECTIONS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')

def sync(device: str):
    if device.startswith('cuda'): torch.cuda.synchronize()

def timed(fn, device: str, repeats: int, warmup: int = 2) -> float:
    "Median seconds of `fn()` over `repeats` runs after `warmup` runs."
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeats):
        sync(device); t = time.perf_counter(); fn(); sync(device); times.append(time.perf_counter() - t)
    return statistics.median(times)

def prune_24(w: torch.Tensor) -> torch.Tensor:
    "w with the 2 smallest magnitudes of every 4 consecutive entries along its rows set to 0."
    g = w.reshape(-1, 4)
    keep = torch.zeros_like(g, dtype=torch.bool).scatter_(1, g.abs().topk(2, dim=1).indices, True)
    return (g * keep).reshape(w.shape)

BACKENDS = ('cutlass', 'cusparselt')
SPEEDUPS: list[float] = []  # part (a)'s dense / 2:4 at the largest token count, per weight shape (for part (c)'s floor)

def semi_structured(w: torch.Tensor, backend: str) -> torch.Tensor | str:
    "w compressed on `backend` where the device takes it, else why not."
    torch.sparse.SparseSemiStructuredTensor._FORCE_CUTLASS = backend == 'cutlass'
    try: return torch.sparse.to_sparse_semi_structured(w)
    except (RuntimeError, ValueError, NotImplementedError) as e: return str(e).splitlines()[0][:70]

def bench_gemm(p: dict, device: str, repeats: int):
    from sparseft.patterns import compute_masks, is_nm
    print('(a) GEMM y = x W^T, bf16: dense vs 2:4 on each backend; compress = to_sparse_semi_structured(W) on the faster backend, which '
          'sparse_to_sparse training pays per layer and step')
    print(f"{'W [out, in]':>14} {'tokens':>7} {'dense ms':>9} {'cutlass ms':>10} {'cuSPLt ms':>10} {'dense/best':>10} {'compress ms':>11}")
    g = torch.Generator(device=device).manual_seed(0)
    for out_f, in_f in p['gemm']:
        w0 = torch.randn(out_f, in_f, device=device, dtype=torch.bfloat16, generator=g)
        w = prune_24(w0)
        ws = {b: semi_structured(w, b) for b in BACKENDS}
        ok = {b: t for b, t in ws.items() if isinstance(t, torch.Tensor)}
        rows = []
        for n in p['tokens']:
            x = torch.randn(n, in_f, device=device, dtype=torch.bfloat16, generator=g)
            td = timed(lambda: F.linear(x, w), device, repeats)
            ts = {b: timed(lambda: F.linear(x, t), device, repeats) for b, t in ok.items()}
            rows.append((n, td, ts))
        best = min(ok, key=lambda b: sum(r[2][b] for r in rows)) if ok else None
        tc = timed(lambda: semi_structured(w, best), device, repeats) if best else float('nan')
        if best: SPEEDUPS.append(rows[-1][1] / rows[-1][2][best])
        for n, td, ts in rows:
            cells = [f"{ts[b] * 1e3:>10.3f}" if b in ts else f"{'-':>10}" for b in BACKENDS]
            print(f"{f'{out_f}x{in_f}':>14} {n:>7} {td * 1e3:>9.3f} {' '.join(cells)} {td / ts[best] if best else float('nan'):>10.2f} {tc * 1e3:>11.3f}")
        why = {}
        for b, t in ws.items():
            if not isinstance(t, torch.Tensor): why.setdefault(t, []).append(b)
        why = '; '.join(f"{' and '.join(bs)}: {t}" for t, bs in why.items())
        emulated = ' (emulated on the CPU: no speed)' if best and not w.is_cuda else ''
        cols = (w.t() != 0).reshape(in_f, -1, 4).sum(-1) <= 2  # the transpose's groups of 4 along its rows
        print(f"{'':>14} faster: {best or 'none'}{emulated}{'; not available: ' + why if why else ''}")
        print(f"{'':>14} W^T of this 2:4 W: {cols.float().mean().item():.1%} of its groups of 4 are 2:4 (a compressed W^T needs 100%)")
        tm = compute_masks({'w': w0.abs()}, None, 'nm', transposable=True)['w']  # 2:4 down the columns of each 4x4 tile too
        print(f"{'':>14} a transposable 2:4 mask of the same W: W^T 2:4 {'everywhere' if is_nm(tm.t()) else 'NOT everywhere'}, keeping "
              f"{(w0.abs() * tm).float().sum().item() / w.abs().float().sum().item():.1%} of the magnitude the 2:4 mask keeps")
    torch.sparse.SparseSemiStructuredTensor._FORCE_CUTLASS = False

def pruned_model(p: dict, device: str):
    "A seeded Llama of the preset's shape in bf16 and 2:4 magnitude masks on its projections."
    from sparseft.mask_generator import compute_nm_mask
    model = build_llama(p['model'], device, torch.bfloat16, max_position_embeddings=4096)
    return model, compute_nm_mask(model, 2, 4, include=[f'*.{x}.weight' for x in PROJECTIONS])

def bench_model(p: dict, device: str, repeats: int):
    from sparseft.wrapper import AUTO_TOKENS, prepare_sparse_model
    print(f"(b) merged model {p['model']['hidden_size']}h x {p['model']['num_hidden_layers']} layers, bf16: prefill {p['prefill']} tokens, "
          f"decode {p['decode']} tokens")
    model, masks = pruned_model(p, device)
    ids = torch.randint(0, p['model']['vocab_size'], (1, p['prefill']), device=device, generator=torch.Generator(device=device).manual_seed(0))
    rows = {}
    for kernels in ('dense', 'semi_structured'):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            w = prepare_sparse_model(copy.deepcopy(model), masks, 'inference', kernels=kernels).eval()
        report = w.kernels_report
        note = '' if report is None else f"{len(report['converted'])} Linears semi-structured ({report['backend']}), {len(report['dense'])} fallback"
        if caught and report and report['dense']: note += f" ({next(iter(report['dense'].values()))})"
        with torch.no_grad():
            prefill = timed(lambda: w(input_ids=ids, use_cache=False), device, repeats)
            gen = lambda k: (lambda: w.generate(ids, max_new_tokens=k, min_new_tokens=k, do_sample=False, pad_token_id=0))
            decode = timed(gen(p['decode']), device, repeats, warmup=1) - timed(gen(1), device, repeats, warmup=1)  # the prefill cancels
        rows[kernels] = (p['prefill'] / prefill, (p['decode'] - 1) / decode if decode > 0 else float('nan'), note)
        del w
    for k, (pf, dc, note) in rows.items(): print(f"  {k:>15}: prefill {pf:10.0f} tok/s, decode {dc:8.1f} tok/s  {note}")
    (pd_, dd, _), (ps, ds, _) = rows['dense'], rows['semi_structured']
    print(f"  2:4 / dense: prefill {ps / pd_:.2f}x, decode {ds / dd:.2f}x")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        report = prepare_sparse_model(copy.deepcopy(model), masks, 'inference', kernels='auto').kernels_report
    print(f"  kernels='auto' (each shape timed at {AUTO_TOKENS} tokens): {len(report['converted'])} of {len(masks)} Linears on 2:4; " +
          ('; '.join(f"{shape} {t['dense_ms']:.3g} ms dense, {t['semi_structured_ms']:.3g} ms 2:4" for shape, t in report['timings'].items())
           or next(iter(report['dense'].values()), '')[:80]))

def bench_train(p: dict, device: str, repeats: int):
    from peft import LoraConfig, get_peft_model
    from sparseft.mask_generator import compute_nm_mask
    from sparseft.mask_ops import apply_masks
    from sparseft.sparse_lora import SparseLoRAConfig, apply_sparse_lora
    from sparseft.wrapper import to_semi_structured
    b, n = p['batch']
    print(f"(c) one training step, batch {b} x {n} tokens, r=16, bf16: PEFT LoRA vs sparse LoRA sparse_to_sparse on 2:4 masks, dense and 2:4 kernels")
    base, masks = pruned_model(p, device)
    ids = torch.randint(0, p['model']['vocab_size'], (b, n), device=device, generator=torch.Generator(device=device).manual_seed(0))
    tmasks = compute_nm_mask(base, 2, 4, include=[f'*.{x}.weight' for x in PROJECTIONS], transposable=True)  # W^T 2:4 too
    times, notes = {}, {}
    for variant in ('peft', 'sparse_to_sparse', 'sparse_to_sparse 2:4', '2:4 transposable'):
        model, vmasks = copy.deepcopy(base), tmasks if variant == '2:4 transposable' else masks
        if variant == 'peft':
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                model = get_peft_model(apply_masks(model, masks), LoraConfig(r=16, lora_alpha=32, target_modules=list(PROJECTIONS), init_lora_weights='gaussian'),
                                       autocast_adapter_dtype=False)
        else:
            model = apply_sparse_lora(model, vmasks, SparseLoRAConfig(r=16, alpha=32, target_modules=list(PROJECTIONS), modules_to_save=None, init='gaussian'))
            if '2:4' in variant:
                with warnings.catch_warnings(record=True):
                    warnings.simplefilter('always')
                    report = to_semi_structured(model, vmasks)
                notes[variant] = (f"{len(report['converted'])} of {len(vmasks)} on the 2:4 kernels ({report['backend']}), "
                                  f"{len(report['backward24'])} with their backward's g W_f too" if report['converted'] else
                                  f"fallback: {next(iter(report['dense'].values()), '')[:60]}")
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
        def step():
            loss = model(input_ids=ids, labels=ids).loss; loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
            return loss
        first = step().item()  # B = 0 at the start, so each is its pruned model's loss: the same for every variant on the same masks
        times[variant] = timed(step, device, repeats, warmup=1)
        notes[variant] = f"first loss {first:.4f}" + (f"; {notes[variant]}" if variant in notes else '')
        del model, opt
    for k, t in times.items(): print(f"  {k:>20}: {t * 1e3:9.1f} ms/step  {notes[k]}")
    s2s, s24, peft = times['sparse_to_sparse'], times['sparse_to_sparse 2:4'], times['peft']
    print(f"  sparse_to_sparse / PEFT: {s2s / peft:.2f}x step time; on the 2:4 kernels: {s24 / peft:.2f}x PEFT, {s24 / s2s:.2f}x the dense kernels; "
          f"transposable, backward on 2:4 too: {times['2:4 transposable'] / peft:.2f}x PEFT, {times['2:4 transposable'] / s2s:.2f}x the dense kernels")
    # weight-sized GEMMs per projection and step: PEFT 2 (x W^T, g W); exact sparse_to_sparse 3 (x W_f^T, g W_f, (g^T x) * M), the first on 2:4
    k = statistics.mean(SPEEDUPS) if SPEEDUPS else None
    print(f"  GEMM-work floors vs PEFT: forward on 2:4 (1/k + 2) / 2 = {(1 / k + 2) / 2:.2f}x, forward and g W_f on 2:4 (2/k + 1) / 2 = "
          f"{(2 / k + 1) / 2:.2f}x, with k = {k:.2f} (part (a)'s 2:4 speed-up at {p['tokens'][-1]} tokens); >= 1.0x for any k <= 2" if k else
          "  GEMM-work floors vs PEFT: (1/k + 2) / 2 and, with transposable masks, (2/k + 1) / 2: >= 1.0x for any 2:4 speed-up k <= 2 "
          "(run part (a) for k)")

def main(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--preset', choices=sorted(PRESETS), default='full', help='shapes: tiny (seconds, any device) or full (CUDA)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='where to run')
    ap.add_argument('--repeats', type=int, default=10, help='timed runs per measurement (median)')
    ap.add_argument('--parts', default='abc', help='which parts to run: a (GEMM), b (merged model), c (training step)')
    ap.add_argument('--threads', type=int, default=None, help='torch threads on CPU (default: torch\'s)')
    ap.add_argument('--emulate', action='store_true', help='CPU: run the 2:4 paths on fixtures.emulated_24_kernels (their code, not their speed)')
    args = ap.parse_args(argv)
    if args.preset == 'full' and not args.device.startswith('cuda'):
        ap.error('the full preset is for CUDA (7B-sized GEMMs and a 1.1B model); use --preset tiny on CPU')
    if args.threads: torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    dev = torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else 'cpu'
    print(f"preset {args.preset} on {dev}, torch {torch.__version__}, median of {args.repeats}" + (', 2:4 kernels emulated' if args.emulate else ''))
    with contextlib.ExitStack() as stack:
        if args.emulate:
            from sparseft.fixtures import emulated_24_kernels
            stack.enter_context(emulated_24_kernels())
        for part, fn in (('a', bench_gemm), ('b', bench_model), ('c', bench_train)):
            if part in args.parts: fn(p, args.device, args.repeats)

if __name__ == '__main__':
    main()
