"""What the benchmarks share: a seeded Llama built without init temporaries, peak-memory meters for CPU and CUDA, and why a worker process died."""
from __future__ import annotations

import ctypes, gc, re, threading, time
from pathlib import Path

import torch

def build_llama(shape: dict, # LlamaConfig fields (sizes, layers, heads, vocabulary)
                device: str, # where the weights live
                dtype: torch.dtype, # the weights' dtype
                seed: int = 0, # seed of the weights
                **config, # more LlamaConfig fields (max_position_embeddings, use_cache, ...)
               ):
    "A seeded LlamaForCausalLM (untied embeddings) built on the meta device, then materialised on `device`."
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    cfg = LlamaConfig(**{'num_key_value_heads': shape['num_attention_heads'], 'tie_word_embeddings': False, **shape, **config})
    with torch.device('meta'): model = LlamaForCausalLM(cfg)
    model = model.to(dtype).to_empty(device=device)  # allocated in `dtype` at once: no float32 copy of a 7B model on the way
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'norm' in name: p.fill_(1.0)
            else: p.normal_(0.0, 0.02, generator=g)
    model.model.rotary_emb = LlamaRotaryEmbedding(model.config).to(device)  # inv_freq is a buffer: to_empty left it uninitialised
    return model

def exit_reason(returncode: int) -> str:
    "Why a worker process ended: its exit status, or the signal that killed it (SIGKILL is what the kernel's OOM killer sends)."
    if returncode >= 0: return f'exit status {returncode}'
    return f'killed by signal {-returncode}' + (' (out of memory: the kernel killed it)' if -returncode == 9 else '')

def status_kb(key: str) -> int:
    "A field of /proc/self/status, in kB."
    return int(re.search(rf'^{key}:\s+(\d+) kB', Path('/proc/self/status').read_text(), re.M).group(1))

class CpuPeak:
    "Peak resident-set growth during a block over its level at entry: VmHWM reset through /proc/self/clear_refs, else a 1 ms sampling thread."
    def __enter__(self):
        gc.collect()
        try: ctypes.CDLL('libc.so.6').malloc_trim(0)  # give freed temporaries back, so they are not reused for free
        except OSError: pass
        self.base, self.sampler = status_kb('VmRSS') * 1024, None
        try: Path('/proc/self/clear_refs').write_text('5')
        except OSError:
            self.peak, self.stop = self.base, threading.Event()
            def sample():
                while not self.stop.is_set(): self.peak = max(self.peak, status_kb('VmRSS') * 1024); time.sleep(0.001)
            self.sampler = threading.Thread(target=sample, daemon=True); self.sampler.start()
        return self
    def __exit__(self, *exc):
        if self.sampler is None: self.peak = status_kb('VmHWM') * 1024
        else: self.stop.set(); self.sampler.join()
        self.extra = self.peak - self.base

class CudaPeak:
    "Growth of torch.cuda.max_memory_allocated during a block."
    def __enter__(self):
        gc.collect(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); self.base = torch.cuda.memory_allocated(); return self
    def __exit__(self, *exc):
        torch.cuda.synchronize(); self.extra = torch.cuda.max_memory_allocated() - self.base

def peak_meter(device: str):
    "The meter for `device`: `CudaPeak` on CUDA, `CpuPeak` elsewhere."
    return CudaPeak() if str(device).startswith('cuda') else CpuPeak()
