"""Every figure a notebook draws lands in the executed notebook (so in build/notebooks and build/html too).

With `MPLBACKEND=Agg` in a kernel's environment `plt.show()` stores nothing; this counts the matplotlib figures each
notebook creates against the images its executed copy holds (cell outputs plus widget output areas).
"""
import pytest

from saelab.course import NOTEBOOKS
from tests.claims.harness import notebook_values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_figure_lands_in_the_executed_notebook(name):
    values = notebook_values(name)
    created, images = values["__figures_created__"], values["__images__"]
    assert created > 0, f"{name} draws no figure at all"
    assert images == created, f"{name}: {created} figures created, {images} images in the executed notebook"
