"""Notebook 04's exercise checks: the right answer passes, the stub is "not done yet", and each usual mistake
gets its own hint."""
import contextlib
import functools

import pytest
import torch

from saelab import steering
from saelab.checks import report
from saelab.checks.steering import (check_difference_of_means, check_steer, check_steering_hook,
                                    check_steering_vector)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)


def verdict(capsys):
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a check prints one line; got {out!r}"
    return out


# --- exercise 1: the steering vector --------------------------------------------------------------------------
def test_steering_vector_check_passes_the_right_answer(capsys):
    assert check_steering_vector(lambda sae, latents: sae.W_dec[:, latents].sum(-1)) is True
    assert verdict(capsys) == "✓ check_steering_vector: correct\n"


def test_steering_vector_check_says_not_done_for_the_stub(capsys):
    def stub(sae, latents):
        raise NotImplementedError

    assert check_steering_vector(stub) is False
    assert verdict(capsys).startswith("… check_steering_vector: not done yet")


VECTOR_MISTAKES = [
    (lambda sae, latents: None, "returned None"),
    (lambda sae, latents: sae.W_dec[:, latents], "sum them"),
    (lambda sae, latents: sae.W_dec[:, latents].sum(-1) + sae.pre_bias, "pre_bias"),
    (lambda sae, latents: sae.encoder.weight[latents].sum(0), "encoder"),
    (lambda sae, latents: sae.W_dec[:, latents].sum(-1) / sae.W_dec[:, latents].sum(-1).norm(), "normalised"),
    (lambda sae, latents: sae.W_dec[:, latents[0]], "values differ"),
    (lambda sae, latents: 1 / 0, "ZeroDivisionError"),
]


@pytest.mark.parametrize("wrong, hint", VECTOR_MISTAKES)
def test_steering_vector_check_names_each_mistake(wrong, hint, capsys):
    assert check_steering_vector(wrong) is False
    out = verdict(capsys)
    assert out.startswith("✗ check_steering_vector:") and hint in out


def test_the_old_import_still_works(capsys):
    assert steering.check_steering_vector(lambda sae, latents: sae.W_dec[:, latents].sum(-1)) is True
    assert "correct" in capsys.readouterr().out


def test_the_library_passes_the_vector_check_written_out_without_it(capsys):
    assert check_steering_vector(steering.steering_vector) is True


# --- exercise 2: the steering hook ----------------------------------------------------------------------------
def right_hook(activation, hook, vector, scale, positions=None):
    if positions is None:
        return activation + scale * vector
    out = activation.clone()
    out[:, positions] += scale * vector
    return out


def in_place(activation, hook, vector, scale, positions=None):
    if positions is None:
        activation += scale * vector
    else:
        activation[:, positions] += scale * vector
    return activation


def no_return(activation, hook, vector, scale, positions=None):
    activation + scale * vector


def batch_axis(activation, hook, vector, scale, positions=None):
    out = activation.clone()
    out[positions if positions is not None else slice(None)] += scale * vector
    return out


def everywhere(activation, hook, vector, scale, positions=None):
    return activation + scale * vector


def scaled_twice(activation, hook, vector, scale, positions=None):
    return right_hook(activation, hook, scale * vector, scale, positions)


def no_scale(activation, hook, vector, scale, positions=None):
    return right_hook(activation, hook, vector, 1.0, positions)


def normalised(activation, hook, vector, scale, positions=None):
    return right_hook(activation, hook, vector / vector.norm(), scale, positions)


def returns_delta(activation, hook, vector, scale, positions=None):
    return scale * vector


def test_steering_hook_check_passes_the_right_answer_and_the_library(capsys):
    assert check_steering_hook(right_hook) is True
    assert verdict(capsys) == "✓ check_steering_hook: correct\n"
    assert check_steering_hook(lambda a, h, v, s, p=None: steering.add_steering(a, v, s, p)) is True


def test_steering_hook_check_says_not_done_for_the_stub(capsys):
    def stub(activation, hook, vector, scale, positions=None):
        raise NotImplementedError

    assert check_steering_hook(stub) is False
    assert verdict(capsys).startswith("… check_steering_hook: not done yet")


HOOK_MISTAKES = [
    (in_place, "in place"),
    (no_return, "returned None"),
    (batch_axis, "wrong axis"),
    (everywhere, "at every position"),
    (scaled_twice, "scaled twice"),
    (no_scale, "without multiplying it by `scale`"),
    (normalised, "normalise"),
    (returns_delta, "shape"),
]


@pytest.mark.parametrize("wrong, hint", HOOK_MISTAKES)
def test_steering_hook_check_names_each_mistake(wrong, hint, capsys):
    assert check_steering_hook(wrong) is False
    out = verdict(capsys)
    assert out.startswith("✗ check_steering_hook:") and hint in out, out


def test_add_steering_leaves_the_input_alone_and_counts_positions_from_the_end():
    act, vec = torch.randn(2, 5, 4), torch.randn(4)
    before = act.clone()
    out = steering.add_steering(act, vec, 2.0, [-1])
    assert torch.equal(act, before)
    torch.testing.assert_close(out[:, -1], act[:, -1] + 2 * vec)
    torch.testing.assert_close(out[:, :-1], act[:, :-1])
    torch.testing.assert_close(steering.add_steering(act, vec, 2.0, 1), steering.add_steering(act, vec, 2.0, [1]))
    torch.testing.assert_close(steering.add_steering(act, vec, 2.0), act + 2 * vec)


# --- exercise 3: a with block that always removes its hook --------------------------------------------------------
@pytest.fixture(scope="module")
def model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir))


HOOK = "blocks.1.hook_resid_post"


def n_hooks(model):
    return sum(len(hp.fwd_hooks) for hp in model.hook_dict.values())


@contextlib.contextmanager
def right_steer(model, hook_name, vector, scale):
    with model.hooks(fwd_hooks=[(hook_name, functools.partial(right_hook, vector=vector, scale=scale))]):
        yield model


@contextlib.contextmanager
def left_after_error(model, hook_name, vector, scale):
    model.add_hook(hook_name, steering.steering_hook(vector, scale))
    yield model
    model.hook_dict[hook_name].remove_hooks("fwd")  # never reached when the block raises


@contextlib.contextmanager
def never_removed(model, hook_name, vector, scale):
    model.add_hook(hook_name, steering.steering_hook(vector, scale))
    yield model


@contextlib.contextmanager
def removes_every_hook(model, hook_name, vector, scale):
    model.add_hook(hook_name, steering.steering_hook(vector, scale))
    try:
        yield model
    finally:
        model.reset_hooks()


@contextlib.contextmanager
def swallows_the_error(model, hook_name, vector, scale):
    with model.hooks(fwd_hooks=[(hook_name, steering.steering_hook(vector, scale))]):
        try:
            yield model
        except Exception:
            pass


@contextlib.contextmanager
def hook_after_yield(model, hook_name, vector, scale):
    yield model
    model.add_hook(hook_name, steering.steering_hook(vector, scale))


def not_a_context_manager(model, hook_name, vector, scale):
    model.add_hook(hook_name, steering.steering_hook(vector, scale))


@contextlib.contextmanager
def steer_scaled_twice(model, hook_name, vector, scale):
    with model.hooks(fwd_hooks=[(hook_name, steering.steering_hook(scale * vector, scale))]):
        yield model


def test_steer_check_passes_the_right_answer_and_the_library(model, capsys):
    assert check_steer(right_steer, model, HOOK) is True
    assert verdict(capsys) == "✓ check_steer: correct\n"
    assert check_steer(steering.steer, model, HOOK) is True
    assert n_hooks(model) == 0


def test_steer_check_says_not_done_for_the_stub(model, capsys):
    @contextlib.contextmanager
    def stub(model, hook_name, vector, scale):
        raise NotImplementedError
        yield model

    assert check_steer(stub, model, HOOK) is False
    assert verdict(capsys).startswith("… check_steer: not done yet")
    assert n_hooks(model) == 0


STEER_MISTAKES = [
    (left_after_error, "when generation fails"),
    (never_removed, "still on the model after the `with` block"),
    (removes_every_hook, "removed hooks that were on the model before"),
    (swallows_the_error, "swallowed the error"),
    (hook_after_yield, "not steered"),
    (not_a_context_manager, "not a context manager"),
    (steer_scaled_twice, "scaled twice"),
]


@pytest.mark.parametrize("wrong, hint", STEER_MISTAKES)
def test_steer_check_names_each_mistake_and_leaves_the_model_clean(wrong, hint, model, capsys):
    assert check_steer(wrong, model, HOOK) is False
    out = verdict(capsys)
    assert out.startswith("✗ check_steer:") and hint in out, out
    assert n_hooks(model) == 0  # whatever the student's code left behind is gone


def test_steer_check_keeps_the_callers_hooks(model, capsys):
    model.add_hook("blocks.0.hook_resid_post", lambda act, hook: None)
    had = n_hooks(model)
    try:
        assert had > 0 and check_steer(right_steer, model, HOOK) is True
        assert n_hooks(model) == had
    finally:
        model.reset_hooks()


def test_steer_check_rejects_an_unknown_hook(model, capsys):
    assert check_steer(right_steer, model, "blocks.9.hook_resid_post") is False
    assert "no hook" in verdict(capsys)


def test_strict_mode_raises_for_a_wrong_answer(model, monkeypatch):
    monkeypatch.setenv(report.STRICT_ENV, "1")
    with pytest.raises(report.CheckFailed):
        check_steer(never_removed, model, HOOK)
    assert n_hooks(model) == 0


# --- exercise 4: a difference-of-means vector ------------------------------------------------------------------
NEG = ["he is bad", "i love him. he is a bad", "he is a bad"]   # three lengths: a padded batch goes wrong
POS = ["he is good", "i love him. he is a good", "he is a good"]


def rows(model, prompts, position=-1):
    return torch.stack([model.run_with_cache(p, names_filter=HOOK)[1][HOOK][0, position] for p in prompts])


def right_dom(model, hook_name, negative, positive):
    from saelab.steering_baselines import difference_of_means
    return difference_of_means(model, hook_name, negative, positive)


def test_dom_check_passes_the_right_answer_and_matches_the_library(model, capsys):
    assert check_difference_of_means(right_dom, model, HOOK, NEG, POS) is True
    assert verdict(capsys) == "✓ check_difference_of_means: correct\n"
    torch.testing.assert_close(right_dom(model, HOOK, NEG, POS), rows(model, NEG).mean(0) - rows(model, POS).mean(0))


def test_dom_check_says_not_done_for_the_stub(model, capsys):
    def stub(model, hook_name, negative, positive):
        raise NotImplementedError

    assert check_difference_of_means(stub, model, HOOK, NEG, POS) is False
    assert verdict(capsys).startswith("… check_difference_of_means: not done yet")


def padded(model, hook_name, negative, positive):
    last = lambda ps: model.run_with_cache(model.to_tokens(ps), names_filter=hook_name)[1][hook_name][:, -1]
    return last(negative).mean(0) - last(positive).mean(0)


def every_position(model, hook_name, negative, positive):
    mean = lambda ps: torch.cat([model.run_with_cache(p, names_filter=hook_name)[1][hook_name][0] for p in ps]).mean(0)
    return mean(negative) - mean(positive)


DOM_MISTAKES = [
    (lambda m, h, n, p: None, "returned None"),
    (lambda m, h, n, p: rows(m, n) - rows(m, p)[:1], "one row per prompt"),
    (lambda m, h, n, p: right_dom(m, h, p, n), "points from negative to positive"),
    (lambda m, h, n, p: right_dom(m, h, n, p) / right_dom(m, h, n, p).norm(), "normalised"),
    (lambda m, h, n, p: rows(m, n).mean(0), "negative prompts' mean"),
    (every_position, "averaged every position"),
    (lambda m, h, n, p: rows(m, n, 0).mean(0) - rows(m, p, 0).mean(0), "position 0"),
    (padded, "padded batch"),
    (lambda m, h, n, p: right_dom(m, h, n, p) + 0.1, "values differ"),
]


@pytest.mark.parametrize("wrong, hint", DOM_MISTAKES)
def test_dom_check_names_each_mistake(wrong, hint, model, capsys):
    assert check_difference_of_means(wrong, model, HOOK, NEG, POS) is False
    out = verdict(capsys)
    assert out.startswith("✗ check_difference_of_means:") and hint in out, out


def test_dom_check_refuses_too_few_prompts_and_unknown_hooks(model, capsys):
    assert check_difference_of_means(right_dom, model, HOOK, NEG[:1], POS) is False
    assert "at least two" in verdict(capsys)
    assert check_difference_of_means(right_dom, model, "blocks.9.hook_resid_post", NEG, POS) is False
    assert "no hook" in verdict(capsys)


# --- wrong answers the checks do not name must not be praised ---------------------------------------------------
@contextlib.contextmanager
def steer_backwards(model, hook_name, vector, scale):
    with model.hooks(fwd_hooks=[(hook_name, steering.steering_hook(vector, -scale))]):
        yield model


@contextlib.contextmanager
def steer_another_hook(model, hook_name, vector, scale):
    other = next(name for name in model.hook_dict if name.endswith("hook_resid_post") and name != hook_name)
    with model.hooks(fwd_hooks=[(other, steering.steering_hook(vector, scale))]):
        yield model


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.steering.
WRONG_ANSWERS = {
    "check_steering_vector": {"named": VECTOR_MISTAKES, "unnamed": [
        lambda sae, latents: sae.W_dec[:, latents].mean(-1),
        lambda sae, latents: 2 * sae.W_dec[:, latents].sum(-1),
        lambda sae, latents: sae.W_dec[:, [i + 1 for i in latents]].sum(-1)]},
    "check_steering_hook": {"named": HOOK_MISTAKES, "unnamed": [
        lambda a, h, v, s, p=None: right_hook(a, h, -v, s, p),
        lambda a, h, v, s, p=None: right_hook(a, h, v, s + 1, p)]},
    "check_steer": {"named": STEER_MISTAKES, "unnamed": [steer_backwards, steer_another_hook]},
    "check_difference_of_means": {"named": DOM_MISTAKES, "unnamed": [
        lambda m, h, n, p: 2 * right_dom(m, h, n, p),
        lambda m, h, n, p: rows(m, n).mean(0) - rows(m, n + p).mean(0),  # minus the mean of both sets
        lambda m, h, n, p: rows(m, n).median(0).values - rows(m, p).median(0).values]},
}


@pytest.mark.parametrize("name, i", [(n, i) for n, w in WRONG_ANSWERS.items() for i in range(len(w["unnamed"]))])
def test_unnamed_wrong_answers_are_not_praised(name, i, request, capsys):
    answer = WRONG_ANSWERS[name]["unnamed"][i]
    if name == "check_steer":
        model = request.getfixturevalue("model")
        assert check_steer(answer, model, HOOK) is False
        assert n_hooks(model) == 0
    elif name == "check_difference_of_means":
        assert check_difference_of_means(answer, request.getfixturevalue("model"), HOOK, NEG, POS) is False
    else:
        assert {"check_steering_vector": check_steering_vector, "check_steering_hook": check_steering_hook}[name](
            answer) is False
    assert verdict(capsys).startswith(f"✗ {name}:")
