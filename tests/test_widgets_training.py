import torch

from saelab.widgets.training import history_png, training_widget


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4096, 16, generator=g)


def test_train_button_trains_in_the_background_and_draws():
    widget = training_widget(data(), steps=60, batch_size=256)
    widget.expansion.value = 2
    widget.train_button.click()
    widget.thread.join(timeout=60)
    assert not widget.thread.is_alive()
    assert widget.history.step[-1] == 60 and not widget.history.stopped
    assert widget.sae.n_latents == 32
    assert bytes(widget.image.value).startswith(b"\x89PNG")
    assert widget.status.value.startswith("Done")
    assert f"in {widget.history.precision})" in widget.status.value  # the precision it ran in
    assert not widget.train_button.disabled and widget.stop_button.disabled


def test_stop_button_ends_training_early():
    widget = training_widget(data(), steps=5000, batch_size=256)
    widget.start()
    widget.stop_button.click()
    widget.thread.join(timeout=60)
    assert widget.history is None or widget.history.stopped
    assert widget.history is None or widget.history.step == [] or widget.history.step[-1] < 5000
    assert "Stop" in widget.status.value or "stopped" in widget.status.value.lower()


def test_topk_choice_switches_the_controls_and_the_sae():
    widget = training_widget(data(), steps=50, batch_size=256)
    widget.activation.value = "topk"
    assert widget.l1.disabled and not widget.k.disabled
    widget.k.value = 3
    widget.start().join(timeout=60)
    assert widget.sae.activation == "topk" and widget.sae.k == 3
    assert widget.history.l0[-1] <= 3


def test_a_failing_run_is_reported_in_the_panel():
    widget = training_widget(torch.full((512, 16), float("nan")), steps=50, batch_size=128)
    widget.start().join(timeout=60)
    assert widget.status.value.startswith("Training failed")
    assert not widget.train_button.disabled


def test_history_png_is_a_picture():
    widget = training_widget(data(), steps=20, batch_size=256)
    widget.start().join(timeout=60)
    assert history_png(widget.history, "t").startswith(b"\x89PNG")


def test_plot_is_hidden_until_there_is_something_to_draw():
    widget = training_widget(data(), steps=20, batch_size=256)
    assert widget.image.layout.display == "none"
    widget.start().join(timeout=60)
    assert widget.image.layout.display == ""


def test_seed_box_sets_the_run_and_another_seed_gives_another_run():
    widget = training_widget(data(), steps=50, batch_size=256, seed=3)
    assert widget.seed.value == 3
    widget.start().join(timeout=60)
    first = widget.sae.decoder.weight.detach().clone()
    assert "seed 3" in widget.status.value
    widget.start().join(timeout=60)
    assert torch.equal(widget.sae.decoder.weight, first)  # same seed, same run
    widget.seed.value = 4
    widget.start().join(timeout=60)
    assert not torch.equal(widget.sae.decoder.weight, first)
