"""Every console script of settings.ini: its `--help` shows the default of every option and marks required arguments as required,
both from its argparse parser and as a real subprocess; renamed flags still work, with a deprecation note on stderr."""
import argparse, configparser, importlib, os, re, subprocess, sys
from pathlib import Path

import pytest
from fastcore.script import anno_parser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, 'COLUMNS': '200', 'OMP_NUM_THREADS': '1'}

def console_scripts() -> dict[str, str]:
    "name -> 'module:function' of every entry in settings.ini's console_scripts."
    ini = configparser.ConfigParser(); ini.read(ROOT/'settings.ini')
    return dict(e.split('=', 1) for e in ini['DEFAULT']['console_scripts'].split())

SCRIPTS = console_scripts()

def parser_of(name: str) -> argparse.ArgumentParser:
    mod, fn = SCRIPTS[name].split(':')
    return anno_parser(getattr(importlib.import_module(mod), fn).__wrapped__, name)

def shown_actions(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]

def test_all_scripts_listed():
    assert sorted(SCRIPTS) == ['sparseft_analyze', 'sparseft_compute_masks', 'sparseft_export', 'sparseft_quickstart', 'sparseft_sweep',
                               'sparseft_train', 'sparseft_validate']

@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_parser_shows_every_default_and_required(name):
    problems = []
    for a in shown_actions(parser_of(name)):
        flag = a.option_strings[0] if a.option_strings else a.dest
        if not a.option_strings or a.required:  # positional, or a required option
            if not a.required and a.nargs not in ('?', '*'): problems.append(f"{flag}: positional but not required")
            if a.option_strings and '(required)' not in a.help: problems.append(f"{flag}: required, but its help does not say so: {a.help!r}")
        elif not re.search(r'\(default:? ', a.help or ''): problems.append(f"{flag}: no default in its help: {a.help!r}")
    assert not problems, '\n'.join(problems)

def test_help_as_subprocesses():
    "Each script's real `--help`: exit 0, a default for every option shown, required options outside the usage's brackets."
    procs = {n: subprocess.Popen([str(BIN/n), '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for n in SCRIPTS}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
        actions = shown_actions(parser_of(name))
        usage = out.split('\n\n')[0]
        for a in actions:
            if not a.option_strings: continue
            flag = a.option_strings[0]
            assert flag in out, (name, flag)
            if a.required: assert re.search(rf'(^|\s){re.escape(flag)} ', usage) and f'[{flag}' not in usage, (name, flag, usage)
            else: assert f'[{flag}' in usage, (name, flag, usage)
        optional = [a for a in actions if a.option_strings and not a.required]
        assert out.count('(default') >= len(optional), (name, out)

def test_validate_requires_checkpoint_and_masks():
    r = subprocess.run([str(BIN/'sparseft_validate'), '--masks', 'm.safetensors'], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 2 and 'the following arguments are required: --checkpoint' in r.stderr, r.stderr

def test_old_flag_spelling_works_with_a_deprecation_note(tmp_path):
    runs = tmp_path/'runs'; runs.mkdir()
    r = subprocess.run([str(BIN/'sparseft_analyze'), '--results_dir', str(runs), '--output_dir', str(tmp_path/'out')], capture_output=True,
                       text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'sparseft_analyze: warning: --results_dir is deprecated' in r.stderr and '--runs_dir' in r.stderr, r.stderr
