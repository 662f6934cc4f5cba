"""Notebook 03's exercise checks: one line for a right answer, the named mistake's hint for each wrong one, and
"not done yet" for the stub."""
import pytest
import torch

from saelab.checks import report
from saelab.checks.patching import attribution_variant, check_latent_attribution, check_logit_diff, check_patch_hook
from saelab.models import load_model
from saelab.patching import LogitDiff, logit_diff_metric, pair_tokens
from saelab.sae import SAE
from saelab.sae_patching import latent_attribution


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)


def stub(*args, **kwargs):
    raise NotImplementedError


def says(check, fn, *args):
    """(the check's verdict, its one printed line)."""
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        ok = check(fn, *args)
    text = out.getvalue()
    assert text.count("\n") == 1, text
    return ok, text


# --- the metric -------------------------------------------------------------------------------------------
def right_metric(logits, pos, neg):
    last = logits[:, -1]
    return last[:, pos].logsumexp(-1) - last[:, neg].logsumexp(-1)


LOGIT_DIFF_MISTAKES = [
    (lambda l, p, n: -right_metric(l, p, n), "sign is flipped"),
    (lambda l, p, n: l[:, -1][:, p].sum(-1) - l[:, -1][:, n].sum(-1), "logsumexp"),
    (lambda l, p, n: l[:, -1][:, p].max(-1).values - l[:, -1][:, n].max(-1).values, "largest logit"),
    (lambda l, p, n: right_metric(l, p, n).mean(), "averaged over the batch"),
    (lambda l, p, n: l[:, :, p].logsumexp(-1) - l[:, :, n].logsumexp(-1), "last position"),
    (lambda l, p, n: l[:, -1][:, p].logsumexp(0) - l[:, -1][:, p].logsumexp(0), "Wrong axis"),
    (lambda l, p, n: right_metric(l[:, :1], p, n), "first position"),
    (lambda l, p, n: 1 / 0, "your function raised ZeroDivisionError"),
    (lambda l, p, n: 3.0, "return a tensor"),
    (lambda l, p, n: None, "forget to `return`"),
]


@pytest.mark.parametrize("fn, hint", LOGIT_DIFF_MISTAKES)
def test_check_logit_diff_names_each_mistake(fn, hint):
    ok, out = says(check_logit_diff, fn)
    assert ok is False and out.startswith("✗ check_logit_diff:") and hint in out, out


def test_check_logit_diff_right_answers_and_stub():
    assert says(check_logit_diff, right_metric) == (True, "✓ check_logit_diff: correct\n")
    assert says(check_logit_diff, lambda l, p, n: right_metric(l.log_softmax(-1), p, n))[0] is True
    assert says(check_logit_diff, lambda l, p, n: LogitDiff(tuple(p), tuple(n))(l))[0] is True  # the library
    ok, out = says(check_logit_diff, stub)
    assert ok is False and out.startswith("… check_logit_diff: not done yet")


# --- the patching hook ------------------------------------------------------------------------------------
def right_hook(activation, hook, clean_activation, position):
    activation[:, position] = clean_activation[:, position]
    return activation


def no_return(activation, hook, clean_activation, position):
    activation[:, position] = clean_activation[:, position]


def edits_the_cache(activation, hook, clean_activation, position):
    """Right output, but built inside the cached clean tensor."""
    keep = clean_activation[:, position].clone()
    clean_activation[:] = activation
    clean_activation[:, position] = keep
    return clean_activation


PATCH_HOOK_MISTAKES = [
    (no_return, "returned None"),
    (lambda a, h, clean_activation, position: clean_activation, "copied every position"),
    (lambda a, h, clean_activation, position: a, "nothing changed"),
    (lambda a, h, clean_activation, position: right_hook(a.transpose(0, 1), h, clean_activation.transpose(0, 1),
                                                         position).transpose(0, 1), "batch axis"),
    (lambda a, h, clean_activation, position: a[:, :2], "activation's shape"),
    (edits_the_cache, "in place"),
]


@pytest.mark.parametrize("fn, hint", PATCH_HOOK_MISTAKES)
def test_check_patch_hook_names_each_mistake(fn, hint):
    ok, out = says(check_patch_hook, fn)
    assert ok is False and out.startswith("✗ check_patch_hook:") and hint in out, out


def test_check_patch_hook_right_answer_and_stub():
    assert says(check_patch_hook, right_hook) == (True, "✓ check_patch_hook: correct\n")
    ok, out = says(check_patch_hook, stub)
    assert ok is False and out.startswith("… check_patch_hook: not done yet")


# --- latent attribution -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(small_hf_dir):
    """(model, sae, clean tokens, corrupted tokens, metric, position): a random 2-layer GPT-2 and normalising SAE."""
    model = load_model(str(small_hf_dir), device="cpu")
    torch.manual_seed(0)
    sae = SAE(32, 24, "topk", k=4, normalize=True, hook_name="blocks.0.hook_resid_post")
    with torch.no_grad():
        sae.pre_bias.normal_(0, 0.1)
        sae.latent_bias.normal_(0, 0.1)
    metric = logit_diff_metric(model, ["good", "love"], ["bad"])
    clean, corrupted = pair_tokens(model, "i love him. he is a", "i bad him. he is a")
    return model, sae, clean, corrupted, metric, -1


def attribution(model, sae, clean_tokens, corrupted_tokens, metric, position, *, sign=1.0, error_term=True,
                detach_error=True, grad_tokens=None, leaf=True, select=True, remove_hook=True, scale=1.0):
    """The right answer, or one usual mistake at a time (each keyword names one)."""
    _, cache = model.run_with_cache(clean_tokens, names_filter=[sae.hook_name])
    z_clean = sae.encode(cache[sae.hook_name])[0, position]
    kept = {}

    def splice(activation, hook):
        _, info = sae.preprocess(activation)
        z = sae.encode(activation)
        kept["z"] = z = z.detach().requires_grad_(True) if leaf else z
        reconstruction = sae.decode(z, info)
        error = activation - reconstruction
        return reconstruction + (error.detach() if detach_error else error) if error_term else reconstruction

    tokens = corrupted_tokens if grad_tokens is None else grad_tokens
    if remove_hook:
        logits = model.run_with_hooks(tokens, fwd_hooks=[(sae.hook_name, splice)])
    else:
        model.add_hook(sae.hook_name, splice)
        logits = model(tokens)
    metric(logits).sum().backward()
    z = kept["z"]
    if grad_tokens is not None:  # the gradient came from another run: read z_corrupted from the corrupted run
        z = z.detach().requires_grad_(False)
        z.grad = kept["z"].grad
        z.data = sae.encode(model.run_with_cache(corrupted_tokens, names_filter=[sae.hook_name])[1][sae.hook_name])
    estimate = sign * z.grad[0] * (z_clean - z[0, position].detach()) / scale if select else \
        z.grad[0] * (sae.encode(cache[sae.hook_name])[0] - z[0].detach())
    return estimate[position] if select else estimate


def gap(setup):
    model, _, clean, corrupted, metric, _ = setup
    with torch.no_grad():
        return float(metric(model(clean))[0] - metric(model(corrupted))[0])


MISTAKES = {
    "wrong sign": (dict(sign=-1.0), "wrong sign"),
    "forgot the error term": (dict(error_term=False), "forgot the error term"),
    "error term not detached": (dict(detach_error=False), "detached"),
    "gradient from the clean run": (dict(grad_tokens="clean"), "CORRUPTED run"),
    "no leaf": (dict(leaf=False), "must be a leaf"),
    "every position (wrong axis)": (dict(select=False), "Select the position"),
    "hook left on the model": (dict(remove_hook=False), "hook was left on the model"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_check_latent_attribution_names_each_mistake(setup, mistake):
    options, hint = MISTAKES[mistake]
    if options.get("grad_tokens") == "clean":
        options = dict(grad_tokens=setup[2])

    def student(*args):
        return attribution(*args, **options)

    ok, out = says(check_latent_attribution, student, *setup)
    assert ok is False and out.startswith("✗ check_latent_attribution:") and hint in out, out
    assert sum(len(h.fwd_hooks) for h in setup[0].hook_dict.values()) == 0, "the check removes a left-over hook"


def test_check_latent_attribution_normalised_answer(setup):
    ok, out = says(check_latent_attribution, lambda *a: attribution(*a, scale=gap(setup)), *setup)
    assert ok is False and "normalised" in out, out


def test_check_latent_attribution_right_answer_and_stub(setup):
    assert says(check_latent_attribution, attribution, *setup) == (True, "✓ check_latent_attribution: correct\n")
    ok, out = says(check_latent_attribution, stub, *setup)
    assert ok is False and out.startswith("… check_latent_attribution: not done yet")


def test_the_checks_reference_is_the_library(setup):
    """attribution_variant (the check's own computation) equals saelab.sae_patching.latent_attribution."""
    model, sae, clean, corrupted, metric, position = setup
    effects = latent_attribution(model, sae, clean, corrupted, metric, position=position)
    mine = attribution_variant(model, sae, clean, corrupted, metric, position % clean.shape[1])
    assert torch.allclose(mine[effects.latents], effects.effects * gap(setup), atol=1e-5)
    assert mine.abs().max() > 0


# --- wrong answers the checks do not name must not be praised ---------------------------------------------------
def neighbour_hook(a, h, clean_activation, position):
    """The clean vector copied in at the NEXT position."""
    return right_hook(a, h, clean_activation, (position + 1) % a.shape[1])


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.patching.
WRONG_ANSWERS = {
    "check_logit_diff": {"named": LOGIT_DIFF_MISTAKES, "unnamed": [
        lambda l, p, n: right_metric(l, p, n) + 0.5,
        lambda l, p, n: l[:, -1][:, p].logsumexp(-1),  # the positive side only
        lambda l, p, n: 2 * right_metric(l, p, n)]},
    "check_patch_hook": {"named": PATCH_HOOK_MISTAKES, "unnamed": [
        neighbour_hook,
        lambda a, h, clean_activation, position: right_hook(a, h, 2 * clean_activation, position),
        lambda a, h, clean_activation, position: right_hook(torch.zeros_like(a), h, clean_activation, position)]},
    "check_latent_attribution": {"named": list(MISTAKES.values()), "unnamed": [
        lambda *a: 2 * attribution(*a),
        lambda *a: attribution(*a) + 0.01]},
}


@pytest.mark.parametrize("name, i", [(n, i) for n, w in WRONG_ANSWERS.items() for i in range(len(w["unnamed"]))])
def test_unnamed_wrong_answers_are_not_praised(name, i, request):
    check = {"check_logit_diff": check_logit_diff, "check_patch_hook": check_patch_hook,
             "check_latent_attribution": check_latent_attribution}[name]
    extra = request.getfixturevalue("setup") if name == "check_latent_attribution" else ()
    ok, out = says(check, WRONG_ANSWERS[name]["unnamed"][i], *extra)
    assert ok is False and out.startswith(f"✗ {name}:"), out
