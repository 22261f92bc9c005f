"""Whole-process tests of `sparseft_sweep`: a sweep with 2 training processes at once, two sweeps started together on one spec,
a sweep killed with SIGKILL (its whole process group) again and again, and a bad spec.

Every run is a tiny BERT classifier with MiniLM's vocabulary and tokenizer on a few Rotten Tomatoes reviews (seconds each).
"""
import csv, json, os, random, re, signal, subprocess, sys, textwrap, time
from pathlib import Path

import yaml
from safetensors import safe_open

from sparseft.runs import expand, load_spec, read_attempts, read_registry, registry_path, verify_run
from sparseft.train import RunDir

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
BIN = Path(sys.executable).parent
TRAIN = ("{model_kwargs: {vocab_size: 30522}, tokenizer: minilm, max_train_examples: 32, max_eval_examples: 32, batch_size: 8, "
         "max_length: 32, lr: 0.005, lora: {r: 4}, %s}")

def _spec(tmp_path, name='spec.yaml', sparsities='[0.3, 0.6]', patterns='[unstructured, random]',
          modes='[sparse_to_dense, sparse_to_sparse]', train='max_steps: 3') -> Path:
    p = tmp_path/name
    p.write_text(textwrap.dedent(f'''\
        models: [tiny-bert]
        tasks: [rt-sentiment]
        patterns: {patterns}
        sparsities: {sparsities}
        modes: {modes}
        train: {TRAIN % train}
        results_dir: {tmp_path/'results'}
    '''))
    return p

def _sweep(spec, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen([str(BIN/'sparseft_sweep'), str(spec), 'sweep', '--quiet', *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)

def _log_counts(run_dir) -> tuple[int, int]:
    log = (Path(run_dir)/'train.log').read_text()
    return log.count(' started ('), log.count(' resumed (')

def _train_steps(run_dir) -> list[int]:
    return [l['step'] for l in RunDir(run_dir).read_metrics() if 'eval' not in l]

def _registry_matches_dirs(results):
    "The live registry is what rebuild-registry makes of the run directories."
    live = registry_path(results).read_text()
    r = subprocess.run([str(BIN/'sparseft_sweep'), str(results.parent/'spec.yaml'), 'rebuild-registry'], env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert registry_path(results).read_text() == live

def _nothing_half_written(results: Path):
    "Every file parses and no temporary file is left."
    assert not [str(p) for p in results.rglob('.tmp*')]
    for p in results.rglob('*'):
        if not p.is_file(): continue
        if p.suffix == '.json': json.loads(p.read_text())
        elif p.suffix == '.jsonl': [json.loads(l) for l in p.read_text().splitlines()]
        elif p.suffix in ('.yaml', '.yml'): yaml.safe_load(p.read_text())
        elif p.suffix == '.csv': list(csv.DictReader(p.open()))
        elif p.suffix == '.safetensors':
            with safe_open(str(p), framework='pt') as f: [f.get_tensor(k) for k in f.keys()]

def test_two_sweeps_at_once_with_two_jobs_each(tmp_path):
    "A 2 x 2 x 2 sweep (patterns x sparsities x modes) run by two sweep processes started together, each with --jobs 2."
    spec = _spec(tmp_path)
    runs = expand(load_spec(spec))
    assert len(runs) == 8
    procs = [_sweep(spec, '--jobs', '2') for _ in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err[-3000:]
    def counts(out):  # (done, trained now, run by the other sweep)
        m = re.search(r'8 runs: (\d+) done, 0 failed(?:, (\d+) run by other processes)?; (?:trained now: (\d+) \(\3 done\)|nothing trained now)', out)
        assert m, out
        return int(m[1]), int(m[3] or 0), int(m[2] or 0)
    counts = [counts(out) for out, _ in outs]
    assert all(done + busy == 8 for done, _, busy in counts), counts  # done: trained here, or found done (and verified)
    assert sum(trained for _, trained, _ in counts) == 8, counts  # each run trained by exactly one of the two
    for rc in runs:
        assert RunDir(rc.run_dir).status == 'done' and verify_run(rc.run_dir)[0]
        assert _log_counts(rc.run_dir) == (1, 0), rc.run_id  # started once, never resumed
        assert [a['outcome'] for a in read_attempts(rc.run_dir)] == ['done']
    reg = read_registry(registry_path(tmp_path/'results'))
    assert sorted(reg.run_id) == sorted(rc.run_id for rc in runs) and set(reg.status) == {'done'}  # one row per run
    assert reg.accuracy.notna().all() and set(reg.attempts) == {1}
    _registry_matches_dirs(tmp_path/'results')
    _nothing_half_written(tmp_path/'results')

def _wait(proc, seconds: float, until=None) -> bool:
    "Wait `seconds` (or until `until()` is true); False when the process ended first."
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None: return False
        if until is not None and until(): return True
        time.sleep(0.05)
    return proc.poll() is None

STEPS, EVERY = 200, 5  # a tiny-BERT step takes ~25 ms on a quiet core: enough steps that 10 kills land before the runs end

def test_sweep_killed_again_and_again(tmp_path):
    "SIGKILL the whole sweep (sweeper and training processes) at random moments, 10 times, restarting it each time."
    spec = _spec(tmp_path, sparsities='[0.3, 0.6]', patterns='[unstructured]', modes='[sparse_to_sparse]',
                 train=f'max_steps: {STEPS}, checkpoint_every: {EVERY}')
    runs = expand(load_spec(spec))
    rng = random.Random(0)
    def checkpoints():
        return tuple((rc.run_dir/'model_dir'/'checkpoint'/'latest').read_text() if (rc.run_dir/'model_dir'/'checkpoint'/'latest').is_file()
                     else '' for rc in runs)
    def steps_saved():  # optimizer steps the runs have made durable so far (a done run counts whole: its checkpoints are gone)
        return sum(STEPS if RunDir(rc.run_dir).status == 'done' else int(c.strip()[5:] or 0) if c.strip() else 0
                   for rc, c in zip(runs, checkpoints()))
    kills = 0
    while kills < 10:
        proc = _sweep(spec, '--jobs', '2', start_new_session=True)
        base = steps_saved()
        if kills % 2:  # right after a new checkpoint: the next sweep must resume from it
            seen = checkpoints()
            alive = _wait(proc, 60, until=lambda: checkpoints() != seen) and _wait(proc, rng.uniform(0, 0.5))
        else:  # anywhere (masks, registry, start-up, training, export), but before another checkpoint is saved: the work must outlast 10 kills on a fast machine
            alive = _wait(proc, rng.uniform(0.2, 10), until=lambda: steps_saved() > base)
        print(f'kill {kills}: steps saved {base} -> {steps_saved()}', flush=True)
        if not alive: break  # the sweep finished before this kill
        os.killpg(proc.pid, signal.SIGKILL); proc.communicate(); kills += 1
    assert kills == 10
    final = _sweep(spec, '--jobs', '2')
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-3000:]
    assert '2 runs: 2 done' in out, out
    resumed = 0
    for rc in runs:
        assert RunDir(rc.run_dir).status == 'done' and verify_run(rc.run_dir)[0]
        started, n_resumed = _log_counts(rc.run_dir)
        assert started == 1, rc.run_id  # never trained twice from scratch
        resumed += n_resumed
        assert _train_steps(rc.run_dir) == list(range(1, STEPS + 1))  # no step logged twice
        outcomes = [a['outcome'] for a in read_attempts(rc.run_dir)]
        assert outcomes[-1] == 'done' and 'failed' not in outcomes and None not in outcomes, outcomes
    assert resumed >= 1  # kills landed after checkpoints, and the runs went on from them
    reg = read_registry(registry_path(tmp_path/'results'))
    assert sorted(reg.run_id) == sorted(rc.run_id for rc in runs) and set(reg.status) == {'done'}
    _registry_matches_dirs(tmp_path/'results')
    _nothing_half_written(tmp_path/'results')

def test_bad_spec_exits_2_and_writes_nothing(tmp_path):
    spec = _spec(tmp_path, name='bad.yaml', sparsities='[0.3, 1.0]')
    r = subprocess.run([str(BIN/'sparseft_sweep'), str(spec), 'sweep'], env=ENV, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert r.stderr == f"sparseft_sweep: error: {spec} line 4: sparsities: 1.0 is outside [0, 1)\n"
    assert not (tmp_path/'results').exists()

def test_failed_runs_are_reported_as_failed(tmp_path):
    "Runs that fail as they load (a vocabulary smaller than the tokenizer's) are counted as failed, never as done or trained successfully."
    spec = _spec(tmp_path, sparsities='[0.5]', patterns='[unstructured]', modes='[dense]',  # dense: no masks stage to stop the sweep first
                 train='max_steps: 2').read_text().replace('vocab_size: 30522', 'vocab_size: 256')
    (tmp_path/'spec.yaml').write_text(spec + 'seeds: [0, 1]\n')
    r = subprocess.run([str(BIN/'sparseft_sweep'), str(tmp_path/'spec.yaml'), 'sweep', '--quiet'], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert '2 runs: 0 done, 2 failed; trained now: 2 (2 failed);' in r.stdout, r.stdout
    assert len(re.findall(r"-> failed: .*model 'tiny-bert' has 256 token embeddings", r.stdout)) == 2, r.stdout
