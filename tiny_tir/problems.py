"""Seeded synthetic problem generator for the tiny TIR model.

Every problem is stated in words, has an integer answer in 0..99999 that is too large to compute
"in the head", and carries reference code cells whose last printed line is the answer.

Every number the code needs is named in the problem ("Find the remainder when a^b is divided by m,
where a = 3337, b = 681198 and m = 10000."), and the code opens by assigning the same names the same
numbers. So each number the model writes is a keyed copy: after `b = ` comes what followed `b = `
in the problem: an induction head, the kind of copying a small transformer learns fastest. A first
version copied the k-th number of a free sentence into code; a 1M-parameter model did not learn that
in a CPU budget (0/200). Nothing is derived in the head (`b + 1`, never its value).

Cell shapes:
- one cell (most kinds);
- two cells where the second uses a variable the first defined (stateful sessions);
- two cells where the first raises (numbers written with thousands separators make tuples: a
  TypeError) and the second fixes it, keeping what the first assigned.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tiny_tir.tokenizer import COMMAS_FIX

ANSWER_MAX = 99999


@dataclass(frozen=True)
class Problem:
    kind: str
    text: str
    cells: tuple[str, ...]
    answer: int
    # Words the assistant writes before each cell; empty means none before any cell.
    lead_ins: tuple[str, ...] = field(default=())
    # What each cell shows (stdout without its final newline, or the traceback as the sandbox renders it);
    # empty means one cell that prints the answer. Computed natively here, checked by executing
    # the cells in the tests.
    outputs: tuple[str, ...] = field(default=())

    def cell_outputs(self) -> tuple[str, ...]:
        return self.outputs or (str(self.answer),)

    def cell_lead_ins(self) -> tuple[str, ...]:
        return self.lead_ins or ("",) * len(self.cells)


def _primes_below(n: int) -> list[int]:
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(n - 1) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return [i for i in range(n) if sieve[i]]


_PRIMES = _primes_below(100000)
_SMALL_PRIMES = [p for p in _PRIMES if p < 1000]


def _modulus(r: random.Random) -> int:
    # Moduli big enough that answers are not guessable, small enough to stay under ANSWER_MAX.
    return r.choice([r.randint(1000, 99999), r.choice(_PRIMES[1000:]), 10 ** r.randint(3, 5)])


def where(ask: str, values: dict[str, int | str], sep: str = ", ") -> str:
    """'Find a^b mod m, where a = 1, b = 2 and m = 3.': the question, then the names the code assigns.

    The names come last so that each number sits a few tokens before the code line that copies it:
    a copy from 20 tokens back is learned in far fewer steps than one from 80 (measured: the same model
    copied a number's first token 45% right from the start of the prompt)."""
    parts = [f"{name} = {value}" for name, value in values.items()]
    listed = parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + " and " + parts[-1]
    return f"{ask[:-1]}, where {listed}{ask[-1]}"


def assign(values: dict[str, int | str]) -> str:
    """The code's first lines: the problem's names and numbers, in the problem's order."""
    return "\n".join(f"{name} = {value}" for name, value in values.items())


def _powmod(r: random.Random) -> Problem:
    v = {"a": r.randint(2, 99999), "b": r.randint(100, 999999), "m": _modulus(r)}
    ask = r.choice(["Find the remainder when a^b is divided by m.", "Compute a^b modulo m.",
                    "What is a raised to the power b, modulo m?"])
    code = f"{assign(v)}\nprint(pow(a, b, m))"
    return Problem("powmod", where(ask, v), (code,), pow(v["a"], v["b"], v["m"]))


def _prodmod(r: random.Random) -> Problem:
    names = "abcd"[: r.randint(3, 4)]
    v = {name: r.randint(1000, 999999) for name in names} | {"m": _modulus(r)}
    product = " * ".join(names)
    ask = r.choice([f"Find the remainder when {product} is divided by m.",
                    f"What is the product {product}, modulo m?"])
    code = f"{assign(v)}\nprint({product} % m)"
    return Problem("prodmod", where(ask, v), (code,), math.prod(v[n] for n in names) % v["m"])


def _rangesum(r: random.Random) -> Problem:
    lo = r.randint(1, 999)
    v = {"e": r.randint(1, 4), "a": lo, "b": lo + r.randint(100, 9999), "m": _modulus(r)}
    ask = r.choice(["Compute the sum of k^e for k from a to b, modulo m.",
                    "Find the remainder when a^e + (a + 1)^e + ... + b^e is divided by m."])
    code = f"{assign(v)}\nprint(sum(k**e for k in range(a, b + 1)) % m)"
    answer = sum(k ** v["e"] for k in range(v["a"], v["b"] + 1)) % v["m"]
    return Problem("rangesum", where(ask, v), (code,), answer)


def _gcdlcm(r: random.Random) -> Problem:
    g = r.randint(2, 999)
    v = {"a": g * r.randint(2, 999), "b": g * r.randint(2, 999), "c": r.randint(2, 9999),
         "d": r.randint(2, 9999), "m": _modulus(r)}
    ask = r.choice(["Find (gcd(a, b) + lcm(c, d)) mod m.",
                    "Find the sum of the greatest common divisor of a and b and the least common multiple "
                    "of c and d, modulo m."])
    code = f"{assign(v)}\nimport math\nprint((math.gcd(a, b) + math.lcm(c, d)) % m)"
    answer = (math.gcd(v["a"], v["b"]) + math.lcm(v["c"], v["d"])) % v["m"]
    return Problem("gcdlcm", where(ask, v), (code,), answer)


def _countdiv(r: random.Random) -> Problem:
    n, p = r.randint(1000, 99999), r.randint(2, 99)
    q = r.choice([x for x in range(2, 100) if x != p])
    v, both = {"n": n, "p": p, "q": q}, n // math.lcm(p, q)
    if r.random() < 0.5:
        ask, cond = "How many integers k with 1 <= k <= n are divisible by p or q?", "k % p == 0 or k % q == 0"
        answer = n // p + n // q - both
    else:
        ask = "How many integers k with 1 <= k <= n are divisible by p but not by q?"
        cond, answer = "k % p == 0 and k % q != 0", n // p - both
    code = f"{assign(v)}\nprint(sum(1 for k in range(1, n + 1) if {cond}))"
    return Problem("countdiv", where(ask, v), (code,), answer)


def _subsets(r: random.Random) -> Problem:
    import itertools

    v = {"n": r.randint(10, 24), "k": r.randint(2, 4), "d": r.randint(3, 29)}
    ask = "How many k-element subsets of {1, 2, ..., n} have a sum divisible by d?"
    code = (f"{assign(v)}\nimport itertools\n"
            "print(sum(1 for c in itertools.combinations(range(1, n + 1), k) if sum(c) % d == 0))")
    combos = itertools.combinations(range(1, v["n"] + 1), v["k"])
    return Problem("subsets", where(ask, v), (code,), sum(1 for c in combos if sum(c) % v["d"] == 0))


def _factor(r: random.Random) -> Problem:
    ps = [r.choice(_PRIMES[:2000]) for _ in range(r.randint(2, 3))] + [r.choice(_PRIMES)]
    v = {"n": math.prod(ps)}
    ask = r.choice(["What is the largest prime factor of n?", "Find the largest prime dividing n."])
    code = f"{assign(v)}\nimport sympy\nprint(max(sympy.factorint(n)))"
    return Problem("factor", where(ask, v), (code,), max(ps))


def _coeff(r: random.Random) -> Problem:
    n = r.randint(5, 30)
    v = {"a": r.randint(1, 9), "b": r.randint(1, 9), "n": n, "k": r.randint(1, n - 1), "m": _modulus(r)}
    ask = "What is the coefficient of x^k in the expansion of (a*x + b)^n, modulo m?"
    code = f'{assign(v)}\nimport sympy\nx = sympy.symbols("x")\nprint(sympy.expand((a*x + b)**n).coeff(x, k) % m)'
    answer = math.comb(n, v["k"]) * v["a"] ** v["k"] * v["b"] ** (n - v["k"]) % v["m"]
    return Problem("coeff", where(ask, v), (code,), answer)


def _solve(r: random.Random) -> Problem:
    r1, r2 = sorted(r.sample(range(1, 9999), 2))
    v = {"s": r1 + r2, "p": r1 * r2}
    ask = r.choice(["Find the largest root of x^2 - s*x + p = 0.",
                    "The equation x^2 - s*x + p = 0 has two integer roots. What is the larger one?"])
    code = f'{assign(v)}\nimport sympy\nx = sympy.symbols("x")\nprint(max(sympy.solve(x**2 - s*x + p, x)))'
    return Problem("solve", where(ask, v), (code,), r2)


_CONSTANTS = {"pi": "mp.pi", "e": "mp.e", "the square root of 2": "mp.sqrt(2)"}


def _digits(r: random.Random) -> Problem:
    import mpmath

    name = r.choice(sorted(_CONSTANTS))
    i = r.randint(1, 95)
    v = {"i": i, "j": i + r.randint(2, 4)}
    ask = f"What is the number formed by the digits of {name} in decimal places i through j?"
    code = (f'{assign(v)}\nfrom mpmath import mp\nmp.dps = 120\nd = str(+{_CONSTANTS[name]}).split(".")[1]\n'
            "print(int(d[i - 1:j]))")
    old = mpmath.mp.dps
    try:
        mpmath.mp.dps = 120
        value = eval(_CONSTANTS[name], {"mp": mpmath.mp})
        d = str(+value).split(".")[1]
    finally:
        mpmath.mp.dps = old
    return Problem("digits", where(ask, v), (code,), int(d[i - 1 : v["j"]]))


def _digitsum(r: random.Random) -> Problem:
    a = r.randint(2, 999)
    # Stay under Python's 4300-digit limit on int -> str conversion.
    v = {"a": a, "b": r.randint(50, int(4000 / math.log10(a)))}
    power = str(a ** v["b"])
    ask = "Let A = a^b. What is the sum of the decimal digits of A?"
    cells = (f"{assign(v)}\nA = a**b\nprint(len(str(A)))", "print(sum(int(c) for c in str(A)))")
    total = sum(map(int, power))
    return Problem("digitsum", where(ask, v), cells, total, ("", "Now sum the digits of A.\n"),
                   outputs=(str(len(power)), str(total)))


def _primesum(r: random.Random) -> Problem:
    v = {"n": r.randint(100, 5000), "m": _modulus(r)}
    ask = "Let S be the sum of the first n prime numbers. Find S modulo m."
    cells = (f"{assign(v)}\nimport sympy\nP = list(sympy.primerange(2, sympy.prime(n) + 1))\nprint(len(P))",
             "print(sum(P) % m)")
    answer = sum(_PRIMES[: v["n"]]) % v["m"]
    return Problem("primesum", where(ask, v), cells, answer, ("", "Now sum them.\n"),
                   outputs=(str(v["n"]), str(answer)))


def _fib(r: random.Random) -> Problem:
    v = {"n": r.randint(100, 5000), "m": _modulus(r)}
    ask = "Let F(0) = 0, F(1) = 1 and F(k) = F(k-1) + F(k-2). Find F(n) modulo m."
    cells = (f"{assign(v)}\nF = [0, 1]\nfor k in range(2, n + 1):\n    F.append(F[-1] + F[-2])\nprint(len(F))",
             "print(F[n] % m)")
    f0, f1 = 0, 1
    for _ in range(v["n"]):
        f0, f1 = f1, f0 + f1
    return Problem("fib", where(ask, v), cells, f0 % v["m"], ("", "Now reduce F(n).\n"),
                   outputs=(str(v["n"] + 1), str(f0 % v["m"])))


# What the sandbox shows for the commas kind's first cell (its 4th line raises), as the solver renders it
# (`inference.tool_output.render_result`; a test runs the cell and compares). Training on a made-up
# traceback instead made the model write garbage after the real one.
COMMAS_TRACEBACK = (
    'Traceback (most recent call last):\n  File "<cell-1>", line 4, in <module>\n    print(a * b % m)\n'
    "           ~~^~~\nTypeError: can't multiply sequence by non-int of type 'tuple'"
)


def _separated(r: random.Random) -> int:
    """4 to 9 digits, no group after the first starting with 0: "9,923,013" would be a SyntaxError (a
    leading zero), not the TypeError the commas kind is about."""
    groups = [r.randint(1, 999)] + [r.randint(100, 999) for _ in range(r.randint(1, 2))]
    return int("".join(map(str, groups)))


def _commas(r: random.Random) -> Problem:
    """Numbers with thousands separators: copied as written they make tuples (a TypeError). The fix
    rebuilds each integer from the tuple the first cell left in the session (stateful), so nothing is
    copied twice: retyping the numbers in the fix was where the model went wrong most often."""
    a, b = _separated(r), _separated(r)
    v = {"a": f"{a:,}", "b": f"{b:,}", "m": _modulus(r)}
    ask = "Find the remainder when a * b is divided by m."
    rebuild = "\n".join(f'{name} = int("".join("%03d" % g for g in {name}))' for name in "ab")
    cells = (f"{assign(v)}\nprint(a * b % m)", f"{rebuild}\nprint(a * b % m)")
    error = COMMAS_TRACEBACK
    # "; " between the names: a comma would read as one more thousands separator.
    return Problem("commas", where(ask, v, sep="; "), cells, a * b % v["m"], ("", COMMAS_FIX + "\n"),
                   outputs=(error, str(a * b % v["m"])))


GENERATORS: dict[str, Callable[[random.Random], Problem]] = {
    "powmod": _powmod,
    "prodmod": _prodmod,
    "rangesum": _rangesum,
    "gcdlcm": _gcdlcm,
    "countdiv": _countdiv,
    "subsets": _subsets,
    "factor": _factor,
    "coeff": _coeff,
    "solve": _solve,
    "digits": _digits,
    "digitsum": _digitsum,
    "primesum": _primesum,
    "fib": _fib,
    "commas": _commas,
}
KINDS = tuple(GENERATORS)


# Kinds whose numbers run to several digit groups: copying those is the hard part, so training draws
# them twice as often (evaluation draws every kind uniformly).
LONG_NUMBERS = frozenset({"commas", "factor", "gcdlcm", "powmod", "prodmod", "solve"})


def generate(seed: int, n: int, weights: dict[str, float] | None = None) -> list[Problem]:
    """`n` problems, deterministic in `seed`, kinds drawn uniformly or by `weights` (kind -> weight)."""
    r = random.Random(seed)
    out = []
    while len(out) < n:
        kind = r.choices(KINDS, [weights[k] for k in KINDS])[0] if weights else r.choice(KINDS)
        p = GENERATORS[kind](r)
        if 0 <= p.answer <= ANSWER_MAX:
            out.append(p)
    return out
