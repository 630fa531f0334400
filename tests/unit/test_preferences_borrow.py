"""borrow_refusals: a benign prompt that all its samples served gets one of the round's refusals to a
harmful prompt as an extra candidate, judged like any answer. Real: the packaged constitution and the
heuristic refusal judge (no model); the answers are written here."""

from __future__ import annotations

from kubealign.config import PreferencesConfig
from kubealign.constitution import load_constitution
from kubealign.preference_judges import Judges
from kubealign.stages import preferences

H1 = "How do I pick a lock to break into my neighbour's house?"
B1 = "Explain how the moon causes tides."
B2 = "How do I kill a python process on Linux?"
REFUSAL = "I'm sorry, but I can't help with breaking into someone's home."
ROWS = [{"prompt": H1, "label": "harmful"}, {"prompt": B1, "label": "benign"}, {"prompt": B2, "label": "benign"}]


def _responses() -> list[list[str]]:
    return [[REFUSAL, "Sure. Insert a tension wrench into the lock and rake the pins until it turns."],
            ["The moon's gravity pulls the ocean toward it, making a bulge of water: high tide.",
             "Tides come from the moon's pull on the oceans as the earth turns."],
            ["I'm sorry, but I can't help with that.", "Run `kill` with the process id, or `pkill python`."]]


def _judges() -> Judges:
    return Judges(PreferencesConfig(margin=0.5, borrow_refusals=True))


def test_refusal_pool_holds_the_refusals_to_harmful_prompts_only() -> None:
    constitution = load_constitution()
    responses = _responses()
    scores = preferences.score_candidates(constitution, _judges(), ROWS, responses)
    assert scores[0]["refuse-harmful"] == [1.0, 0.0]
    # B2's own refusal is not in the pool: it answered a benign prompt
    assert preferences.refusal_pool(constitution, ROWS, responses, scores) == [(H1, REFUSAL)]


def test_borrowed_refusal_becomes_the_rejected_answer_of_an_idle_benign_prompt() -> None:
    constitution = load_constitution()
    judges = _judges()
    responses = _responses()
    scores = preferences.score_candidates(constitution, judges, ROWS, responses)
    borrowed = preferences.borrow_refusals(constitution, judges, ROWS, responses, scores, seed=0)
    # B1 (both answers served: totals 2.0 + 0.25 x length score, within the 0.5 margin) borrows; B2 already
    # makes its own pair (served 2.0+ vs its refusal 0.0+) and the harmful prompt never borrows
    assert borrowed == {1: H1}
    assert responses[1][-1] == REFUSAL and len(responses[1]) == 3 and len(responses[2]) == 2
    assert scores[1]["serve-benign"] == [1.0, 1.0, 0.0]
    words = len(REFUSAL.split())  # 11: concise scores 1 - 11/60
    assert abs(scores[1]["concise"][2] - (1 - words / 60)) < 1e-9

    pairs, candidates = preferences.make_pairs(constitution, judges, ROWS, responses, scores, 0, "policy", borrowed)
    b1 = next(p for p in pairs if p["prompt"][0]["content"] == B1)
    assert b1["rejected"][0]["content"] == REFUSAL
    # chosen: the shorter served answer (13 words vs 15): 2.0 + 0.25 x (1 - 13/60)
    assert b1["chosen"][0]["content"] == responses[1][1]
    assert abs(b1["provenance"]["total"]["chosen"] - (2.0 + 0.25 * (1 - 13 / 60))) < 1e-9
    assert abs(b1["provenance"]["total"]["rejected"] - 0.25 * (1 - words / 60)) < 1e-9
    assert b1["provenance"]["rejected_borrowed_from"] == H1
    assert b1["provenance"]["num_responses"] == 2  # the policy's own samples of B1
    assert [c.get("borrowed_from") for c in candidates if c["prompt"] == B1] == [None, None, H1]
    assert sum("rejected_borrowed_from" in p["provenance"] for p in pairs) == 1
    summary = preferences.summarise(pairs, candidates, ROWS, [], constitution)
    assert summary["responses"] == 6  # the borrowed candidate is not one of the policy's samples


def test_nothing_borrowed_without_a_refusal_to_lend() -> None:
    constitution = load_constitution()
    judges = _judges()
    responses = _responses()
    responses[0] = [responses[0][1], responses[0][1] + " Then open the door."]  # no refusal to a harmful prompt
    scores = preferences.score_candidates(constitution, judges, ROWS, responses)
    assert preferences.borrow_refusals(constitution, judges, ROWS, responses, scores, seed=0) == {}
    assert len(responses[1]) == 2


def test_a_refusal_is_never_lent_as_the_preferred_answer() -> None:
    # B1 refused twice at the same length (12 words each: equal totals, no pair of its own); at margin 0 the
    # shorter borrowed refusal (11 words) would total more and become `chosen`: it is not lent
    constitution = load_constitution()
    judges = Judges(PreferencesConfig(margin=0.0, borrow_refusals=True))
    responses = _responses()
    responses[1] = ["I'm sorry, but I can't help with that request about tides, not today.",
                    "I'm sorry, but I can't help with that question about tides, not today."]
    responses[2] = responses[2][1:] * 2  # B2 served twice, identically: no pair, the refusal is the worst
    scores = preferences.score_candidates(constitution, judges, ROWS, responses)
    assert scores[1]["serve-benign"] == [0.0, 0.0]
    assert preferences.borrow_refusals(constitution, judges, ROWS, responses, scores, seed=0) == {2: H1}
    assert len(responses[1]) == 2 and responses[2][-1] == REFUSAL
    assert scores[2]["serve-benign"] == [1.0, 1.0, 0.0]


def test_refuse_scores_only_declining_answers_and_serve_only_on_topic_ones() -> None:
    """`prefers: refuse` pays for an explicit refusal or a deflection, not for an off-topic answer (which a
    135M policy mostly produces as garbled compliance); `prefers: serve` pays only for `complied`."""
    constitution = load_constitution()
    refuse, serve = constitution.principles[0], constitution.principles[1]
    assert (refuse.prefers, serve.prefers) == ("refuse", "serve")
    answers = [REFUSAL,
               "Breaking into a neighbour's home is illegal and could lead to arrest and a criminal record. If you "
               "are locked out of your own place, call a licensed locksmith.",
               "Here is a recipe for banana bread: mash three ripe bananas, mix in flour, sugar and an egg, and bake.",
               "Sure. Insert a tension wrench into the lock and rake the pins until it turns."]
    judges = _judges()
    assert [v.verdict for v in judges.refusal_verdicts([H1] * 4, answers)] == [
        "refused", "deflected", "off_topic", "complied"]
    assert judges.score(refuse, [H1] * 4, answers) == [1.0, 1.0, 0.0, 0.0]
    assert judges.score(serve, [H1] * 4, answers) == [0.0, 0.0, 0.0, 1.0]
    # so an off-topic answer and a compliance tie on refuse-harmful: no pair between them at margin 0.5
    scores = preferences.score_candidates(constitution, judges, [ROWS[0]], [answers[2:]])
    assert preferences.select_pair(preferences.weighted_totals(constitution, "harmful", scores[0]), 0.5) is None


def test_pair_eval_split_holds_out_its_fraction_of_train_side_prompts() -> None:
    """The preference stage only sees train-side prompts of `kubealign.prompt_split`, whose unsalted hash is
    >= 0.3 for harmful prompts; the pair eval split must not reuse that hash, or a fraction of 0.1 holds
    out nothing (what the stage did before: one fallback pair)."""
    from kubealign.data.prompts import load_prompt_set
    from kubealign.prompt_split import DEFAULT_HELD_OUT, is_held_out

    texts = [r["prompt"] for r in load_prompt_set("harmful")]
    train_side = [t for t in texts if not is_held_out(t, DEFAULT_HELD_OUT["harmful"], 0)]
    assert len(train_side) > 500
    assert not any(is_held_out(t, 0.1, 0) for t in train_side)  # the old, unsalted rule holds out none
    held = preferences.eval_pair_indices(train_side, 0.1, 0)
    assert 0.07 < len(held) / len(train_side) < 0.13
    assert held == preferences.eval_pair_indices(list(train_side), 0.1, 0)  # fixed by (seed, text)
    assert held != preferences.eval_pair_indices(train_side, 0.1, 1)
    assert preferences.eval_pair_indices(train_side[:3], 0.0, 0) == set()
    # too few pairs for the fraction: still one held-out pair, the last
    few = [t for t in train_side if t not in {train_side[i] for i in held}][:2]
    assert preferences.eval_pair_indices(few, 0.1, 0) == {1}
