"""Hostile and ordinary programs through the PoT sandbox."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.solver import execute
from runtime.solver.sandbox import child

TIMEOUT = 1.0
CANARY = Path("/tmp/etd_sandbox_canary")

HOSTILE_PROGRAMS = {
    "import_os": "import os\nans = 1",
    "import_subprocess": "import subprocess\nsubprocess.run(['touch', '/tmp/etd_sandbox_canary'])\nans = 1",
    "from_os_import": "from os import system\nsystem('touch /tmp/etd_sandbox_canary')\nans = 1",
    "dunder_import": "__import__('os').system('touch /tmp/etd_sandbox_canary')\nans = 1",
    "subclasses_walk": "ans = ().__class__.__bases__[0].__subclasses__()",
    "subclasses_comprehension": "x = [c for c in ().__class__.__base__.__subclasses__()]\nans = 1",
    "open_read": "ans = len(open('/etc/passwd').read())",
    "open_write": "f = open('/tmp/etd_sandbox_canary', 'w')\nans = 1",
    "exec_call": "exec('import os')\nans = 1",
    "eval_call": "ans = eval('6*7')",
    "compile_call": "c = compile('1', 'x', 'eval')\nans = 1",
    "getattr_call": "ans = getattr(1, '__class__')",
    "globals_call": "b = globals()['__builtins__']\nans = 1",
    "locals_call": "ans = len(locals())",
    "vars_call": "ans = len(vars())",
    "input_call": "ans = float(input())",
    "breakpoint_call": "breakpoint()\nans = 1",
    "socket_use": "import socket\ns = socket.socket()\nans = 1",
    "thread_use": "import threading\nthreading.Thread(target=lambda: 0).start()\nans = 1",
    "fork_via_multiprocessing": "import multiprocessing\nans = 1",
    "ctypes_use": "import ctypes\nans = 1",
    "sys_modules": "import sys\nans = len(sys.modules)",
    "fractions_sys_attr": "import fractions\nos = fractions.sys.modules['os']\nans = 1",
    "from_fractions_import_sys": "from fractions import sys\nans = 1",
    "math_loader": "import math\nans = math.__loader__",
    "infinite_loop": "while True:\n    pass\nans = 1",
    "huge_range_sum": "ans = sum(range(10**12))",
    "power_tower": "ans = 10**10**10",
    "pow_builtin_tower": "ans = pow(10, 10**10)",
    "augmented_power": "x = 10\nx **= 10**10\nans = x",
    "c_level_factorial": "import math\nans = math.factorial(10**8)",
    "memory_list": "x = [0] * (10**10)\nans = 1",
    "memory_string": "s = 'a' * 10**10\nans = 1",
    "memory_growth": "l = []\nwhile True:\n    l.append([0] * 10**7)\nans = 1",
    "output_flood_loop": "while True:\n    print('x' * 1000)\nans = 1",
    "output_flood_single": "print('x' * 10**6)\nans = 1",
    "deep_recursion": "def f(n):\n    return f(n + 1)\nans = f(0)",
    "mutual_recursion": "def a(n):\n    return b(n)\ndef b(n):\n    return a(n)\nans = a(1)",
    "fullwidth_open": "ans = len(\uff4f\uff50\uff45\uff4e('/etc/passwd').read())",
    "fullwidth_exec": "\uff45\uff58\uff45\uff43('import os')\nans = 1",
    "cyrillic_lookalike_open": "ans = \u043epen('/etc/passwd')",
    "oversized_source": "x = 1\n" * 5000 + "ans = x",
    "nul_in_source": "ans = 1\x00",
    "generator_frame_walk": "g = (x for x in [1])\nf = g.gi_frame.f_globals\nans = 1",
    "format_attribute_walk": "ans = '{0.__class__.__mro__}'.format(1)",
    "class_definition": "class A:\n    pass\nans = 1",
    "try_except": "try:\n    x = 1\nexcept Exception:\n    x = 2\nans = x",
    "with_statement": "with open('/etc/passwd') as f:\n    pass\nans = 1",
    "yield_lambda": "g = lambda: (yield)\nans = 1",
    "async_def": "async def f():\n    pass\nans = 1",
    "decorator": "def d(f):\n    return f\n@d\ndef g():\n    return 1\nans = g()",
    "builtins_name": "b = __builtins__\nans = 1",
    "type_call": "ans = type(1)",
    "shift_bomb": "ans = 1 << 10**10",
    "import_alias_shadow": "import math as __builtins__\nans = 1",
    "nested_parens": "ans = " + "(" * 5000 + "1" + ")" * 5000,
    "bytes_constant": "ans = len(b'abc')",
    "string_answer": "ans = 'forty-two'",
    "list_answer": "ans = [1, 2]",
    "infinite_answer": "ans = float('inf')",
    "division_by_zero": "ans = 1 / 0",
    "no_answer": "x = 5",
}


@pytest.fixture(autouse=True)
def no_canary():
    CANARY.unlink(missing_ok=True)
    yield
    assert not CANARY.exists(), "a hostile program changed the file system"


@pytest.mark.parametrize("name", sorted(HOSTILE_PROGRAMS))
def test_hostile_program_is_refused_in_time(name):
    started = time.monotonic()
    result = execute("pot", HOSTILE_PROGRAMS[name], timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert result.answer is None, f"{name} produced {result.answer}"
    assert result.error and result.error_kind, name
    assert elapsed < TIMEOUT + 2.5, f"{name} took {elapsed:.1f}s"


def test_enough_hostile_programs():
    assert len(HOSTILE_PROGRAMS) >= 40


def test_solver_keeps_answering_after_every_hostile_program():
    for source in HOSTILE_PROGRAMS.values():
        execute("pot", source, timeout=TIMEOUT)
        assert execute("pot", "ans = 6 * 7").answer == 42.0


@pytest.mark.parametrize(
    "name, kind",
    [
        ("import_os", "unsafe"), ("subclasses_walk", "unsafe"), ("open_read", "unsafe"),
        ("infinite_loop", "timeout"), ("huge_range_sum", "timeout"), ("power_tower", "too_large"),
        ("memory_list", "memory"), ("memory_growth", "memory"), ("output_flood_loop", "output_limit"),
        ("deep_recursion", "runtime"), ("nul_in_source", "unsafe"), ("oversized_source", "unsafe"),
        ("string_answer", "non_numeric"), ("no_answer", "no_answer"), ("division_by_zero", "runtime"),
        ("fullwidth_open", "unsafe"), ("cyrillic_lookalike_open", "runtime"), ("nested_parens", "syntax"),
    ],
)
def test_hostile_program_error_kind(name, kind):
    # A roomier limit than above: the memory cases must run out of memory before time, even on a busy machine.
    assert execute("pot", HOSTILE_PROGRAMS[name], timeout=3.0).error_kind == kind


def test_program_answer_and_steps():
    result = execute("pot", "clips_april = 48\nclips_may = clips_april / 2\nans = clips_april + clips_may")
    assert result.answer == 72.0
    assert [(s.name, s.value, s.expression) for s in result.steps] == [
        ("clips_april", 48.0, "48"),
        ("clips_may", 24.0, "clips_april / 2"),
        ("ans", 72.0, "clips_april + clips_may"),
    ]


def test_pal_solution_function_and_its_locals():
    source = (
        "def solution():\n"
        '    """Olivia has $23. She bought five bagels for $3 each."""\n'
        "    money_initial = 23\n"
        "    bagels = 5\n"
        "    bagel_cost = 3\n"
        "    money_spent = bagels * bagel_cost\n"
        "    result = money_initial - money_spent\n"
        "    return result\n"
    )
    result = execute("pot", source)
    assert result.answer == 8.0
    assert ("money_spent", 15.0) in [(s.name, s.value) for s in result.steps]


def test_allowed_modules_loops_and_output():
    source = (
        "import math\nfrom fractions import Fraction\n"
        "total = 0\nfor i in range(1, 5):\n    total += i\n"
        "half = Fraction(1, 2)\nprint('total', total)\n"
        "ans = math.sqrt(16) + total + half"
    )
    result = execute("pot", source)
    assert result.answer == 14.5
    assert result.output == "total 10\n"


def test_small_powers_still_work():
    assert execute("pot", "ans = 2 ** 10 + 1.5 ** 2").answer == 1026.25


def test_timeout_is_a_time_limit_not_a_crash():
    started = time.monotonic()
    result = execute("pot", "while True:\n    pass", timeout=0.5)
    assert result.error_kind == "timeout"
    assert time.monotonic() - started < 2.5


CONFINED_PROBE = r"""
import os, socket, sys
sys.path.insert(0, sys.argv[1])
import child
child.confine(512 * 1024 * 1024)
report = []
try:
    open('/tmp/etd_sandbox_canary', 'w').write('x'); report.append('open')
except OSError:
    pass
try:
    socket.socket(); report.append('socket')
except OSError:
    pass
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    report.append('fork')
except OSError:
    pass
try:
    bytearray(1024 * 1024 * 1024); report.append('memory')
except MemoryError:
    pass
os.write(4, (','.join(report) or 'confined').encode())
"""


def test_confinement_holds_even_without_the_allow_list():
    """Second layer: a worker that has confined itself cannot write files, open sockets, fork
    or allocate past its limit, whatever code it is tricked into running."""
    sandbox_dir = Path(child.__file__).parent
    read_fd, write_fd = os.pipe()
    probe = CONFINED_PROBE.replace("os.write(4,", "os.write(fd,").replace(
        "report = []", "report = []\nfd = int(sys.argv[2])"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", probe, str(sandbox_dir), str(write_fd)],
            pass_fds=(write_fd,), capture_output=True, timeout=30,
        )
    finally:
        os.close(write_fd)
    output = os.read(read_fd, 1000).decode()
    os.close(read_fd)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    assert output == "confined"
