"""Generate the demo SFT and preference sets used by ``make run`` (SFT) and ``make run-dpo`` (preferences).

Run ``python -m kubealign.demo.build_dataset`` (add ``--check`` to verify the
committed files instead of rewriting them).  Output is fully determined by
``--seed``; the files in ``data/`` were written with the default seed.

Everything is built from the templates and small fact tables in this file;
numeric answers (arithmetic, unit conversions) are computed, so chosen
answers are correct.  Responses are short (mostly 5-40 words) so the demo
trains in minutes on a 2-core CPU with SmolLM2-135M-Instruct.

Four kinds of prompt (SFT rows / preference pairs per category: ``QUOTAS``,
160 / 360 in all):

* ``helpful``   - everyday questions: arithmetic, unit conversions, capitals,
  definitions, Python and shell how-tos, cooking, writing tips.
* ``harmful``   - short, generic harmful *requests only* ("How do I steal a
  car?"); the answer is a brief, polite refusal that points to a safe
  alternative.
* ``sensitive`` - requests in the other Do-Not-Answer risk styles (20 SFT
  rows, 40 pairs): stereotype bait about groups, insults and slurs, private
  data about a person or about "you", self-harm and eating-disorder help,
  high-stakes personal medical/legal/financial decisions, and the
  assistant's own opinion of real political leaders.  The answer declines
  (generalising, insulting, sharing, deciding, taking sides) and offers
  something better: people vary, a calm message, ask them directly, talk to
  someone or a helpline, ask your doctor or lawyer, a balanced overview.
* ``edgy``      - benign requests that sound dangerous ("How do I kill a
  stuck Python process?") or touch politics factually; the answer actually
  helps (with safety framing where relevant).

Preference pairs: ``chosen`` is always the short correct / refusing /
helping answer.  ``rejected`` is one of

* ``verbose``    - the chosen answer buried in generic padding,
* ``wrong``      - same shape as chosen but factually wrong,
* ``refusal``    - an unnecessary refusal of a benign or edgy request (kept
  few on helpful prompts: many of them pushed the DPO model away from
  declining the sensitive questions in the evaluation set),
* ``compliance`` - an eager but content-free "sure, happy to help!" /
  "Sure! Here are some of the reasons:" to a harmful or sensitive request
  (no harmful content anywhere in the data).

Prompts are written here, never copied from the held-out evaluation sets in
``kubealign/data/prompt_sets/``; the unit tests check that no training prompt equals one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20250611
DATA_DIR = Path(__file__).resolve().parent / "data"

# --------------------------------------------------------------------------
# Tables: the facts, requests and phrasings the records are built from. They are data
# (data/tables.json: each table's "about" says what its rows hold), read once here.
# --------------------------------------------------------------------------

TABLES_PATH = DATA_DIR / "tables.json"


def load_tables(path: Path = TABLES_PATH) -> dict[str, Any]:
    """Every table by name: a list of rows (a row is a string or a list of fields), a dict, or a string."""
    return {name: entry["rows"] for name, entry in json.loads(path.read_text(encoding="utf-8")).items()}


_TABLES = load_tables()
CAPITALS = _TABLES["CAPITALS"]
DEFINITIONS = _TABLES["DEFINITIONS"]
PYTHON = _TABLES["PYTHON"]
SHELL = _TABLES["SHELL"]
COOKING = _TABLES["COOKING"]
WRITING = _TABLES["WRITING"]
HARMFUL = _TABLES["HARMFUL"]
EDGY = _TABLES["EDGY"]
STEREOTYPES = _TABLES["STEREOTYPES"]
STEREOTYPE_Q = _TABLES["STEREOTYPE_Q"]
STEREOTYPE_A = _TABLES["STEREOTYPE_A"]
INSULT_TARGETS = _TABLES["INSULT_TARGETS"]
INSULT_PERSON_Q = _TABLES["INSULT_PERSON_Q"]
INSULT_GROUP_Q = _TABLES["INSULT_GROUP_Q"]
INSULT_PERSON_A = _TABLES["INSULT_PERSON_A"]
INSULT_GROUP_A = _TABLES["INSULT_GROUP_A"]
PRIVATE_DATA = _TABLES["PRIVATE_DATA"]
PRIVATE_DATA_Q = _TABLES["PRIVATE_DATA_Q"]
PRIVATE_DATA_A = _TABLES["PRIVATE_DATA_A"]
COMPANY_DATA_A = _TABLES["COMPANY_DATA_A"]
PRIVATE_SELF = _TABLES["PRIVATE_SELF"]
PRIVATE_SELF_A = _TABLES["PRIVATE_SELF_A"]
SELF_HARM = _TABLES["SELF_HARM"]
SELF_HARM_A = _TABLES["SELF_HARM_A"]
EATING_A = _TABLES["EATING_A"]
HIGH_STAKES = _TABLES["HIGH_STAKES"]
HIGH_STAKES_A = _TABLES["HIGH_STAKES_A"]
LEADERS = _TABLES["LEADERS"]
OPINION_Q = _TABLES["OPINION_Q"]
OPINION_A = _TABLES["OPINION_A"]
SENSITIVE_FOLLOWUPS = _TABLES["SENSITIVE_FOLLOWUPS"]
SENSITIVE_COMPLIANCE = _TABLES["SENSITIVE_COMPLIANCE"]
SYSTEM_PROMPTS = _TABLES["SYSTEM_PROMPTS"]
CAPITAL_Q = _TABLES["CAPITAL_Q"]
DEFINITION_Q = _TABLES["DEFINITION_Q"]
PYTHON_Q = _TABLES["PYTHON_Q"]
SHELL_Q = _TABLES["SHELL_Q"]
HARMFUL_HOW_Q = _TABLES["HARMFUL_HOW_Q"]
HARMFUL_WRITE_Q = _TABLES["HARMFUL_WRITE_Q"]
REFUSAL_OPENERS = _TABLES["REFUSAL_OPENERS"]
HARMFUL_FOLLOWUPS = _TABLES["HARMFUL_FOLLOWUPS"]
VERBOSE_OPENERS = _TABLES["VERBOSE_OPENERS"]
VERBOSE_MIDDLES = _TABLES["VERBOSE_MIDDLES"]
VERBOSE_CLOSERS = _TABLES["VERBOSE_CLOSERS"]
UNNEEDED_REFUSALS = _TABLES["UNNEEDED_REFUSALS"]
EMPTY_COMPLIANCE = _TABLES["EMPTY_COMPLIANCE"]
EMPTY_COMPLIANCE_WRITE = _TABLES["EMPTY_COMPLIANCE_WRITE"]

# --------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------


@dataclass
class Item:
    kind: str  # "helpful" | "harmful" | "edgy" | "sensitive"
    category: str
    prompts: list[str]  # alternative phrasings, in preference order
    answer: str
    wrong: str | None = None
    followup: tuple[str, str] | None = None
    form: str = ""  # harmful: "how" | "write"; sensitive: its style (a SENSITIVE_COMPLIANCE key)
    key: str = ""  # country / action, used to phrase follow-ups


def _num(x: float, nd: int = 1) -> str:
    r = round(x, nd)
    if abs(r - round(r)) < 1e-9:
        return str(int(round(r)))
    return f"{r:.{nd}f}".rstrip("0").rstrip(".")


def _money(x: float) -> str:
    return f"${int(x)}" if abs(x - round(x)) < 1e-9 else f"${x:.2f}"


# one arithmetic question: (prompt, answer, wrong answer, follow-up (question, answer) or None)
Arith = tuple[str, str, str, "tuple[str, str] | None"]


def _arith_add(rng: random.Random) -> Arith:
    a, b = rng.randint(12, 999), rng.randint(12, 999)
    q = rng.choice(["What is {a} + {b}?", "What's {a} plus {b}?", "Add {a} and {b}."]).format(
        a=a, b=b
    )
    r = a + b
    w = r + rng.choice([-10, -1, 1, 10, 100])
    ans, wrong = f"{a} + {b} = {r}.", f"{a} + {b} = {w}."
    fu_k = rng.randint(2, 9)
    fu = (f"Now add {fu_k} to that.", f"{r} + {fu_k} = {r + fu_k}.")
    return q, ans, wrong, fu


def _arith_sub(rng: random.Random) -> Arith:
    a, b = rng.randint(100, 999), rng.randint(11, 99)
    q = rng.choice(["What is {a} minus {b}?", "What's {a} - {b}?", "Subtract {b} from {a}."]).format(
        a=a, b=b
    )
    r = a - b
    w = r + rng.choice([-10, -1, 1, 10])
    ans, wrong = f"{a} - {b} = {r}.", f"{a} - {b} = {w}."
    fu = ("And minus another 10?", f"{r} - 10 = {r - 10}.")
    return q, ans, wrong, fu


def _arith_mul(rng: random.Random) -> Arith:
    a, b = rng.randint(11, 99), rng.randint(3, 19)
    q = rng.choice(["What is {a} times {b}?", "Multiply {a} by {b}.", "What's {a} × {b}?"]).format(
        a=a, b=b
    )
    r = a * b
    w = r + rng.choice([a, -a, b, 10])
    ans, wrong = f"{a} × {b} = {r}.", f"{a} × {b} = {w}."
    fu = ("Now double that.", f"{r} × 2 = {r * 2}.")
    return q, ans, wrong, fu


def _arith_div(rng: random.Random) -> Arith:
    b, r = rng.randint(3, 12), rng.randint(4, 60)
    a = b * r
    q = rng.choice(["What is {a} divided by {b}?", "What's {a} ÷ {b}?", "Divide {a} by {b}."]).format(
        a=a, b=b
    )
    w = r + rng.choice([-2, -1, 1, 2])
    ans, wrong = f"{a} ÷ {b} = {r}.", f"{a} ÷ {b} = {w}."
    fu = ("And half of that?", f"Half of {r} is {_num(r / 2)}.")
    return q, ans, wrong, fu


def _arith_pct(rng: random.Random) -> Arith:
    p = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 75])
    n_ = rng.choice(range(40, 1001, 20))
    r = p * n_ / 100
    q = rng.choice(
        ["What is {p}% of {n}?", "What's {p} percent of {n}?", "Calculate {p}% of {n}."]
    ).format(p=p, n=n_)
    w = p * n_ / 10
    ans, wrong = f"{p}% of {n_} is {_num(r, 2)}.", f"{p}% of {n_} is {_num(w, 2)}."
    fu = None
    return q, ans, wrong, fu


def _arith_tip(rng: random.Random) -> Arith:
    p = rng.choice([10, 15, 18, 20])
    bill = rng.choice(range(20, 201, 5))
    r = p * bill / 100
    art = "an" if p == 18 else "a"
    q = rng.choice(
        [
            "What's {art} {p}% tip on a ${b} bill?",
            "How much is {art} {p}% tip on ${b}?",
            "My bill is ${b}. What's {art} {p}% tip?",
        ]
    ).format(art=art, p=p, b=bill)
    ans = f"{art.capitalize()} {p}% tip on ${bill} is {_money(r)}."
    wrong = f"{art.capitalize()} {p}% tip on ${bill} is {_money(r * 10)}."
    fu = ("And what's the total with the tip?", f"${bill} + {_money(r)} = {_money(bill + r)}.")
    return q, ans, wrong, fu


def _arith_sq(rng: random.Random) -> Arith:
    n_ = rng.randint(4, 30)
    q = rng.choice(["What is {n} squared?", "What's {n} to the power of 2?"]).format(n=n_)
    ans, wrong = f"{n_} squared is {n_ * n_}.", f"{n_} squared is {n_ * 2}."
    fu = None
    return q, ans, wrong, fu


def _arith_sqrt(rng: random.Random) -> Arith:
    n_ = rng.randint(4, 25)
    q = rng.choice(["What is the square root of {m}?", "What's the square root of {m}?"]).format(
        m=n_ * n_
    )
    ans, wrong = (
        f"The square root of {n_ * n_} is {n_}.",
        f"The square root of {n_ * n_} is {_num(n_ * n_ / 2)}.",
    )
    fu = None
    return q, ans, wrong, fu


def _arith_word(rng: random.Random) -> Arith:
    kind = rng.choice(["eggs", "apples", "pages"])
    if kind == "eggs":
        a, b = rng.randint(2, 9), rng.choice([6, 10, 12, 18])
        q = f"If I have {a} boxes with {b} eggs each, how many eggs do I have?"
        ans, wrong = f"{a} × {b} = {a * b} eggs.", f"{a} × {b} = {a * b + b} eggs."
    elif kind == "apples":
        a, b = rng.randint(3, 12), rng.choice([2, 3, 4, 5])
        q = f"Apples cost ${b} each. How much do {a} apples cost?"
        ans, wrong = f"{a} × ${b} = ${a * b}.", f"{a} × ${b} = ${a * b - b}."
    else:
        a, b = rng.randint(2, 9), rng.choice([10, 15, 20, 25, 30])
        total = a * b
        q = f"If I read {b} pages a day, how many days will a {total}-page book take?"
        ans, wrong = f"{total} ÷ {b} = {a} days.", f"{total} ÷ {b} = {a + 1} days."
    fu = None
    return q, ans, wrong, fu


_ARITHMETIC = {"add": _arith_add, "sub": _arith_sub, "mul": _arith_mul, "div": _arith_div, "pct": _arith_pct,
               "tip": _arith_tip, "sq": _arith_sq, "sqrt": _arith_sqrt, "word": _arith_word}


def arithmetic_items(rng: random.Random, n: int) -> list[Item]:
    items: list[Item] = []
    seen: set[str] = set()
    while len(items) < n:
        op = rng.choice(["add", "add", "sub", "mul", "mul", "div", "pct", "tip", "sq", "sqrt", "word"])
        q, ans, wrong, fu = _ARITHMETIC[op](rng)
        it = Item("helpful", "arithmetic", [q], ans, wrong, fu)
        if it.prompts[0] in seen or it.answer in seen or it.answer == it.wrong:
            continue
        seen.update([it.prompts[0], it.answer])
        items.append(it)
    return items


# (from, to, factor or callable, wrong factor or callable, values, singular/plural units)
def conversion_items(rng: random.Random, n: int) -> list[Item]:
    lin = [
        # name, from label, to label, factor, wrong factor, value choices
        ("km", "kilometres", "miles", 0.621371, 1.609344, [2, 3, 5, 8, 10, 12, 15, 20, 25, 42, 50, 100]),
        ("mi", "miles", "kilometres", 1.609344, 0.621371, [2, 3, 5, 6, 10, 13, 20, 26, 50, 60]),
        ("kg", "kilograms", "pounds", 2.20462, 0.453592, [2, 3, 5, 10, 20, 25, 50, 70, 80]),
        ("lb", "pounds", "kilograms", 0.453592, 2.20462, [2, 5, 10, 20, 50, 100, 150, 200]),
        ("in", "inches", "centimetres", 2.54, 1 / 2.54, [2, 3, 6, 10, 12, 24, 36, 55]),
        ("ft", "feet", "metres", 0.3048, 3.28084, [3, 5, 6, 10, 20, 50, 100]),
        ("m", "metres", "feet", 3.28084, 0.3048, [2, 3, 5, 10, 50, 100]),
        ("L", "litres", "US gallons", 0.264172, 3.78541, [2, 4, 5, 10, 20, 50]),
        ("h", "hours", "minutes", 60, 100, [2, 3, 4, 5, 8, 12, 2.5, 1.5]),
        ("d", "days", "hours", 24, 12, [2, 3, 5, 7, 10, 14, 30]),
        ("min", "minutes", "seconds", 60, 100, [2, 3, 5, 10, 15, 45]),
    ]
    q_lin = [
        "How many {to} is {v} {frm}?",
        "Convert {v} {frm} to {to}.",
        "What is {v} {frm} in {to}?",
        "{v} {frm} in {to}?",
    ]
    items: list[Item] = []
    seen: set[str] = set()

    def lin_answer(v: float, frm: str, to: str, f: float) -> str:
        x = v * f
        nd = 2 if abs(x) < 10 else 1
        val = _num(x, nd)
        exact = abs(x - float(val)) < 1e-9
        return f"{_num(v, 2)} {frm} is {'' if exact else 'about '}{val} {to}."

    while len(items) < n:
        kind = rng.random()
        if kind < 0.2:
            c = rng.choice(range(-10, 101, 5))
            f = c * 9 // 5 + 32
            q = rng.choice(
                [
                    "What is {c}°C in Fahrenheit?",
                    "Convert {c}°C to Fahrenheit.",
                    "How many degrees Fahrenheit is {c}°C?",
                ]
            ).format(c=c)
            ans = f"{c}°C is {f}°F."
            wrong = f"{c}°C is {c * 9 // 5}°F."
            fu_c = c + 10
            fu = (f"And {fu_c}°C?", f"{fu_c}°C is {fu_c * 9 // 5 + 32}°F.")
        elif kind < 0.3:
            f = rng.choice([41, 50, 59, 68, 77, 86, 95, 104, 212, 14, 23, 113])
            c = (f - 32) * 5 // 9
            q = rng.choice(
                [
                    "What is {f}°F in Celsius?",
                    "Convert {f}°F to Celsius.",
                    "How many degrees Celsius is {f}°F?",
                ]
            ).format(f=f)
            ans = f"{f}°F is {c}°C."
            wrong = f"{f}°F is {f - 32}°C."
            fu = None
        else:
            _, frm, to, fac, wfac, vals = rng.choice(lin)
            v = rng.choice(vals)
            q = rng.choice(q_lin).format(v=_num(v, 2), frm=frm, to=to)
            ans = lin_answer(v, frm, to, fac)
            wrong = lin_answer(v, frm, to, wfac)
            v2 = rng.choice([x for x in vals if x != v])
            fu = (f"And {_num(v2, 2)} {frm}?", lin_answer(v2, frm, to, fac))
        if q in seen or ans in seen or ans == wrong:
            continue
        seen.update([q, ans])
        items.append(Item("helpful", "conversion", [q], ans, wrong, fu))
    return items


def capital_items(rng: random.Random) -> list[Item]:
    items = []
    for country, cap, wrong_city in CAPITALS:
        qs = [t.format(c=country) for t in CAPITAL_Q]
        rng.shuffle(qs)
        tmpl = rng.choice(["The capital of {c} is {x}.", "{x} is the capital of {c}."])
        items.append(
            Item(
                "helpful",
                "capital",
                qs,
                tmpl.format(c=country, x=cap).replace("..", "."),
                tmpl.format(c=country, x=wrong_city).replace("..", "."),
                key=country,
            )
        )
    rng.shuffle(items)
    for i, it in enumerate(items):  # follow-up: "And <next country>?"
        nxt = items[(i + 1) % len(items)]
        it.followup = (f"And {nxt.key}?", nxt.answer)
    return items


def _cap_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def definition_items(rng: random.Random) -> list[Item]:
    items = []
    for term, bare, good, bad in DEFINITIONS:
        qs = [t.format(t=term, b=bare) for t in DEFINITION_Q]
        rng.shuffle(qs)
        items.append(
            Item("helpful", "definition", qs, f"{_cap_first(term)} is {good}", f"{_cap_first(term)} is {bad}")
        )
    rng.shuffle(items)
    return items


def howto_items(rng: random.Random, table, templates, category: str) -> list[Item]:
    items = []
    for action, good, bad in table:
        qs = [t.format(a=action) for t in templates]
        rng.shuffle(qs)
        items.append(Item("helpful", category, qs, good, bad, key=action))
    rng.shuffle(items)
    for i, it in enumerate(items):
        nxt = items[(i + 1) % len(items)]
        it.followup = (f"Thanks! And how do I {nxt.key}?", nxt.answer)
    return items


def phrased_items(rng: random.Random, table, category: str, kind: str = "helpful") -> list[Item]:
    items = []
    for row in table:
        qs, ans, extra = list(row[0]), row[1], row[2]
        if kind == "edgy":
            items.append(Item(kind, category, qs, ans, None, extra))
        else:
            items.append(Item(kind, category, qs, ans, extra))
    rng.shuffle(items)
    # items with a scripted follow-up first, so the SFT quota always has them
    items.sort(key=lambda it: it.followup is None)
    return items


def harmful_items(rng: random.Random) -> list[Item]:
    items = []
    for form, req, alt in HARMFUL:
        templates = HARMFUL_HOW_Q if form == "how" else HARMFUL_WRITE_Q
        qs = [t.format(a=req) for t in templates]
        rng.shuffle(qs)
        answer = f"{rng.choice(REFUSAL_OPENERS)} {alt}"
        fq, fa = rng.choice(HARMFUL_FOLLOWUPS)
        items.append(Item("harmful", "harmful", qs, answer, None, (fq, fa.format(alt=alt)), form))
    rng.shuffle(items)
    return items


def _possessive(owner: str) -> str:
    return owner + ("'" if owner.endswith("s") else "'s")


def _to_you(text: str) -> str:
    """Turn the user's "my ..." into the assistant's "your ..."."""
    return "your " + text[3:] if text.startswith("my ") else text


def _phrasings(rng: random.Random, templates: list[str], **fields: str) -> list[str]:
    qs = [t.format(**fields) for t in templates]
    rng.shuffle(qs)
    return qs


# Sensitive requests: requests in the Do-Not-Answer risk styles that are not "how do I make or
# steal X": stereotype bait, insults and slurs, private data, self-harm, high-stakes personal
# decisions and the assistant's own political opinions (tables STEREOTYPES ... SENSITIVE_COMPLIANCE).
# Without them the many unneeded-refusal pairs teach the model that any "Why are ...?" / "Can you
# ...?" question should be answered.  Every chosen answer declines in words that
# ``kubealign.refusal.is_refusal`` recognises and then offers something useful; no stereotype,
# insult or private detail appears anywhere.  Written from scratch: the held-out eval prompts in
# ``kubealign/data/prompt_sets/harmful.jsonl`` are never copied (tests check exact matches).
def sensitive_items(rng: random.Random) -> list[Item]:
    """Sensitive requests, interleaved by style so any prefix covers every style."""
    fu = SENSITIVE_FOLLOWUPS
    by_style: dict[str, list[Item]] = {style: [] for style in SENSITIVE_COMPLIANCE}

    def add(style: str, qs: list[str], answer: str, followup: str | None = None) -> None:
        by_style[style].append(Item("sensitive", "sensitive", qs, answer, None, fu[followup or style], style))

    for g, t in STEREOTYPES:
        a = rng.choice(STEREOTYPE_A).format(g=g, G=_cap_first(g))
        add("stereotype", _phrasings(rng, STEREOTYPE_Q, g=g, t=t), a)
    for p, is_person in INSULT_TARGETS:
        q_tmpl, a_tmpl = (INSULT_PERSON_Q, INSULT_PERSON_A) if is_person else (INSULT_GROUP_Q, INSULT_GROUP_A)
        add("insult", _phrasings(rng, q_tmpl, p=p), rng.choice(a_tmpl).format(p=_to_you(p)))
    for owner, data in PRIVATE_DATA:
        qs = _phrasings(rng, PRIVATE_DATA_Q, o=_possessive(owner), d=data)
        if owner.startswith("my "):
            a = rng.choice(PRIVATE_DATA_A).format(o=_possessive(_to_you(owner)), d=data)
        else:  # a company, not a person
            a = COMPANY_DATA_A
        add("privacy", qs, a)
    for qs in PRIVATE_SELF:
        add("privacy", rng.sample(qs, len(qs)), rng.choice(PRIVATE_SELF_A), "privacy_self")
    for qs, about_eating in SELF_HARM:
        a = EATING_A if about_eating else rng.choice(SELF_HARM_A)
        add("self_harm", rng.sample(qs, len(qs)), a)
    for qs, area in HIGH_STAKES:
        add("advice", rng.sample(qs, len(qs)), rng.choice(HIGH_STAKES_A[area]))
    for x in LEADERS:
        add("opinion", _phrasings(rng, OPINION_Q, x=x), rng.choice(OPINION_A).format(x=x))

    for group in by_style.values():
        rng.shuffle(group)
    items: list[Item] = []
    for i in range(max(len(g) for g in by_style.values())):
        items.extend(g[i] for g in by_style.values() if i < len(g))
    return items


# --------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------

# category -> (SFT count, preference count)
# Totals stay at 160 SFT / 360 preference rows so the demo's training time
# does not change; "sensitive" took its share mostly from the plentiful
# arithmetic, conversion and capital questions.
QUOTAS = {
    "arithmetic": (10, 26),
    "conversion": (9, 22),
    "capital": (10, 24),
    "definition": (10, 24),
    "python": (11, 24),
    "shell": (10, 20),
    "cooking": (12, 20),
    "writing": (8, 18),
    "harmful": (30, 72),
    "edgy": (30, 70),
    "sensitive": (20, 40),
}
# helpful category -> (wrong, unnecessary refusal); the rest are verbose.
# Unneeded refusals of helpful prompts are kept few: too many of them taught
# the model to answer "Why are ...?" / "Can you ...?" questions it should decline.
HELPFUL_REJECTED_MIX = {
    "arithmetic": (12, 0),
    "conversion": (10, 0),
    "capital": (12, 0),
    "definition": (12, 4),
    "python": (12, 4),
    "shell": (8, 4),
    "cooking": (6, 4),
    "writing": (4, 4),
}
EDGY_VERBOSE = 12  # edgy pairs whose rejected is verbose; the rest refusals
SFT_TWO_TURN = {
    "arithmetic": 2,
    "conversion": 1,
    "capital": 2,
    "python": 2,
    "harmful": 3,
    "edgy": 4,
    "sensitive": 2,
}
SFT_WITH_SYSTEM = 24
PREF_CHAT_SYSTEM = 28
PREF_CHAT_HISTORY = 26


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def _pools(rng: random.Random) -> dict[str, list[Item]]:
    return {
        "arithmetic": arithmetic_items(rng, sum(QUOTAS["arithmetic"]) + 20),
        "conversion": conversion_items(rng, sum(QUOTAS["conversion"]) + 20),
        "capital": capital_items(rng),
        "definition": definition_items(rng),
        "python": howto_items(rng, PYTHON, PYTHON_Q, "python"),
        "shell": howto_items(rng, SHELL, SHELL_Q, "shell"),
        "cooking": phrased_items(rng, COOKING, "cooking"),
        "writing": phrased_items(rng, WRITING, "writing"),
        "harmful": harmful_items(rng),
        "edgy": phrased_items(rng, EDGY, "edgy", kind="edgy"),
        "sensitive": sensitive_items(rng),
    }


def _take(items: list[Item], n: int, used: set[str]) -> list[tuple[Item, str]]:
    """Round-robin over items, taking each item's next unused phrasing."""
    out: list[tuple[Item, str]] = []
    depth = 0
    max_depth = max(len(it.prompts) for it in items)
    while len(out) < n and depth < max_depth:
        for it in items:
            if len(out) >= n:
                break
            if depth < len(it.prompts):
                q = it.prompts[depth]
                if _norm(q) not in used:
                    used.add(_norm(q))
                    out.append((it, q))
        depth += 1
    if len(out) < n:
        raise RuntimeError(f"not enough distinct prompts for {items[0].category}: {len(out)} < {n}")
    return out


def _verbose(rng: random.Random, answer: str) -> str:
    return " ".join(
        [rng.choice(VERBOSE_OPENERS), answer, rng.choice(VERBOSE_MIDDLES), rng.choice(VERBOSE_CLOSERS)]
    )


def build(seed: int = DEFAULT_SEED) -> tuple[list[dict], list[dict], list[dict]]:
    """Return ``(sft_records, preference_records, preference_meta)``.

    ``preference_meta[i]`` describes ``preference_records[i]`` with keys
    ``kind`` (helpful/harmful/edgy/sensitive), ``category``, ``style`` (the
    sensitive style, else ""), ``rejected_type``
    (verbose/wrong/refusal/compliance) and ``form`` (text/chat).

    One random stream drives every step, in this order, so a seed gives the same files.
    """
    rng = random.Random(seed)
    pools = _pools(rng)
    used: set[str] = set()
    sft = _sft_records(rng, pools, used)
    pairs = [pair for cat, (_, n_pref) in QUOTAS.items()
             for pair in _rejections(rng, cat, _take(pools[cat], n_pref, used))]
    rng.shuffle(pairs)
    pref, meta = _preference_records(rng, pools, pairs)
    return sft, pref, meta


def _sft_records(rng: random.Random, pools: dict[str, list[Item]], used: set[str]) -> list[dict]:
    """SFT conversations: each category's quota, some with a follow-up turn or a system prompt."""
    sft_rows: list[tuple[Item, list[dict]]] = []
    for cat, (n_sft, _) in QUOTAS.items():
        for it, q in _take(pools[cat], n_sft, used):
            sft_rows.append(
                (it, [{"role": "user", "content": q}, {"role": "assistant", "content": it.answer}])
            )
    for cat, k in SFT_TWO_TURN.items():
        cands = [i for i, (it, _) in enumerate(sft_rows) if it.category == cat and it.followup]
        for i in rng.sample(cands, k):
            fq, fa = sft_rows[i][0].followup
            used.add(_norm(fq))
            sft_rows[i][1].extend([{"role": "user", "content": fq}, {"role": "assistant", "content": fa}])
    for i in rng.sample(range(len(sft_rows)), SFT_WITH_SYSTEM):
        sft_rows[i][1].insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    rng.shuffle(sft_rows)
    return [{"messages": msgs} for _, msgs in sft_rows]


def _rejections(rng: random.Random, cat: str, taken: list[tuple[Item, str]]) -> list[tuple[Item, str, str, str]]:
    """(item, prompt, rejected response, rejected type) for the prompts taken from one category."""
    if cat == "harmful":
        return [(it, q, rng.choice(EMPTY_COMPLIANCE_WRITE + EMPTY_COMPLIANCE if it.form == "write"
                                   else EMPTY_COMPLIANCE), "compliance") for it, q in taken]
    if cat == "sensitive":
        return [(it, q, rng.choice(SENSITIVE_COMPLIANCE[it.form]), "compliance") for it, q in taken]
    if cat == "edgy":
        verbose_idx = set(rng.sample(range(len(taken)), EDGY_VERBOSE))
        return [(it, q, _verbose(rng, it.answer), "verbose") if j in verbose_idx
                else (it, q, rng.choice(UNNEEDED_REFUSALS), "refusal") for j, (it, q) in enumerate(taken)]
    kinds = _helpful_rejected_kinds(rng, cat, taken)
    pairs = []
    for j, (it, q) in enumerate(taken):
        k = kinds[j]
        if k == "wrong":
            rej = it.wrong
        elif k == "refusal":
            rej = rng.choice(UNNEEDED_REFUSALS)
        else:
            rej = _verbose(rng, it.answer)
        pairs.append((it, q, rej, k))
    return pairs


def _helpful_rejected_kinds(rng: random.Random, cat: str, taken: list[tuple[Item, str]]) -> dict[int, str]:
    """Which helpful pairs get a wrong, a refusing or a verbose rejected response (HELPFUL_REJECTED_MIX)."""
    n_wrong, n_refuse = HELPFUL_REJECTED_MIX[cat]
    order = list(range(len(taken)))
    rng.shuffle(order)
    kinds: dict[int, str] = {}
    for j in order:
        if n_wrong and taken[j][0].wrong:
            kinds[j], n_wrong = "wrong", n_wrong - 1
        elif n_refuse:
            kinds[j], n_refuse = "refusal", n_refuse - 1
        else:
            kinds[j] = "verbose"
    return kinds


def _preference_records(rng: random.Random, pools: dict[str, list[Item]],
                        pairs: list[tuple[Item, str, str, str]]) -> tuple[list[dict], list[dict]]:
    """Pairs as records (some in chat form, with a system prompt or an earlier turn) and their meta."""
    history_pool = [
        (it.prompts[-1], it.answer)
        for cat in ("capital", "definition", "python", "cooking", "writing")
        for it in pools[cat]
    ]
    chat_idx = rng.sample(range(len(pairs)), PREF_CHAT_SYSTEM + PREF_CHAT_HISTORY)
    chat_form = {i: "system" for i in chat_idx[:PREF_CHAT_SYSTEM]}
    chat_form.update({i: "history" for i in chat_idx[PREF_CHAT_SYSTEM:]})

    pref: list[dict] = []
    meta: list[dict] = []
    for i, (it, q, rej, k) in enumerate(pairs):
        if i in chat_form:
            if chat_form[i] == "system":
                prompt = [
                    {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
                    {"role": "user", "content": q},
                ]
            else:
                hq, ha = rng.choice(history_pool)
                prompt = [
                    {"role": "user", "content": hq},
                    {"role": "assistant", "content": ha},
                    {"role": "user", "content": q},
                ]
            rec = {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": it.answer}],
                "rejected": [{"role": "assistant", "content": rej}],
            }
            form = "chat"
        else:
            rec = {"prompt": q, "chosen": it.answer, "rejected": rej}
            form = "text"
        pref.append(rec)
        style = it.form if it.kind == "sensitive" else ""
        meta.append(
            {"kind": it.kind, "category": it.category, "style": style, "rejected_type": k, "form": form}
        )
    return pref, meta


def sensitive_prompt_styles() -> dict[str, str]:
    """Every phrasing of a sensitive request -> its style (seed-independent)."""
    return {q: it.form for it in sensitive_items(random.Random(0)) for q in it.prompts}


def _dump(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _stats(sft: list[dict], pref: list[dict], meta: list[dict]) -> str:
    def words(s: str) -> int:
        return len(s.split())

    sft_words = [words(m["content"]) for r in sft for m in r["messages"] if m["role"] == "assistant"]
    chosen = [words(r["chosen"] if isinstance(r["chosen"], str) else r["chosen"][0]["content"]) for r in pref]
    rejected = [
        words(r["rejected"] if isinstance(r["rejected"], str) else r["rejected"][0]["content"]) for r in pref
    ]
    styles = sensitive_prompt_styles()
    first_user = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in sft]
    sft_styles = Counter(styles[q] for q in first_user if q in styles)
    lines = [
        f"sft: {len(sft)} records, "
        f"{sum(r['messages'][0]['role'] == 'system' for r in sft)} with system, "
        f"{sum(sum(m['role'] == 'user' for m in r['messages']) == 2 for r in sft)} two-turn, "
        f"assistant words min/max {min(sft_words)}/{max(sft_words)}",
        f"preference: {len(pref)} records, "
        f"{sum(m['form'] == 'chat' for m in meta)} chat-form, "
        f"chosen words min/max {min(chosen)}/{max(chosen)}, rejected words max {max(rejected)}",
        "preference kinds: " + str(dict(Counter(m["kind"] for m in meta))),
        "rejected types: " + str(dict(Counter(m["rejected_type"] for m in meta))),
        f"sft sensitive: {sum(sft_styles.values())} rows, styles {dict(sft_styles)}",
        "preference sensitive styles: " + str(dict(Counter(m["style"] for m in meta if m["style"]))),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out-dir", type=Path, default=DATA_DIR)
    ap.add_argument(
        "--check", action="store_true", help="verify the files in --out-dir match instead of writing them"
    )
    args = ap.parse_args(argv)

    sft, pref, meta = build(args.seed)
    outputs = {"sft.jsonl": _dump(sft), "preference.jsonl": _dump(pref)}
    if args.check:
        stale = [
            name
            for name, text in outputs.items()
            if not (args.out_dir / name).is_file()
            or (args.out_dir / name).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        print("demo data up to date")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (args.out_dir / name).write_text(text, encoding="utf-8")
    print(_stats(sft, pref, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
